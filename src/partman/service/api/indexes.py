"""Indexes of a managed table: which partitions carry each, and a build that blocks no writer.

The same calls as `partman index list` / `partman index create` (`Manager.index_status`,
`Manager.create_index`): a build runs in the request, one partition at a time under the lock
budget, and its report says what is left when a partition could not be locked in time (POST
again resumes it).
"""

from typing import Annotated, Any

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field

from .access import Access
from .host import Host
from .params import TableName


class IndexIn(BaseModel):
    """An index to build on every partition of the table, then on the table itself."""

    columns: list[str] = Field(min_length=1, examples=[["tenant_id", "created_at"]])
    unique: bool = False
    """A unique index must hold every partition key column (PostgreSQL's rule)."""
    name: str | None = Field(default=None, description="the parent index's name; default: chosen")


def router(host: Host, access: Access) -> APIRouter:
    api = APIRouter(tags=["indexes"])

    @api.get("/api/tables/{table}/indexes", dependencies=[access.read])
    def list_indexes(table: TableName) -> list[dict[str, Any]]:
        """Each index of the table, valid or not, with the partitions that lack it, hold an
        invalid one or one not attached yet. Only reads."""
        return [state.to_dict() for state in host.manager.index_status(table)]

    @api.post("/api/tables/{table}/indexes", dependencies=[access.write])
    def create_index(table: TableName, index: Annotated[IndexIn, Body()]) -> dict[str, Any]:
        """Build the index without blocking writes: ON ONLY the table, then per partition
        CREATE INDEX CONCURRENTLY + ATTACH, each under the lock budget. Resumes a build a
        crash or a lock left unfinished (`valid` false, `missing` names the partitions)."""
        report = host.manager.create_index(
            table, index.columns, unique=index.unique, name=index.name
        )
        return report.to_dict()

    return api
