"""decide.privileges: what each table asks of partman's role, and each privilege the server says
it lacks named with the GRANT that gives it (the rows are what db/privileges reads; the
integration test checks them against a real server)."""

from __future__ import annotations

import dataclasses
from typing import Any

from builders import record, state

from partman.decide.privileges import Finding, findings, needs
from partman.model.privileges import Grants, MetadataGrants, Need, TableGrants
from partman.model.snapshot import TenantRecord

META = MetadataGrants(
    role_sql="partman_role",
    database_sql="app",
    database_create=False,
    schema_sql="partman_meta",
    schema_exists=True,
    schema_usage=True,
    schema_owner=True,
    tables=["audit_log", "managed_tables", "partitions", "runs", "tenants"],
    tables_lacking=[],
)
FINE = TableGrants(
    schema="lim",
    name="events",
    schema_sql="lim",
    parent_sql="lim.events",
    schema_exists=True,
    schema_usage=True,
    schema_create=True,
    table_exists=True,
    owner_sql="app_owner",
    acts_as_owner=True,
    gives_to_owner=True,
    owner_schema_create=True,
    parent_select=True,
    default_sql=None,
    default_select=False,
    default_delete=False,
    foreign_owners=[],
    unreadable=[],
    unreadable_count=0,
    archive_sql=None,
    archive_exists=False,
    archive_usage=False,
    archive_create=False,
)


def found(table: dict[str, Any] | None = None, **meta: Any) -> list[Finding]:
    tables = () if table is None else (dataclasses.replace(FINE, **table),)
    return findings(Grants(dataclasses.replace(META, **meta), tables))


def grants(table: dict[str, Any] | None = None, **meta: Any) -> list[str]:
    return [f.grant for f in found(table, **meta)]


def test_nothing_missing_finds_nothing() -> None:
    assert found({}) == []


def test_the_schema_partitions_are_created_in() -> None:
    assert grants({"schema_create": False}) == ["GRANT CREATE ON SCHEMA lim TO partman_role;"]
    both = found({"schema_create": False, "schema_usage": False})
    assert [str(f) for f in both] == [
        "lim.events: new partitions are created in schema lim, which needs USAGE and CREATE on "
        "it: GRANT USAGE, CREATE ON SCHEMA lim TO partman_role;"
    ]


def test_attach_and_detach_need_the_parents_owner_not_maintain() -> None:
    (f,) = found({"acts_as_owner": False, "parent_select": False})
    assert f.table == "lim.events" and f.grant == "GRANT app_owner TO partman_role;"
    assert "MAINTAIN is not enough" in f.problem and "member" in f.problem
    # acting as the owner, LIKE still needs SELECT on the parent (an owner may revoke its own)
    assert grants({"parent_select": False}) == ["GRANT SELECT ON lim.events TO partman_role;"]


def test_new_partitions_are_handed_to_the_parents_owner() -> None:
    # a member granted the owner WITH SET FALSE (PostgreSQL 16) cannot run OWNER TO
    assert grants({"gives_to_owner": False}) == ["GRANT app_owner TO partman_role WITH SET TRUE;"]
    # and PostgreSQL wants the new owner to have CREATE on the schema
    assert grants({"owner_schema_create": False}) == ["GRANT CREATE ON SCHEMA lim TO app_owner;"]


def test_the_default_partitions_rows_are_moved_with_delete() -> None:
    table = {"default_sql": "lim.events_default", "default_select": True}
    assert grants(table) == ["GRANT SELECT, DELETE ON lim.events_default TO partman_role;"]
    assert grants({**table, "default_delete": True}) == []


def test_retention_needs_each_partitions_owner_and_select() -> None:
    assert grants({"foreign_owners": ["stranger", '"Other"']}) == [
        "GRANT stranger TO partman_role;",
        'GRANT "Other" TO partman_role;',
    ]
    few = {"unreadable": ["lim.p1", "lim.p2"], "unreadable_count": 2}
    assert grants(few) == ["GRANT SELECT ON lim.p1, lim.p2 TO partman_role;"]
    many = found({"unreadable": ["lim.p1", "lim.p2"], "unreadable_count": 9})
    assert [f.grant for f in many] == ["GRANT SELECT ON ALL TABLES IN SCHEMA lim TO partman_role;"]
    assert "lim.p1, lim.p2 and 7 more" in many[0].problem


def test_archive_needs_create_on_the_database_and_the_archive_schema() -> None:
    missing = {"archive_sql": "lim_archive", "archive_exists": False}
    assert grants(missing) == ["GRANT CREATE ON DATABASE app TO partman_role;"]
    assert grants(missing, database_create=True) == []
    there = {**missing, "archive_exists": True, "archive_usage": True}
    assert grants(there, database_create=True) == [
        "GRANT CREATE ON SCHEMA lim_archive TO partman_role;"
    ]


def test_a_missing_table_is_left_to_the_other_checks() -> None:
    assert found({"table_exists": False, "schema_create": False, "acts_as_owner": False}) == []


def test_the_metadata_schema() -> None:
    assert grants(schema_exists=False) == ["GRANT CREATE ON DATABASE app TO partman_role;"]
    assert grants(schema_exists=False, database_create=True) == []
    assert grants(tables=[], schema_owner=False) == [
        "GRANT CREATE ON DATABASE app TO partman_role;",
        "ALTER SCHEMA partman_meta OWNER TO partman_role;",
    ]
    lacking = found(schema_usage=False, tables_lacking=["runs"])
    assert [f.grant for f in lacking] == [
        "GRANT USAGE ON SCHEMA partman_meta TO partman_role;",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA partman_meta TO "
        "partman_role;",
    ]
    assert lacking[0].table is None and str(lacking[0]).startswith("partman's metadata schema")
    assert lacking[1].to_dict()["table"] is None


def test_needs_follow_the_table_and_its_tenants_policies() -> None:
    forever = record(table_id=1, name="forever")
    dropped = record(table_id=2, name="dropped", retention="30 days")
    archived = dataclasses.replace(
        record(table_id=3, name="archived"), retention_action="detach", archive_schema="old"
    )
    tenants = [
        TenantRecord(3, "a", "7 days", None, "archive"),
        TenantRecord(3, "b", "7 days", None, None),  # inherits detach
        TenantRecord(1, "c", "forever", None, "archive"),  # keeps all: no retention
    ]
    assert needs(state([forever, dropped, archived], tenants=tenants)) == [
        Need("public", "forever", retains=False, drop_only=True, archive_schema=None),
        Need("public", "dropped", retains=True, drop_only=True, archive_schema=None),
        Need("public", "archived", retains=True, drop_only=False, archive_schema="old"),
    ]
