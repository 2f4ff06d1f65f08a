"""The HTTP face of the service: JSON API (OpenAPI at /docs and /openapi.json), web UI, metrics.

Reads are open unless `ServiceOptions.read_requires_token`; everything that changes something
needs `Authorization: Bearer <token>` (401 without it, 403 with a wrong one, 403 when the
service has no token at all). Every error is JSON: `{"error": <kind>, "message": <text>}` and a
4xx status for anything the caller can fix (every `partman.PartmanError` keeps its message);
a request that fails changes nothing.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations, some of
# which are aliases local to create_app().

import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any, Literal

import anyio
import psycopg
from fastapi import Depends, FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg_pool import PoolTimeout
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from starlette.exceptions import HTTPException

from .. import __version__
from ..decide.coverage import Coverage
from ..errors import (
    CatalogError,
    ConfigError,
    LockUnavailableError,
    MetadataError,
    NotRegisteredError,
    PartmanError,
    TableNotFoundError,
)
from ..model import snapshot
from ..model.config import FOREVER, Tenant
from ..model.text import first_line
from . import queries

if TYPE_CHECKING:
    from .core import Service

UI_DIR = resources.files("partman.service").joinpath("ui")


def status_for(error: PartmanError) -> int:
    """The HTTP status of a partman error: the caller can always fix it (4xx)."""
    if isinstance(error, NotRegisteredError | TableNotFoundError):
        return 404
    if isinstance(error, ConfigError):  # includes TenantError and IntervalError
        return 422
    if isinstance(error, CatalogError | MetadataError | LockUnavailableError):
        return 409
    return 400


def _error(status: int, kind: str, message: str, **extra: Any) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        {"error": kind, "message": message, **extra}, status_code=status, headers=headers
    )


# -- models (they make the OpenAPI document) ---------------------------------------------------

RetentionAction = Literal["drop", "detach", "archive"]


class ErrorOut(BaseModel):
    error: str = Field(description="Kind of error, e.g. NotRegisteredError, unauthorized")
    message: str = Field(description="What went wrong and how to fix it")


class TenantIn(BaseModel):
    """A tenant to add; policy fields left out (or null) inherit the table's."""

    model_config = ConfigDict(extra="forbid")
    tenant_id: StrictStr | StrictInt = Field(description="A value of the table's tenant column")
    retention_period: StrictStr | None = Field(
        None, description='e.g. "30 days", "3 months", or "forever"; null inherits'
    )
    partition_count: StrictInt | None = Field(
        None, description="Future partitions kept ahead (0..10000); null inherits"
    )
    retention_action: RetentionAction | None = Field(None, description="null inherits")


class TenantPatch(BaseModel):
    """Only the fields given change; null means "inherit the table's"."""

    model_config = ConfigDict(extra="forbid")
    retention_period: StrictStr | None = None
    partition_count: StrictInt | None = None
    retention_action: RetentionAction | None = None


class CoverageOut(BaseModel):
    partitions: int
    covered_until: str | None
    runway_seconds: float


class TenantOut(BaseModel):
    table: str
    tenant_id: str
    retention_period: str | None = Field(description='own policy; null inherits, or "forever"')
    partition_count: int | None
    retention_action: str | None
    effective_retention_period: str = Field(description='what applies ("forever" keeps all)')
    effective_partition_count: int
    effective_retention_action: str
    coverage: CoverageOut | None


class TableOut(BaseModel):
    table: str
    schema_name: str
    name: str
    tenant_column: str | None
    time_column: str
    partition_interval: str
    retention_period: str = Field(description='"forever" keeps all')
    partition_count: int
    retention_action: str
    archive_schema: str | None
    default_partition: bool
    backfill: bool
    tenants: int
    partitions: int
    default_rows: int | None = Field(description="rows waiting in the default partition")
    min_runway_seconds: float | None = Field(description="the shortest runway of its tenants")


class PartitionOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    table: str
    tenant: str | None
    partition: str
    from_: str = Field(alias="from")
    to: str
    owner: str
    estimated_rows: int | None
    is_default: bool


class CoverageRowOut(CoverageOut):
    table: str
    tenant: str | None


class PartitionsOut(BaseModel):
    now: str
    partitions: list[PartitionOut]
    coverage: list[CoverageRowOut]
    default_rows: dict[str, int]


class RemovedOut(BaseModel):
    table: str
    tenant_id: str
    removed: bool
    note: str


class AuditPage(BaseModel):
    entries: list[dict[str, Any]]
    next_before: int | None = Field(description="pass as ?before= for the next (older) page")


# -- the app -----------------------------------------------------------------------------------


def create_app(service: "Service") -> FastAPI:
    options = service.options
    meta = service.config.metadata_schema

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(service.stop)

    app = FastAPI(
        title="partman",
        version=__version__,
        summary="PostgreSQL partitions created ahead, trimmed behind, on a lock budget.",
        description=(
            "Managed tables, their tenants and policies, partitions, the pending plan, runs and "
            "the audit log. Changes need `Authorization: Bearer <token>`."
        ),
        lifespan=lifespan,
        responses={
            401: {"model": ErrorOut, "description": "no bearer token"},
            403: {"model": ErrorOut, "description": "wrong token, or the service is read-only"},
            503: {"model": ErrorOut, "description": "the database is unreachable"},
        },
    )
    bearer = HTTPBearer(auto_error=False, description="the service's token")
    Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]

    def check_token(credentials: HTTPAuthorizationCredentials | None, what: str) -> None:
        if options.token is None:
            raise HTTPException(
                403, f"{what} is disabled: the service has no token configured (read-only)"
            )
        if credentials is None:
            raise HTTPException(401, f"{what} needs the header Authorization: Bearer <token>")
        given = credentials.credentials.encode()
        if not secrets.compare_digest(given, options.token.encode()):
            raise HTTPException(403, "the bearer token is not this service's token")

    def can_write(credentials: Credentials) -> None:
        check_token(credentials, "changing things")

    def can_read(credentials: Credentials) -> None:
        if options.read_requires_token:
            check_token(credentials, "reading")

    Read = Depends(can_read)
    Write = Depends(can_write)
    TableName = Annotated[
        str, Path(description='a managed table as "schema.name"', examples=["convoy.events"])
    ]
    TenantName = Annotated[str, Path(description="a tenant id (URL-encoded)")]

    # -- errors --------------------------------------------------------------------------------

    @app.exception_handler(PartmanError)
    async def partman_error(request: Request, error: PartmanError) -> JSONResponse:
        return _error(status_for(error), type(error).__name__, str(error))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        kinds = {401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict"}
        return _error(error.status_code, kinds.get(error.status_code, "error"), str(error.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = []
        for e in error.errors():
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
            problems.append(f"{where}: {e.get('msg', 'invalid')}")
        return _error(
            422,
            "invalid_request",
            "; ".join(problems) or "invalid request",
            detail=[{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in error.errors()],
        )

    @app.exception_handler(psycopg.OperationalError)
    async def database_down(request: Request, error: psycopg.OperationalError) -> JSONResponse:
        return _error(
            503,
            "database_unavailable",
            f"database unavailable: {first_line(error, with_type=True)}",
        )

    @app.exception_handler(PoolTimeout)
    async def pool_timeout(request: Request, error: PoolTimeout) -> JSONResponse:
        why = await anyio.to_thread.run_sync(service.diagnose)
        return _error(503, "database_unavailable", f"database unavailable: {why}")

    # -- health --------------------------------------------------------------------------------

    @app.get("/healthz", tags=["health"], summary="The process is alive")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "instance": options.instance, "version": __version__}

    @app.get(
        "/readyz",
        tags=["health"],
        summary="The database is reachable and partman's metadata is ready",
        responses={503: {"description": "not ready; the body says why"}},
    )
    def readyz() -> JSONResponse:
        ready, detail = service.readiness()
        body = {"status": "ready" if ready else "not ready", **detail}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics", dependencies=[Read])
    def metrics() -> Response:
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # -- reads ---------------------------------------------------------------------------------

    @app.get("/api/status", tags=["service"], dependencies=[Read])
    def status() -> dict[str, Any]:
        """This replica: leader or follower, scheduler state, last pass, last error."""
        return service.status()

    @app.get("/api/ui-config", tags=["service"], include_in_schema=False)
    def ui_config() -> dict[str, Any]:
        return {
            "token": options.token if options.expose_token_to_ui else None,
            "read_requires_token": options.read_requires_token,
            "mutations_enabled": options.token is not None,
            "instance": options.instance,
            "version": __version__,
        }

    def coverage_by(table: str | None = None) -> dict[tuple[str, str | None], Coverage]:
        found = service.manager.inventory(table)
        return {(c.table, c.tenant): c for c in found.coverage}

    @app.get("/api/tables", tags=["tables"], dependencies=[Read])
    def list_tables() -> list[TableOut]:
        """Every managed table with its policy, tenant and partition counts, shortest runway
        and rows waiting in its default partition."""
        service.ensure_metadata()
        with service.connection() as conn:
            records = queries.tables(conn, meta)
            counts = queries.tenant_counts(conn, meta)
            defaults = queries.default_partition_rows(conn, records)
        found = service.manager.inventory()
        return [_table_out(r, counts, defaults, found.coverage, found.partitions) for r in records]

    @app.get("/api/tables/{table}", tags=["tables"], dependencies=[Read])
    def get_table(table: TableName) -> TableOut:
        service.ensure_metadata()
        with service.connection() as conn:
            record = queries.table(conn, meta, table)
            counts = queries.tenant_counts(conn, meta)
            defaults = queries.default_partition_rows(conn, [record])
        found = service.manager.inventory(table)
        return _table_out(record, counts, defaults, found.coverage, found.partitions)

    @app.get("/api/tables/{table}/tenants", tags=["tenants"], dependencies=[Read])
    def list_tenants(table: TableName) -> list[TenantOut]:
        """The tenants of a table: their own policy, what applies, and their runway."""
        service.ensure_metadata()
        with service.connection() as conn:
            record = queries.table(conn, meta, table)
            found = queries.tenants(conn, meta, record.id)
        coverage = coverage_by(table)
        return [_tenant_out(record, t, coverage.get((table, t.tenant_id))) for t in found]

    def one_tenant(table: str, tenant: str) -> TenantOut:
        with service.connection() as conn:
            record = queries.table(conn, meta, table)
            value = queries.canonical(conn, record, tenant)
            found = [t for t in queries.tenants(conn, meta, record.id) if t.tenant_id == value]
        if not found:
            raise NotRegisteredError(f"tenant {value!r} of {table} is not registered")
        return _tenant_out(record, found[0], coverage_by(table).get((table, value)))

    @app.get("/api/tables/{table}/tenants/{tenant:path}", tags=["tenants"], dependencies=[Read])
    def get_tenant(table: TableName, tenant: TenantName) -> TenantOut:
        service.ensure_metadata()
        return one_tenant(table, tenant)

    @app.get("/api/partitions", tags=["partitions"], dependencies=[Read])
    def partitions(
        table: Annotated[str | None, Query(description='"schema.name"')] = None,
        tenant: Annotated[str | None, Query(description="a tenant id")] = None,
    ) -> PartitionsOut:
        """Every partition of the managed tables (owner, bounds, row estimate, default
        partitions flagged), and per table and tenant how far ahead they reach."""
        service.ensure_metadata()
        with service.connection() as conn:
            records = queries.tables(conn, meta)
            if table is not None:
                records = [r for r in records if r.qualified_name == table]
                if not records:
                    queries.table(conn, meta, table)  # raises NotRegisteredError
            defaults = queries.default_partition_rows(conn, records)
        found = service.manager.inventory(table, tenant)
        shown = [p for p in found.partitions if tenant is None or not p.is_default]
        if tenant is not None:  # the default partition holds every tenant's strays
            shown += [
                p
                for p in service.manager.inventory(table).partitions
                if p.is_default and (table is None or p.table == table)
            ]
        return PartitionsOut(
            now=service.manager.clock.now().isoformat(),
            partitions=[PartitionOut.model_validate(p.to_dict()) for p in shown],
            coverage=[CoverageRowOut.model_validate(c.to_dict()) for c in found.coverage],
            default_rows=defaults,
        )

    @app.get("/api/plan", tags=["plan"], dependencies=[Read])
    def plan(
        table: Annotated[str | None, Query(description='only this "schema.name"')] = None,
    ) -> dict[str, Any]:
        """What the next pass would do now (nothing is changed): operations in order, each with
        its reason and SQL, and notices about what is left alone. `summary` counts them by
        kind."""
        current = service.manager.plan().to_dict()
        if table is not None:
            current["operations"] = [o for o in current["operations"] if o["table"] == table]
            current["notices"] = [n for n in current["notices"] if n["table"] == table]
        summary: dict[str, int] = {}
        for op in current["operations"]:
            summary[op["kind"]] = summary.get(op["kind"], 0) + 1
        current["summary"] = summary
        return current

    @app.get("/api/runs", tags=["history"], dependencies=[Read])
    def runs(
        limit: Annotated[int, Query(ge=1, le=500)] = 20,
    ) -> list[dict[str, Any]]:
        """Recent passes (from partman_meta.runs), newest first, with their summaries."""
        with service.connection() as conn:
            return queries.runs(conn, meta, limit)

    @app.get("/api/audit", tags=["history"], dependencies=[Read])
    def audit(
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before: Annotated[int | None, Query(description="entries older than this id")] = None,
        table: Annotated[str | None, Query(description='"schema.name"')] = None,
        outcome: Annotated[Literal["ok", "failed", "skipped"] | None, Query()] = None,
        run_id: Annotated[uuid.UUID | None, Query()] = None,
    ) -> AuditPage:
        """The audit log (one row per operation applied, failed or skipped), newest first,
        `limit` per page."""
        with service.connection() as conn:
            entries, following = queries.audit(
                conn,
                meta,
                limit=limit,
                before=before,
                table=table,
                outcome=outcome,
                run_id=run_id,
            )
        return AuditPage(entries=entries, next_before=following)

    # -- changes -------------------------------------------------------------------------------

    @app.post(
        "/api/tables/{table}/tenants",
        tags=["tenants"],
        status_code=201,
        dependencies=[Write],
        responses={409: {"model": ErrorOut}, 404: {"model": ErrorOut}, 422: {"model": ErrorOut}},
    )
    def add_tenant(table: TableName, body: TenantIn) -> TenantOut:
        """Register a tenant (metadata only: its partitions are made by the next pass, which
        the leader runs right away)."""
        service.ensure_metadata()
        with service.connection() as conn:
            record = queries.table(conn, meta, table)
            value = queries.canonical(conn, record, body.tenant_id)
            if any(t.tenant_id == value for t in queries.tenants(conn, meta, record.id)):
                raise HTTPException(
                    409,
                    f"tenant {value!r} of {table} is already registered; "
                    "PATCH it to change its policy",
                )
        wanted = Tenant(
            tenant_id=value,
            retention_period=body.retention_period,
            partition_count=body.partition_count,
            retention_action=body.retention_action,
        )
        service.manager.register_tenants(table, [wanted])
        service.nudge()
        return one_tenant(table, value)

    @app.patch(
        "/api/tables/{table}/tenants/{tenant:path}",
        tags=["tenants"],
        dependencies=[Write],
        responses={404: {"model": ErrorOut}, 422: {"model": ErrorOut}},
    )
    def set_policy(table: TableName, tenant: TenantName, body: TenantPatch) -> TenantOut:
        """Set a tenant's own policy; fields left out keep their value, null inherits."""
        service.ensure_metadata()
        with service.connection() as conn:
            record = queries.table(conn, meta, table)
            value = queries.canonical(conn, record, tenant)
            found = [t for t in queries.tenants(conn, meta, record.id) if t.tenant_id == value]
        if not found:
            raise NotRegisteredError(f"tenant {value!r} of {table} is not registered")
        current = found[0]
        given = body.model_fields_set
        retention = body.retention_period if "retention_period" in given else current.retention
        count = body.partition_count if "partition_count" in given else current.partition_count
        action = body.retention_action if "retention_action" in given else current.retention_action
        wanted = Tenant(
            tenant_id=value,
            retention_period=retention,
            partition_count=count,
            retention_action=action,
        )
        service.manager.register_tenants(table, [wanted])
        service.nudge()
        return one_tenant(table, value)

    @app.delete(
        "/api/tables/{table}/tenants/{tenant:path}",
        tags=["tenants"],
        dependencies=[Write],
        responses={404: {"model": ErrorOut}, 422: {"model": ErrorOut}},
    )
    def remove_tenant(table: TableName, tenant: TenantName) -> RemovedOut:
        """Stop managing a tenant. Never drops data: its partitions stay, and stay partman's,
        so adding it again resumes where it left off."""
        service.ensure_metadata()
        with service.connection() as conn:
            record = queries.table(conn, meta, table)
            value = queries.canonical(conn, record, tenant)
        if not service.manager.remove_managed_table(table, value):
            raise NotRegisteredError(f"tenant {value!r} of {table} is not registered")
        service.nudge()
        return RemovedOut(
            table=table,
            tenant_id=value,
            removed=True,
            note="its partitions are kept; partman no longer creates or retires them",
        )

    @app.post("/api/apply", tags=["plan"], dependencies=[Write])
    def apply() -> dict[str, Any]:
        """Run a pass now, on this replica (leader or not: passes on one database take turns
        on partman's pass lock). Returns the pass's report; `skipped_reason` is set when
        another pass held the lock for longer than pass_lock_wait."""
        report = service.run_pass("api")
        return {"instance": options.instance, "trigger": "api", **report.to_dict()}

    # -- the UI --------------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(str(UI_DIR.joinpath("index.html")), media_type="text/html")

    app.mount("/ui", StaticFiles(directory=str(UI_DIR)), name="ui")
    return app


def _retention_text(retention: Any) -> str:
    return FOREVER if retention is None else str(snapshot.retention_text(retention))


def _table_out(
    record: snapshot.TableRecord,
    counts: dict[int, int],
    defaults: dict[str, int],
    coverage: list[Coverage],
    partitions: list[Any],
) -> TableOut:
    mine = [c for c in coverage if c.table == record.qualified_name]
    return TableOut(
        table=record.qualified_name,
        schema_name=record.schema,
        name=record.name,
        tenant_column=record.tenant_column,
        time_column=record.time_column,
        partition_interval=str(record.interval),
        retention_period=_retention_text(record.retention),
        partition_count=record.partition_count,
        retention_action=record.retention_action,
        archive_schema=record.archive_schema,
        default_partition=record.default_partition,
        backfill=record.backfill,
        tenants=counts.get(record.id, 0),
        partitions=sum(
            1 for p in partitions if p.table == record.qualified_name and not p.is_default
        ),
        default_rows=defaults.get(record.qualified_name),
        min_runway_seconds=min((c.runway_seconds for c in mine), default=None),
    )


def _tenant_out(
    record: snapshot.TableRecord, tenant: snapshot.TenantRecord, coverage: Coverage | None
) -> TenantOut:
    return TenantOut(
        table=record.qualified_name,
        tenant_id=tenant.tenant_id,
        retention_period=tenant.retention,
        partition_count=tenant.partition_count,
        retention_action=tenant.retention_action,
        effective_retention_period=_retention_text(tenant.effective_retention(record)),
        effective_partition_count=tenant.effective_count(record),
        effective_retention_action=tenant.effective_action(record),
        coverage=None
        if coverage is None
        else CoverageOut(
            partitions=coverage.partitions,
            covered_until=coverage.covered_until,
            runway_seconds=coverage.runway_seconds,
        ),
    )
