"""Roll-ups: the rules between a table's fine `partition_interval` and its coarse
`rollup_interval` (pure; `decide/rollup.py` plans, `engine/executor_async.py` swaps).

A roll-up merges the fine partitions of one coarse period into one partition of that period,
once the whole period is older than `rollup_after` (pg_partman #466). Every boundary of a
coarse period must be a boundary of a fine one, or no set of fine partitions could ever tile
it: that is what `alignment_error` checks, on the calendar of `Config.timezone`.
"""

from __future__ import annotations

from .intervals import Interval, Unit

_SECONDS = {Unit.SECOND: 1, Unit.HOUR: 3600, Unit.DAY: 86400, Unit.WEEK: 7 * 86400}


def alignment_error(fine: Interval, coarse: Interval) -> str | None:
    """Why coarse periods would not start and end on fine boundaries; None when they do.

    Days, weeks and months are counted from partman's calendar anchors (weeks from a Monday,
    months from January), hours and smaller from local midnight of the anchor day; a calendar
    coarse period over sub-day fine ones needs the fine step to divide an hour (a DST shift
    moves local midnight by whole hours; in the rare zone that shifts by 30 minutes, a period
    whose fine partitions do not tile it is left fine by the planner, never merged wrong)."""
    if coarse == fine:
        return f"rollup_interval {coarse} is partition_interval itself; choose a coarser one"
    if coarse.unit is Unit.MONTH:
        if fine.unit is Unit.MONTH:
            if coarse.count % fine.count:
                return f"{coarse} is not a whole number of {fine} partitions"
            return None
        if fine.unit is Unit.DAY and fine.count == 1:
            return None
        if fine.unit in (Unit.SECOND, Unit.HOUR):
            step = fine.count * _SECONDS[fine.unit]
            return None if 3600 % step == 0 else _sub_day(fine, coarse)
        return f"months do not start on {fine} boundaries"
    if fine.unit is Unit.MONTH:
        return f"{coarse} is shorter than, or not a multiple of, {fine}"
    coarse_s = coarse.count * _SECONDS[coarse.unit]
    fine_s = fine.count * _SECONDS[fine.unit]
    if coarse_s <= fine_s:
        return f"{coarse} is not longer than partition_interval {fine}"
    if coarse_s % fine_s:
        return f"{coarse} is not a whole number of {fine} partitions"
    if fine.unit in (Unit.SECOND, Unit.HOUR) and coarse.unit not in (Unit.SECOND, Unit.HOUR):
        return None if 3600 % fine_s == 0 else _sub_day(fine, coarse)
    return None


def _sub_day(fine: Interval, coarse: Interval) -> str:
    return (
        f"local midnight, where each {coarse} period starts, is not always on a {fine} "
        "boundary (a DST shift moves it); use a fine step that divides an hour"
    )
