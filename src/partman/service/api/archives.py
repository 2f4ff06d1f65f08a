"""The Parquet archives retention exported (retention_action "export"), and restoring them:
the same calls as `partman archive list` and `partman restore` (`Manager.archives`,
`Manager.restore`)."""

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, Field

from .access import Access
from .host import Host
from .params import TableName


class RestoreIn(BaseModel):
    """The archived periods meeting [from, to) come back as partitions."""

    model_config = {"populate_by_name": True}
    from_: dt.date | dt.datetime = Field(alias="from", examples=["2026-01-01"])
    to: dt.date | dt.datetime = Field(examples=["2026-02-01"])
    tenant: str | None = Field(default=None, description="only this tenant's archives")


def router(host: Host, access: Access) -> APIRouter:
    api = APIRouter(tags=["archives"])

    @api.get("/api/archives", dependencies=[access.read])
    def archives(
        table: Annotated[str | None, Query(description='only this "schema.name"')] = None,
        tenant: Annotated[str | None, Query(description="only this tenant")] = None,
    ) -> list[dict[str, Any]]:
        """The archive manifest, oldest period first: each exported partition's file
        (location), bounds, tenant, rows, bytes, checksum, columns and state (archived,
        restoring, restored)."""
        return [a.to_dict() for a in host.manager.archives(table, tenant)]

    @api.post("/api/tables/{table}/restore", dependencies=[access.write])
    def restore(table: TableName, wanted: Annotated[RestoreIn, Body()]) -> dict[str, Any]:
        """Bring archived periods back as partitions: each built unattached, loaded, its row
        count and checksum checked against the manifest, attached under the lock budget and
        owned by partman again. An overlap with an existing partition is a 409 and nothing
        changes; POST again resumes an interrupted restore."""
        restored = host.manager.restore(table, wanted.from_, wanted.to, tenant=wanted.tenant)
        return {"restored": [a.to_dict() for a in restored]}

    return api
