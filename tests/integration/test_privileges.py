"""A role that does not own the tables, as on RDS: `partman check` and the service's readiness
name each GRANT it lacks; once granted, check passes and `partman apply` works as that role.

Roles are cluster-wide: each test makes its own (unique names) and drops them afterwards.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import conninfo, sql
from test_cli import as_json, ok, run, write

import partman
from partman.service import Service, ServiceOptions

Conn = psycopg.Connection[Any]

CONFIG = """\
[partman]
lock_timeout = "1s"

[[table]]
name = "events"
schema = "lim"
partition_by = "created_at"
partition_interval = "1 day"
retention_period = "30 days"
retention_action = "detach"
partition_count = 3
default_partition = true

[[table]]
name = "logs"
schema = "lim"
partition_by = "created_at"
partition_interval = "1 day"
retention_period = "30 days"
retention_action = "archive"
archive_schema = "lim_archive"
partition_count = 3
"""
GRANT = re.compile(r"(?:GRANT|ALTER SCHEMA) [^;]*;$")


@dataclass
class Roles:
    owner: str  # owns schema lim and its tables
    stranger: str  # owns one old partition and the default partition of lim.events
    partman: str  # partman's role: LOGIN, nothing granted
    dsn: str  # the test database, as the partman role

    def grants_in(self, messages: list[str]) -> list[str]:
        """The GRANT each message ends with, in order, without repeats."""
        found = [m.group(0) for m in (GRANT.search(text) for text in messages) if m]
        return list(dict.fromkeys(found))


@pytest.fixture
def roles(dsn: str, conn: Conn) -> Iterator[Roles]:
    tag = secrets.token_hex(4)
    made = Roles(f"app_owner_{tag}", f"stranger_{tag}", f"partman_{tag}", "")
    made.dsn = conninfo.make_conninfo(dsn, user=made.partman)
    owner, stranger, role = (sql.Identifier(n) for n in (made.owner, made.stranger, made.partman))
    conn.execute(sql.SQL("CREATE ROLE {}").format(owner))
    conn.execute(sql.SQL("CREATE ROLE {}").format(stranger))
    conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(role))
    try:
        conn.execute(sql.SQL("CREATE SCHEMA lim AUTHORIZATION {}").format(owner))
        with conn.transaction():
            conn.execute(sql.SQL("SET LOCAL ROLE {}").format(owner))
            for name in ("events", "logs"):
                conn.execute(
                    sql.SQL(
                        "CREATE TABLE {} (id bigint NOT NULL, created_at timestamptz NOT NULL) "
                        "PARTITION BY RANGE (created_at)"
                    ).format(sql.Identifier("lim", name))
                )
        for statement in (
            "CREATE TABLE lim.events_old PARTITION OF lim.events "
            "FOR VALUES FROM ('2020-01-01') TO ('2020-01-02')",
            "CREATE TABLE lim.events_default PARTITION OF lim.events DEFAULT",
        ):
            conn.execute(statement)
        for name in ("events_old", "events_default"):
            conn.execute(
                sql.SQL("ALTER TABLE {} OWNER TO {}").format(sql.Identifier("lim", name), stranger)
            )
        yield made
    finally:
        conn.execute(sql.SQL("DROP OWNED BY {}, {}, {}").format(owner, stranger, role))
        conn.execute(sql.SQL("DROP ROLE {}, {}, {}").format(role, stranger, owner))


def test_check_names_each_missing_grant_and_passes_once_granted(
    tmp_path: Path, conn: Conn, roles: Roles
) -> None:
    write(tmp_path, CONFIG)
    dbname = conninfo.conninfo_to_dict(roles.dsn)["dbname"]
    failed = as_json(run(tmp_path, "check", "--json", dsn=roles.dsn), 1)
    messages = [p["message"] for p in failed["problems"]]
    who, owner, stranger = roles.partman, roles.owner, roles.stranger
    assert roles.grants_in(messages) == [
        f"GRANT CREATE ON DATABASE {dbname} TO {who};",
        f"GRANT USAGE, CREATE ON SCHEMA lim TO {who};",
        f"GRANT {owner} TO {who};",
        f"GRANT SELECT, DELETE ON lim.events_default TO {who};",
        f"GRANT {stranger} TO {who};",
        f"GRANT SELECT ON lim.events_old TO {who};",
    ], messages
    # each at its table's entry in the file (the database's at metadata_schema)
    by_key = {(p["key"], GRANT.search(p["message"]).group(0)) for p in failed["problems"]}
    assert ("table[1]", f"GRANT {owner} TO {who};") in by_key
    assert ("table[1]", f"GRANT CREATE ON DATABASE {dbname} TO {who};") in by_key  # archive
    assert ("partman.metadata_schema", f"GRANT CREATE ON DATABASE {dbname} TO {who};") in by_key
    text = ok(run(tmp_path, "check", dsn=roles.dsn), 1).stdout
    assert f"lim.events: ATTACH and DETACH PARTITION need the owner of lim.events, {owner}" in text

    # the role fails as check said it would
    refused = run(tmp_path, "apply", "--yes", dsn=roles.dsn)
    assert refused.returncode != 0 and "permission denied" in refused.stderr + refused.stdout

    for grant in roles.grants_in(messages):
        conn.execute(sql.SQL(grant))  # the text check printed
    assert "no problems" in ok(run(tmp_path, "check", dsn=roles.dsn)).stdout
    ok(run(tmp_path, "apply", "--yes", dsn=roles.dsn))
    made = conn.execute(
        "SELECT c.relname::text, pg_get_userbyid(c.relowner)::text FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'lim.logs'::regclass"
    ).fetchall()
    assert len(made) >= 4  # today and 3 ahead


def test_readiness_is_not_ready_while_a_privilege_is_missing(
    dsn: str, conn: Conn, roles: Roles
) -> None:
    who = sql.Identifier(roles.partman)
    database = sql.Identifier(conninfo.conninfo_to_dict(dsn)["dbname"])
    conn.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(database, who))
    service = Service(
        roles.dsn,
        config=partman.Config(),
        options=ServiceOptions(
            port=0, scheduler=False, instance="privileges", db_timeout=dt.timedelta(seconds=2)
        ),
    )
    try:
        server = service.start_server()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            ready = client.get("/readyz")  # the metadata is created as the role
            assert ready.status_code == 200, ready.text
            assert ready.json()["privileges"] == []
            with partman.Manager(dsn) as admin:  # registered by someone else
                admin.add_managed_table(
                    partman.Table(
                        name="events",
                        schema="lim",
                        partition_by="created_at",
                        partition_interval=dt.timedelta(days=1),
                        default_partition=True,
                    )
                )
            ready = client.get("/readyz")
            body = ready.json()
            assert (ready.status_code, body["status"]) == (503, "not ready"), body
            assert body["database"] == "reachable" and body["metadata_version"] >= 1
            assert [p["grant"] for p in body["privileges"]] == [
                f"GRANT USAGE, CREATE ON SCHEMA lim TO {roles.partman};",
                f"GRANT {roles.owner} TO {roles.partman};",
                f"GRANT SELECT, DELETE ON lim.events_default TO {roles.partman};",
            ]
            assert {p["table"] for p in body["privileges"]} == {"lim.events"}
            for grant in (
                sql.SQL("GRANT USAGE, CREATE ON SCHEMA lim TO {}").format(who),
                sql.SQL("GRANT {} TO {}").format(sql.Identifier(roles.owner), who),
                sql.SQL("GRANT SELECT, DELETE ON lim.events_default TO {}").format(who),
            ):
                conn.execute(grant)
            ready = client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["privileges"] == [], ready.text
        server.stop()
    finally:
        service.close()
