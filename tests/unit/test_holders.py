"""The look for holders' rows as partman says them, and which autovacuum it may cancel."""

from __future__ import annotations

from partman.model.holders import Holder

SESSION = (41, "AccessShareLock", "orders", "billing", "idle in transaction", 12.34, "SELECT 1")
VACUUM = (42, "ShareUpdateExclusiveLock", "orders_default", "", "active", 3.0, "autovacuum: x")


def test_an_application_session_is_named_with_its_transaction_and_query() -> None:
    holder = Holder.of((*SESSION, False, False))
    assert not holder.cancellable
    assert holder.describe() == (
        "pid 41 (billing, idle in transaction, transaction open 12.3s) holds AccessShareLock "
        "on orders: 'SELECT 1'"
    )


def test_an_autovacuum_may_be_cancelled_unless_it_prevents_wraparound_or_was_refused() -> None:
    plain = Holder.of((*VACUUM, True, False))
    assert plain.cancellable
    assert not plain.refuse().cancellable
    assert "pg_signal_autovacuum_worker" in plain.refuse().describe()
    wraparound = Holder.of((*VACUUM, True, True))
    assert not wraparound.cancellable
    assert "to prevent wraparound, which PostgreSQL lets no one cancel" in wraparound.describe()
    assert "orders_default" in wraparound.describe() and "pid 42" in wraparound.describe()


def test_missing_activity_columns_read_as_empty() -> None:
    holder = Holder.of((7, "AccessExclusiveLock", "t", None, None, None, None, False, False))
    assert (holder.application, holder.state, holder.age, holder.query) == ("", "", 0.0, "")


def test_a_young_idle_in_transaction_session_is_between_statements_an_old_one_is_not() -> None:
    young = Holder.of((41, "RowExclusiveLock", "t", "app", "idle in transaction", 0.01, "q", 0, 0))
    old = Holder.of((41, "RowExclusiveLock", "t", "app", "idle in transaction", 0.2, "q", 0, 0))
    busy = Holder.of((41, "RowExclusiveLock", "t", "app", "active", 0.01, "q", False, False))
    assert young.between_statements(0.3)
    assert not old.between_statements(0.3)  # over a fifth of the budget: a stalled transaction
    assert not busy.between_statements(0.3)
    assert not Holder.of((*VACUUM, True, False)).between_statements(100.0)
