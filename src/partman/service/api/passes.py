"""The pending plan, a pass on demand, and the history: runs and the audit log."""

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from ...db import reads
from .access import Access
from .host import Host
from .models import AuditPage


def router(host: Host, access: Access) -> APIRouter:
    api = APIRouter()
    meta = host.config.metadata_schema

    @api.get("/api/plan", tags=["plan"], dependencies=[access.read])
    def plan(
        table: Annotated[str | None, Query(description='only this "schema.name"')] = None,
        tenant: Annotated[
            list[str] | None,
            Query(description="only these tenants' operations (repeat it for several)"),
        ] = None,
    ) -> dict[str, Any]:
        """What the next pass would do now (nothing is changed): operations in order, each with
        its reason and SQL, and notices about what is left alone. `summary` counts them by
        kind."""
        current = host.plan().to_dict()
        if table is not None:
            current["operations"] = [o for o in current["operations"] if o["table"] == table]
            current["notices"] = [n for n in current["notices"] if n["table"] == table]
        if tenant is not None:
            wanted = set(tenant)
            current["operations"] = [o for o in current["operations"] if o["tenant"] in wanted]
        summary: dict[str, int] = {}
        for op in current["operations"]:
            summary[op["kind"]] = summary.get(op["kind"], 0) + 1
        current["summary"] = summary
        return current

    @api.get("/api/runs", tags=["history"], dependencies=[access.read])
    def runs(
        limit: Annotated[int, Query(ge=1, le=500)] = 20,
    ) -> list[dict[str, Any]]:
        """Recent passes (from partman_meta.runs), newest first, with their summaries."""
        with host.connection() as conn:
            return reads.runs(conn, meta, limit)

    @api.get("/api/audit", tags=["history"], dependencies=[access.read])
    def audit(
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before: Annotated[int | None, Query(description="entries older than this id")] = None,
        table: Annotated[str | None, Query(description='"schema.name"')] = None,
        outcome: Annotated[Literal["ok", "failed", "skipped"] | None, Query()] = None,
        run_id: Annotated[uuid.UUID | None, Query()] = None,
    ) -> AuditPage:
        """The audit log (one row per operation applied, failed or skipped), newest first,
        `limit` per page."""
        with host.connection() as conn:
            entries, following = reads.audit(
                conn,
                meta,
                limit=limit,
                before=before,
                table=table,
                outcome=outcome,
                run_id=run_id,
            )
        return AuditPage(entries=entries, next_before=following)

    @api.post("/api/apply", tags=["plan"], dependencies=[access.write])
    def apply() -> dict[str, Any]:
        """Run a pass now, on this replica (leader or not: passes on one database take turns
        on partman's pass lock). Returns the pass's report; `skipped_reason` is set when
        another pass held the lock for longer than pass_lock_wait."""
        report = host.run_pass("api")
        return {"instance": host.options.instance, "trigger": "api", **report.to_dict()}

    return api
