"""Path parameters shared by the routers."""

from typing import Annotated

from fastapi import Path

TableName = Annotated[
    str, Path(description='a managed table as "schema.name"', examples=["convoy.events"])
]
TenantName = Annotated[str, Path(description="a tenant id (URL-encoded)")]
