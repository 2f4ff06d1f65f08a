"""The tenants of a table: read their policy and runway, add, change and remove them. A change
is metadata only; the leader runs a pass right away to act on it."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from starlette.exceptions import HTTPException

from ...db import reads
from ...decide.coverage import Coverage
from ...engine import lookups
from ...errors import NotRegisteredError
from ...model import snapshot
from ...model.config import Tenant
from ...settings import retention_text_value
from ..shared import only
from .access import Access
from .host import Host
from .models import (
    CoverageOut,
    ErrorOut,
    RemovedOut,
    TenantIn,
    TenantOut,
    TenantPatch,
    own_retention_out,
    retention_out,
)
from .params import TableName, TenantName


def router(host: Host, access: Access) -> APIRouter:
    api = APIRouter(tags=["tenants"])
    meta = host.config.metadata_schema

    def coverage_by(table: str) -> dict[tuple[str, str | None], Coverage]:
        found = only(host.inventory(), table)
        return {(c.table, c.tenant): c for c in found.coverage}

    def registered(table: str, tenant: str) -> tuple[snapshot.TableRecord, snapshot.TenantRecord]:
        """The table and the tenant as registered (NotRegisteredError if it is not)."""
        with host.connection() as conn:
            record = reads.table(conn, meta, table)
            value = lookups.canonical(conn, record, tenant)
            found = [t for t in reads.tenants(conn, meta, record.id) if t.tenant_id == value]
        if not found:
            raise NotRegisteredError(f"tenant {value!r} of {table} is not registered")
        return record, found[0]

    def one_tenant(table: str, tenant: str) -> TenantOut:
        record, found = registered(table, tenant)
        return tenant_out(record, found, coverage_by(table).get((table, found.tenant_id)))

    @api.get("/api/tables/{table}/tenants", dependencies=[access.read])
    def list_tenants(
        table: TableName,
        response: Response,
        limit: Annotated[
            int | None,
            Query(ge=1, description="at most this many (default: every one that matches)"),
        ] = None,
        offset: Annotated[int, Query(ge=0, description="skip this many first")] = 0,
        search: Annotated[
            str | None, Query(description="only tenant ids containing this (any case)")
        ] = None,
        order: Annotated[
            Literal["tenant", "runway"],
            Query(description="by tenant id, or shortest runway first (then by id)"),
        ] = "tenant",
    ) -> list[TenantOut]:
        """The tenants of a table: their own policy, what applies, and their runway. A page of
        them with `limit` and `offset` (10,000 tenants are ~4 MB of JSON); the header
        `X-Total-Count` says how many match in all."""
        host.ensure_metadata()
        with host.connection() as conn:
            record = reads.table(conn, meta, table)
            found = reads.tenants(conn, meta, record.id)
        coverage = coverage_by(table)
        if search:
            needle = search.casefold()
            found = [t for t in found if needle in t.tenant_id.casefold()]
        if order == "runway":
            found.sort(key=lambda t: (_runway_key(coverage.get((table, t.tenant_id))), t.tenant_id))
        response.headers["X-Total-Count"] = str(len(found))
        page = found[offset:] if limit is None else found[offset : offset + limit]
        return [tenant_out(record, t, coverage.get((table, t.tenant_id))) for t in page]

    @api.get("/api/tables/{table}/tenants/{tenant:path}", dependencies=[access.read])
    def get_tenant(table: TableName, tenant: TenantName) -> TenantOut:
        host.ensure_metadata()
        return one_tenant(table, tenant)

    @api.post(
        "/api/tables/{table}/tenants",
        status_code=201,
        dependencies=[access.write],
        responses={409: {"model": ErrorOut}, 404: {"model": ErrorOut}, 422: {"model": ErrorOut}},
    )
    def add_tenant(table: TableName, body: TenantIn) -> TenantOut:
        """Register a tenant (metadata only: its partitions are made by the next pass, which
        the leader runs right away)."""
        host.ensure_metadata()
        with host.connection() as conn:
            record = reads.table(conn, meta, table)
            value = lookups.canonical(conn, record, body.tenant_id)
            if any(t.tenant_id == value for t in reads.tenants(conn, meta, record.id)):
                raise HTTPException(
                    409,
                    f"tenant {value!r} of {table} is already registered; "
                    "PATCH it to change its policy",
                )
        wanted = Tenant(
            tenant_id=value,
            retention_period=_retention_in(body.retention_period),
            partition_count=body.partition_count,
            retention_action=body.retention_action,
        )
        host.manager.register_tenants(table, [wanted])
        host.nudge()
        return one_tenant(table, value)

    @api.patch(
        "/api/tables/{table}/tenants/{tenant:path}",
        dependencies=[access.write],
        responses={404: {"model": ErrorOut}, 422: {"model": ErrorOut}},
    )
    def set_policy(table: TableName, tenant: TenantName, body: TenantPatch) -> TenantOut:
        """Set a tenant's own policy; fields left out keep their value, null inherits."""
        host.ensure_metadata()
        _, current = registered(table, tenant)
        value = current.tenant_id
        given = body.model_fields_set
        retention = _retention_in(
            body.retention_period if "retention_period" in given else current.retention
        )
        count = body.partition_count if "partition_count" in given else current.partition_count
        action = body.retention_action if "retention_action" in given else current.retention_action
        wanted = Tenant(
            tenant_id=value,
            retention_period=retention,
            partition_count=count,
            retention_action=action,
        )
        host.manager.register_tenants(table, [wanted])
        host.nudge()
        return one_tenant(table, value)

    @api.delete(
        "/api/tables/{table}/tenants/{tenant:path}",
        dependencies=[access.write],
        responses={404: {"model": ErrorOut}, 422: {"model": ErrorOut}},
    )
    def remove_tenant(table: TableName, tenant: TenantName) -> RemovedOut:
        """Stop managing a tenant. Never drops data: its partitions stay, and stay partman's,
        so adding it again resumes where it left off."""
        host.ensure_metadata()
        with host.connection() as conn:
            record = reads.table(conn, meta, table)
            value = lookups.canonical(conn, record, tenant)
        if not host.manager.remove_managed_table(table, value):
            raise NotRegisteredError(f"tenant {value!r} of {table} is not registered")
        host.nudge()
        return RemovedOut(
            table=table,
            tenant_id=value,
            removed=True,
            note="its partitions are kept; partman no longer creates or retires them",
        )

    return api


def _runway_key(coverage: Coverage | None) -> float:
    """Shortest first: no coverage at all, then the runway (in ids or seconds)."""
    if coverage is None:
        return -1.0
    if coverage.runway_ids is not None:
        return float(coverage.runway_ids)
    return coverage.runway_seconds


def _retention_in(value: str | int | None) -> str | int | None:
    """A retention as the API takes it (or as stored), as the model takes it: an id table's
    distance ("5000", "5000 ids") is an int."""
    return retention_text_value(value) if isinstance(value, str) else value


def tenant_out(
    record: snapshot.TableRecord, tenant: snapshot.TenantRecord, coverage: Coverage | None
) -> TenantOut:
    return TenantOut(
        table=record.qualified_name,
        tenant_id=tenant.tenant_id,
        retention_period=own_retention_out(tenant.retention),
        partition_count=tenant.partition_count,
        retention_action=tenant.retention_action,
        effective_retention_period=retention_out(tenant.effective_retention(record)),
        effective_partition_count=tenant.effective_count(record),
        effective_retention_action=tenant.effective_action(record),
        coverage=None
        if coverage is None
        else CoverageOut(
            partitions=coverage.partitions,
            covered_until=coverage.covered_until,
            runway_seconds=coverage.runway_seconds,
            runway_ids=coverage.runway_ids,
        ),
    )
