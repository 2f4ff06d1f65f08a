"""partman.W001 and `manage.py partman status --json` on id tables: the runway is a number of
ids ahead of the newest id, held against a premake of partition_count windows."""

from __future__ import annotations

from partman.contrib.django.checks import _short_message
from partman.contrib.django.survey import SurveyedRunway
from partman.decide.coverage import SHORT_OF_HALF_PREMAKE, Coverage, Runway
from partman.model.intervals import Interval
from partman.model.keys import IdInterval


def id_runway(covered_until: str | None, runway_ids: int) -> Runway:
    coverage = Coverage("public.orders", None, 3, covered_until, 0.0, runway_ids=runway_ids)
    return Runway(coverage, IdInterval(1000), 10)


def test_w001_words_an_id_tables_runway_in_ids() -> None:
    short = id_runway("3000", 1500)
    assert short.short(SHORT_OF_HALF_PREMAKE)
    assert _short_message(short) == (
        "the table: runway 1500 ids (partitions until 3000), less than half its premake of "
        "10 x 1000 ids"
    )
    assert _short_message(id_runway(None, 0)) == (
        "the table: runway 0, no partition covers the newest id (its premake of 10 x 1000 "
        "ids); inserts fail, or go to a default partition"
    )
    assert not id_runway("9000", 8000).short(SHORT_OF_HALF_PREMAKE)


def test_status_json_gives_an_id_tables_runway_and_premake_in_ids() -> None:
    assert SurveyedRunway(id_runway("3000", 1500), registered=True).to_dict() == {
        "table": "public.orders",
        "tenant": None,
        "registered": True,
        "partitions": 3,
        "covered_until": "3000",
        "runway_seconds": None,
        "premake_seconds": None,
        "partition_count": 10,
        "short": True,
        "runway_ids": 1500,
        "premake_ids": 10000,
    }
    timed = Runway(Coverage("public.e", None, 2, "x", 7200.0), Interval.parse("1 hour"), 2)
    assert SurveyedRunway(timed, registered=True).to_dict()["premake_seconds"] == 7200.0
