"""Who holds a lock a partman lock request would queue behind: one row of the look for
holders (`db.ddl.lock_blockers_query`, `db.ddl.tree_lock_blockers_query`), and how to say it.

An autovacuum worker is a holder of its own kind. PostgreSQL cancels one that blocks a lock
request once the request has waited deadlock_timeout (1 s by default); partman's requests wait
at most lock_timeout, less than that, so they would time out behind it on every attempt, for
as long as it runs (hours on a big table). partman therefore cancels it itself, as PostgreSQL
would (`engine.autovacuum_async`), except one that runs to prevent wraparound, which no one
may cancel, or one this role may not signal: those are named, with what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

SIGNAL_HINT = (
    "a superuser may cancel it, and on PostgreSQL 18 a member of pg_signal_autovacuum_worker"
)


@dataclass(frozen=True)
class Holder:
    pid: int
    mode: str
    relation: str
    application: str
    state: str
    age: float
    """Seconds its transaction has been open."""
    query: str
    autovacuum: bool = False
    wraparound: bool = False
    """An autovacuum to prevent wraparound: PostgreSQL refuses to cancel it."""
    refused: bool = False
    """An autovacuum this role was not allowed to cancel."""

    @classmethod
    def of(cls, row: Sequence[Any]) -> Holder:
        pid, mode, rel, app, state, age, query, autovacuum, wraparound = row
        return cls(
            int(pid),
            str(mode),
            str(rel),
            str(app or ""),
            str(state or ""),
            float(age or 0),
            str(query or ""),
            bool(autovacuum),
            bool(wraparound),
        )

    @property
    def cancellable(self) -> bool:
        return self.autovacuum and not self.wraparound and not self.refused

    def refuse(self) -> Holder:
        return replace(self, refused=True)

    def between_statements(self, budget: float) -> bool:
        """An application's session idle in a transaction younger than a fifth of the lock
        budget (`budget` seconds): most likely between two statements, soon done."""
        return (
            not self.autovacuum
            and self.state.startswith("idle in transaction")
            and self.age < budget / 5
        )

    def autovacuum_reason(self) -> str:
        """Why an autovacuum in the way was left running."""
        if self.wraparound:
            return (
                f"autovacuum (pid {self.pid}) holds {self.mode} on {self.relation} to prevent "
                "wraparound, which PostgreSQL lets no one cancel: it goes on once that ends"
            )
        return (
            f"autovacuum (pid {self.pid}) holds {self.mode} on {self.relation} and this role "
            f"may not cancel it ({SIGNAL_HINT}): it goes on once that ends"
        )

    def describe(self) -> str:
        if self.autovacuum:
            return self.autovacuum_reason()
        return (
            f"pid {self.pid} ({self.application or 'no application_name'}, {self.state}, "
            f"transaction open {self.age:.1f}s) holds {self.mode} on {self.relation}: "
            f"{self.query!r}"
        )
