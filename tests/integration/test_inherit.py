"""New partitions carry what their parent declares; adopted ones that do not are reported.

CREATE TABLE (LIKE parent ...) + ATTACH keeps the parent's lock light, but LIKE copies columns,
defaults, constraints and indexes only: replica identity, owner, grants, tablespace and access
method are partman's to carry (in the transaction that creates the partition, before ATTACH).
Roles and tablespaces are cluster-wide: each test names its own uniquely and drops them.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

import partman

from seed import NOW

Conn = psycopg.Connection[Any]
DAY = dt.timedelta(days=1)

ITEMS = """
CREATE SCHEMA app;
CREATE TABLE app.items (id int NOT NULL, at timestamptz NOT NULL, note text)
    PARTITION BY RANGE (at) {extra};
"""


def _table(**policy: Any) -> partman.Table:
    return partman.Table(
        name="items", schema="app", partition_by="at", partition_interval="1 day", **policy
    )


def _maintain(dsn: str, clock: partman.SimulatedClock | None = None, **policy: Any) -> None:
    with partman.Manager(dsn, clock=clock or partman.SimulatedClock(NOW)) as manager:
        manager.add_managed_table(_table(**policy))
        report = manager.maintain()
        assert report.ok and report.created, str(report)


def _created(conn: Conn) -> list[str]:
    """The partitions partman made of app.items."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'app.items'::regclass "
        "AND obj_description(c.oid, 'pg_class') LIKE 'managed by partman%%' ORDER BY 1"
    ).fetchall()
    assert rows
    return [r[0] for r in rows]


@pytest.fixture
def roles(conn: Conn) -> Iterator[Callable[[str], str]]:
    """Makes uniquely named roles (LOGIN, trusted locally); drops what they own, then them."""
    made: list[str] = []

    def make(label: str) -> str:
        name = f"partman_t_{label}_{secrets.token_hex(4)}"
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
        made.append(name)
        return name

    yield make
    if made:
        names = sql.SQL(", ").join(sql.Identifier(n) for n in made)
        conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(names))
        conn.execute(sql.SQL("DROP ROLE {}").format(names))


def _as(dsn: str, role: str) -> str:
    return make_conninfo(dsn, user=role)


# -- replica identity ------------------------------------------------------------------------


def test_replica_identity_full_lets_a_published_table_update(dsn: str, conn: Conn) -> None:
    conn.execute(ITEMS.format(extra=""))
    conn.execute("ALTER TABLE app.items REPLICA IDENTITY FULL")
    publication = f"pub_{secrets.token_hex(4)}"  # per database: dropped with it
    conn.execute(
        sql.SQL("CREATE PUBLICATION {} FOR TABLE app.items").format(sql.Identifier(publication))
    )
    _maintain(dsn)
    identities = conn.execute(
        "SELECT DISTINCT c.relreplident::text FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'app.items'::regclass"
    ).fetchall()
    assert identities == [("f",)]
    conn.execute("INSERT INTO app.items VALUES (1, %s, 'a')", (NOW,))
    # without the parent's identity: "cannot update table ... because it does not have a
    # replica identity and publishes updates"
    conn.execute("UPDATE app.items SET note = 'b' WHERE id = 1")
    conn.execute("DELETE FROM app.items WHERE id = 1")


def test_replica_identity_using_index_maps_to_each_partitions_own_index(
    dsn: str, conn: Conn
) -> None:
    conn.execute(ITEMS.format(extra=""))
    conn.execute(
        "CREATE UNIQUE INDEX items_key ON app.items (id, at);"
        "ALTER TABLE app.items REPLICA IDENTITY USING INDEX items_key;"
        # rows waiting in a default partition: the create that moves them attaches apart
        "CREATE TABLE app.items_hand_default PARTITION OF app.items DEFAULT;"
    )
    conn.execute("INSERT INTO app.items VALUES (1, %s, 'a')", (NOW,))
    _maintain(dsn)
    rows = conn.execute(
        """
SELECT c.relname, c.relreplident::text,
       (SELECT pi.inhparent::regclass::text FROM pg_index x
          JOIN pg_inherits pi ON pi.inhrelid = x.indexrelid
         WHERE x.indrelid = c.oid AND x.indisreplident)
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'app.items'::regclass AND c.relname <> 'items_hand_default'"""
    ).fetchall()
    assert len(rows) == 11
    assert {(identity, index) for _, identity, index in rows} == {("i", "app.items_key")}
    moved = conn.execute("SELECT tableoid::regclass::text FROM app.items").fetchall()
    assert moved[0][0] != "app.items_hand_default"


# -- owner and grants ------------------------------------------------------------------------


def test_partitions_belong_to_the_parents_owner_when_partman_is_another_role(
    dsn: str, conn: Conn, roles: Callable[[str], str]
) -> None:
    owner, runner = roles("owner"), roles("runner")
    ident = sql.Identifier
    conn.execute(
        sql.SQL(
            "GRANT {owner} TO {runner}; GRANT CREATE ON DATABASE {db} TO {runner}; "
            "CREATE SCHEMA app AUTHORIZATION {owner}; GRANT USAGE, CREATE ON SCHEMA app TO {runner}"
        ).format(owner=ident(owner), runner=ident(runner), db=ident(conn.info.dbname))
    )
    with psycopg.connect(_as(dsn, owner), autocommit=True) as mine:
        mine.execute(ITEMS.replace("CREATE SCHEMA app;", "").format(extra=""))
    _maintain(_as(dsn, runner))
    names = _created(conn)
    owners = conn.execute(
        "SELECT DISTINCT pg_get_userbyid(c.relowner)::text FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'app' AND c.relname = ANY(%s)",
        (names,),
    ).fetchall()
    assert owners == [(owner,)]
    # the table's owner can change and drop its partitions (not if partman's role owned them)
    with psycopg.connect(_as(dsn, owner), autocommit=True) as mine:
        partition = sql.Identifier("app", names[-1])
        mine.execute(sql.SQL("ALTER TABLE {} SET (fillfactor = 90)").format(partition))
        mine.execute(sql.SQL("DROP TABLE {}").format(partition))


def test_partitions_carry_the_parents_grants(
    dsn: str, conn: Conn, roles: Callable[[str], str]
) -> None:
    reader, writer = roles("reader"), roles("writer")
    conn.execute(ITEMS.format(extra=""))
    conn.execute(
        sql.SQL(
            "GRANT USAGE ON SCHEMA app TO {reader}, {writer}; "
            "GRANT SELECT ON app.items TO {reader}; "
            "GRANT SELECT, INSERT, UPDATE ON app.items TO {writer} WITH GRANT OPTION; "
            "GRANT REFERENCES ON app.items TO PUBLIC"
        ).format(reader=sql.Identifier(reader), writer=sql.Identifier(writer))
    )
    _maintain(dsn)
    acl = """
SELECT coalesce(pg_get_userbyid(nullif(a.grantee, 0))::text, 'PUBLIC'), a.privilege_type,
       a.is_grantable
  FROM pg_class c, aclexplode(c.relacl) a
 WHERE c.oid = %s::regclass AND a.grantee <> c.relowner ORDER BY 1, 2"""
    wanted = conn.execute(acl, ("app.items",)).fetchall()
    assert len(wanted) == 5
    for name in _created(conn):
        assert conn.execute(acl, (f"app.{name}",)).fetchall() == wanted, name
    with psycopg.connect(_as(dsn, reader), autocommit=True) as theirs:
        partition = sql.Identifier("app", _created(conn)[0])
        theirs.execute(sql.SQL("SELECT count(*) FROM {}").format(partition))  # directly


# -- tablespace, access method, and what LIKE + ATTACH already give ---------------------------


def test_partitions_carry_the_parents_tablespace_and_access_method(dsn: str, conn: Conn) -> None:
    space = f"partman_t_space_{secrets.token_hex(4)}"
    method = f"partman_t_am_{secrets.token_hex(4)}"
    conn.execute("SET allow_in_place_tablespaces = on")  # a directory inside the data directory
    conn.execute(sql.SQL("CREATE TABLESPACE {} LOCATION ''").format(sql.Identifier(space)))
    has_method = conn.info.server_version >= 170000  # a partitioned table has one since 17
    try:
        extra = sql.SQL("TABLESPACE {}").format(sql.Identifier(space))
        if has_method:
            conn.execute(
                sql.SQL("CREATE ACCESS METHOD {} TYPE TABLE HANDLER heap_tableam_handler").format(
                    sql.Identifier(method)
                )
            )
            extra = sql.SQL("USING {} ").format(sql.Identifier(method)) + extra
        conn.execute(sql.SQL(ITEMS).format(extra=extra))
        _maintain(dsn)
        found = conn.execute(
            """
SELECT DISTINCT ts.spcname::text, am.amname::text
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
  LEFT JOIN pg_tablespace ts ON ts.oid = c.reltablespace
  LEFT JOIN pg_am am ON am.oid = c.relam
 WHERE i.inhparent = 'app.items'::regclass"""
        ).fetchall()
        assert found == [(space, method if has_method else "heap")]
    finally:
        conn.execute("DROP SCHEMA IF EXISTS app CASCADE")
        conn.execute(sql.SQL("DROP TABLESPACE {}").format(sql.Identifier(space)))


def test_partitions_have_every_index_constraint_and_trigger_of_the_parent(
    dsn: str, conn: Conn
) -> None:
    conn.execute(
        """
CREATE SCHEMA app;
CREATE TABLE app.kinds (kind text PRIMARY KEY);
INSERT INTO app.kinds VALUES ('a');
CREATE TABLE app.items (
    id int NOT NULL,
    at timestamptz NOT NULL,
    kind text NOT NULL DEFAULT 'a' REFERENCES app.kinds,
    qty int CHECK (qty >= 0),
    note text,
    PRIMARY KEY (id, at),
    UNIQUE (note, at)
) PARTITION BY RANGE (at);
CREATE INDEX items_lower_note ON app.items (lower(note));
CREATE INDEX items_some ON app.items (qty) WHERE qty > 10;
CREATE STATISTICS items_stats ON kind, qty FROM app.items;
CREATE FUNCTION app.stamp() RETURNS trigger LANGUAGE plpgsql AS
    $$BEGIN NEW.note := coalesce(NEW.note, 'stamped'); RETURN NEW; END$$;
CREATE TRIGGER items_stamp BEFORE INSERT ON app.items FOR EACH ROW EXECUTE FUNCTION app.stamp();
"""
    )
    _maintain(dsn)
    indexes, constraints, triggers = (
        conn.execute(q).fetchall()
        for q in (
            # each partition: exactly one index per parent index, each attached to it
            """
SELECT c.relname, count(x.indexrelid), count(pi.inhparent),
       (SELECT count(*) FROM pg_index px WHERE px.indrelid = 'app.items'::regclass)
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
  JOIN pg_index x ON x.indrelid = c.oid
  LEFT JOIN pg_inherits pi ON pi.inhrelid = x.indexrelid
 WHERE i.inhparent = 'app.items'::regclass GROUP BY c.relname""",
            # the CHECK copied by LIKE, the foreign key cloned by ATTACH
            """
SELECT DISTINCT k.contype::text, k.conparentid <> 0
  FROM pg_inherits i JOIN pg_constraint k ON k.conrelid = i.inhrelid
 WHERE i.inhparent = 'app.items'::regclass AND k.contype IN ('c', 'f') ORDER BY 1""",
            # the row trigger cloned by ATTACH
            """
SELECT count(*), count(DISTINCT t.tgrelid)
  FROM pg_inherits i JOIN pg_trigger t ON t.tgrelid = i.inhrelid AND t.tgparentid <> 0
      AND NOT t.tgisinternal
 WHERE i.inhparent = 'app.items'::regclass""",
        )
    )
    assert len(indexes) == 11
    assert all(total == attached == wanted == 4 for _, total, attached, wanted in indexes)
    assert constraints == [("c", False), ("f", True)]
    assert triggers == [(11, 11)]
    statistics = conn.execute(
        "SELECT count(DISTINCT s.stxrelid) FROM pg_inherits i "
        "JOIN pg_statistic_ext s ON s.stxrelid = i.inhrelid "
        "WHERE i.inhparent = 'app.items'::regclass"
    ).fetchone()
    assert statistics == (11,)
    today = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'app.items'::regclass "
        "AND pg_get_expr(c.relpartbound, c.oid) LIKE %s",
        (f"FOR VALUES FROM ('{NOW:%Y-%m-%d}%",),
    ).fetchone()
    assert today is not None
    partition = sql.Identifier("app", today[0])  # written to directly, not through the parent
    insert = sql.SQL("INSERT INTO {} (id, at, kind) VALUES (1, %s, %s)").format(partition)
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute(insert, (NOW, "nope"))
    conn.execute(insert, (NOW, "a"))
    stamped = conn.execute(sql.SQL("SELECT note FROM {}").format(partition)).fetchone()
    assert stamped == ("stamped",)


# -- storage parameters: the table's, since PostgreSQL refuses them on a partitioned parent ------


def _reloptions(conn: Conn) -> dict[str, list[str] | None]:
    """pg_class.reloptions of each partition partman made of app.items."""
    rows = conn.execute(
        "SELECT c.relname, c.reloptions FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'app.items'::regclass ORDER BY 1"
    ).fetchall()
    assert rows
    return {r[0]: None if r[1] is None else sorted(r[1]) for r in rows}


def test_partitions_get_the_tables_storage_parameters(dsn: str, conn: Conn) -> None:
    conn.execute(ITEMS.format(extra=""))
    parameters = {
        "fillfactor": 90,
        "autovacuum_vacuum_scale_factor": 0.05,
        "autovacuum_enabled": False,
        "toast.autovacuum_vacuum_threshold": 1000,
    }
    refused = (psycopg.errors.WrongObjectType, psycopg.errors.InvalidParameterValue)  # 18, 15
    with pytest.raises(refused):  # the parent cannot have them
        conn.execute("ALTER TABLE app.items SET (fillfactor = 90)")
    _maintain(dsn, default_partition=True, storage_parameters=parameters)
    options = _reloptions(conn)
    expected = [
        "autovacuum_enabled=false",
        "autovacuum_vacuum_scale_factor=0.05",
        "fillfactor=90",
    ]
    assert set(options) == set(_created(conn)) and len(options) > 1
    assert all(o == expected for o in options.values()), options
    toast = conn.execute(
        "SELECT DISTINCT t.reloptions FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class t ON t.oid = c.reltoastrelid WHERE i.inhparent = 'app.items'::regclass"
    ).fetchall()
    assert toast == [(["autovacuum_vacuum_threshold=1000"],)]


def _cli(cwd: Path, dsn: str, *args: str) -> str:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PARTMAN_")}
    environ.update({"COLUMNS": "200", "NO_COLOR": "1", "PARTMAN_DSN": dsn})
    proc = subprocess.run(
        [sys.executable, "-m", "partman", *args],
        cwd=cwd,
        env=environ,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    return proc.stdout


ITEMS_TOML = """\
[[table]]
name = "items"
schema = "app"
partition_by = "at"
partition_count = {count}
storage_parameters = {{ fillfactor = {fillfactor} }}
"""


def test_a_changed_storage_parameter_is_planned_and_given_to_later_partitions(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    conn.execute(ITEMS.format(extra=""))
    config = tmp_path / "partman.toml"
    config.write_text(ITEMS_TOML.format(count=2, fillfactor=90))
    _cli(tmp_path, dsn, "apply", "--yes")
    first = _reloptions(conn)
    assert len(first) == 3 and all(o == ["fillfactor=90"] for o in first.values()), first
    assert "No changes" in _cli(tmp_path, dsn, "plan")

    config.write_text(ITEMS_TOML.format(count=4, fillfactor=70))
    plan = _cli(tmp_path, dsn, "plan")
    assert "storage_parameters fillfactor=90 -> fillfactor=70" in plan, plan
    _cli(tmp_path, dsn, "apply", "--yes")
    after = _reloptions(conn)
    assert len(after) == 5
    assert {k: v for k, v in after.items() if k in first} == first  # left as they were
    assert [v for k, v in after.items() if k not in first] == [["fillfactor=70"]] * 2
    assert "No changes" in _cli(tmp_path, dsn, "plan")


def test_an_adopted_partition_without_the_tables_storage_parameters_is_reported(
    dsn: str, conn: Conn
) -> None:
    conn.execute(ITEMS.format(extra=""))
    conn.execute(
        "CREATE TABLE app.items_same PARTITION OF app.items "
        "    FOR VALUES FROM ('2026-03-08') TO ('2026-03-09') WITH (fillfactor = 90.0);"
        "CREATE TABLE app.items_other PARTITION OF app.items "
        "    FOR VALUES FROM ('2026-03-09') TO ('2026-03-10') WITH (fillfactor = 50)"
    )
    with partman.Manager(dsn, clock=partman.SimulatedClock(NOW)) as manager:
        report = manager.import_existing_partitions(_table(storage_parameters={"fillfactor": 90}))
    assert sorted(f.partition for f in report.imported) == ["app.items_other", "app.items_same"]
    assert [f.partition for f in report.differing] == ["app.items_other"]
    assert (
        "storage parameters fillfactor=50 (the table's storage_parameters: fillfactor=90)"
        in report.differing[0].reason
    )
    assert _reloptions(conn)["items_other"] == ["fillfactor=50"]  # left as it is


# -- adopted partitions ------------------------------------------------------------------------


def test_adopted_partitions_that_differ_are_reported_and_left_as_they_are(
    dsn: str, conn: Conn, roles: Callable[[str], str]
) -> None:
    reader = roles("reader")
    conn.execute(ITEMS.format(extra=""))
    conn.execute(
        sql.SQL(
            "ALTER TABLE app.items REPLICA IDENTITY FULL; GRANT SELECT ON app.items TO {};"
            "CREATE TABLE app.items_same PARTITION OF app.items "
            "    FOR VALUES FROM ('2026-03-08') TO ('2026-03-09');"
            "ALTER TABLE app.items_same REPLICA IDENTITY FULL;"
            "GRANT SELECT ON app.items_same TO {};"
            "CREATE TABLE app.items_plain PARTITION OF app.items "
            "    FOR VALUES FROM ('2026-03-09') TO ('2026-03-10')"
        ).format(sql.Identifier(reader), sql.Identifier(reader))
    )
    with partman.Manager(dsn, clock=partman.SimulatedClock(NOW)) as manager:
        report = manager.import_existing_partitions(_table())
    assert sorted(f.partition for f in report.imported) == ["app.items_plain", "app.items_same"]
    assert [f.partition for f in report.differing] == ["app.items_plain"]
    reason = report.differing[0].reason
    assert "replica identity default (the parent's: full)" in reason
    assert f"grants none (the parent's: {reader}: SELECT)" in reason
    assert "left as it is" in reason
    assert "differs app.items_plain: replica identity default" in str(report)
    assert report.to_dict()["differing"][0]["partition"] == "app.items_plain"
    untouched = conn.execute(
        "SELECT relreplident::text, relacl IS NULL FROM pg_class "
        "WHERE oid = 'app.items_plain'::regclass"
    ).fetchone()
    assert untouched == ("d", True)


# -- the parent's statistics -------------------------------------------------------------------


def test_a_pass_that_changed_partitions_analyzes_the_parent_alone_on_18(
    dsn: str, conn: Conn
) -> None:
    conn.execute(ITEMS.format(extra=""))
    clock = partman.SimulatedClock(NOW)
    _maintain(dsn, clock)
    conn.execute(
        "INSERT INTO app.items SELECT g, %s + g * interval '1 minute', 'x' "
        "FROM generate_series(1, 500) g",
        (NOW,),
    )
    conn.execute("SELECT pg_stat_reset()")
    clock.advance(DAY)
    _maintain(dsn, clock)
    parent = conn.execute(
        "SELECT count(*) FROM pg_statistic WHERE starelid = 'app.items'::regclass"
    ).fetchone()
    partitions = conn.execute(
        "SELECT count(*) FROM pg_statistic s JOIN pg_inherits i ON i.inhrelid = s.starelid "
        "WHERE i.inhparent = 'app.items'::regclass"
    ).fetchone()
    assert partitions == (0,)  # ONLY: the partitions are autovacuum's
    if conn.info.server_version >= 180000:
        assert parent is not None and parent[0] > 0
    else:  # ANALYZE without ONLY would analyze every partition too: not done before 18
        assert parent == (0,)
