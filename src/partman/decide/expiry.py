"""Is an expired partition still safe to retire? The verdict of the check made, under the
parent's lock, just before anything irreversible: still the partition the plan saw, still
partman's, and no row at or after the retention cutoff, whatever its bounds say. Pure: the
executor reads the rows (`db.ddl`), this decides.
"""

from __future__ import annotations

from typing import Any

from ..model.operations import RetirePartition
from ..model.report import Skipped, SkipReason
from ..model.snapshot import is_owner_comment


def check_verdict(
    op: RetirePartition, guard: Any, oldest: Any, newest: Any, inside: int
) -> Skipped | str:
    """What the check before anything irreversible found: a `Skipped` saying why the partition
    is left alone (not the one the plan saw, or rows inside the retention window), else what
    it holds. `guard` is its (name, schema, bound, comment) row from the catalog, or None."""
    expected = (op.partition_name, op.partition_schema, op.bound_text)
    if guard is None or tuple(guard[:3]) != expected or not is_owner_comment(guard[3]):
        return Skipped(
            f"{op.partition_qualified} changed since the plan was made (renamed, "
            "re-bounded, dropped or no longer marked as partman's); left alone",
            SkipReason.CHANGED,
        )
    if inside:
        return Skipped(
            f"{op.partition_qualified} holds {inside} row(s) at or after the retention "
            f"cutoff {op.cutoff} (newest {newest}); left alone so no row inside the "
            "retention window is lost",
            SkipReason.ROWS_IN_WINDOW,
        )
    return f"rows from {oldest} to {newest}" if newest is not None else "empty"
