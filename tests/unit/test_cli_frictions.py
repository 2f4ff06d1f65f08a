"""Small things a new user met in the first hour (issue 13): one `message` per JSON log line,
a finished progress bar in the finished colour, timestamps to the second, the schema-qualified
name suggested for a bare one, and a README in each example's folder."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import logging
import re
from pathlib import Path

from rich.console import Console

from partman.cli.common import JsonLogFormatter
from partman.cli.names import did_you_mean, suggestions
from partman.cli.plan import _Progress
from partman.logs import log_event
from partman.model.operations import CreatePartition, Notice
from partman.model.text import iso_seconds

ROOT = Path(__file__).resolve().parents[2]


def test_an_event_with_a_message_field_has_one_message_in_its_json_line() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLogFormatter())
    logger = logging.getLogger("test.frictions")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    notice = Notice("info", "convoy.events", "convoy.events_p1 is past retention", None, "x.y")
    log_event(logger, logging.INFO, "notice", notice.message, **notice.to_dict())
    line = json.loads(stream.getvalue())
    assert line["message"] == "convoy.events_p1 is past retention"
    assert "message_" not in line
    assert line["partition"] == "x.y" and line["event"] == "notice"


def test_uvicorns_colour_copy_of_its_message_is_not_a_field() -> None:
    record = logging.makeLogRecord({"msg": "Started", "color_message": "\x1b[1mStarted\x1b[0m"})
    assert "color_message" not in json.loads(JsonLogFormatter().format(record))


def _bar_colours(output: str) -> set[str]:
    """The colours (SGR codes) the bar's segments were drawn in, in every frame."""
    return set(re.findall(r"\x1b\[([0-9;]+)m━+", output))


def test_a_progress_bar_is_drawn_in_one_colour_and_its_finished_frame_too() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, color_system="truecolor", width=80)
    progress = _Progress(2, console)
    op = CreatePartition(
        parent_schema="s",
        parent_name="t",
        tenant=None,
        partition_schema="s",
        partition_name="t_p1",
        lower=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        upper=dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
        reason="current period",
    )
    with progress:
        progress.step("create", op)
        progress.progress.refresh()
        progress.step("create", dataclasses.replace(op, partition_name="t_p2"))
        progress.progress.refresh()
    output = buffer.getvalue()
    last = output.rsplit("\r", 1)[-1]
    assert "done" in last and "2/2" in last
    filled = _bar_colours(output)
    assert len(filled - {"38;5;237"}) == 1, filled  # one fill colour, besides the empty bar's
    assert _bar_colours(last) == filled - {"38;5;237"}  # finished: all of it in that colour


def test_times_are_shown_to_the_second() -> None:
    at = dt.datetime(2026, 12, 2, 15, 17, 21, 858505, tzinfo=dt.UTC)
    assert iso_seconds(at) == "2026-12-02T15:17:21+00:00"


def test_a_bare_or_misspelled_table_name_gets_its_schema_qualified_names() -> None:
    known = ["convoy.events", "convoy.event_deliveries", "audit.events"]
    assert suggestions("events", known) == ["convoy.events", "audit.events"]
    assert did_you_mean("convoy.evnts", known) == "; did you mean convoy.events?"
    assert did_you_mean("evnts", ["convoy.events"]) == "; did you mean convoy.events?"
    assert did_you_mean("convoy.events", ["convoy.events"]) == ""
    assert did_you_mean("zzz", known) == ""


def test_each_example_folder_has_a_readme_with_the_commands_to_run_it() -> None:
    for folder in ("async_service", "django_project", "alembic_project"):
        readme = ROOT / "examples" / folder / "README.md"
        assert readme.is_file(), readme
        text = readme.read_text(encoding="utf-8")
        commands = re.findall(r"^\$ (.+)$", text, re.M)
        assert commands, folder
        for name in re.findall(r"`([\w/]+\.(?:py|toml|sql|ini))`", text):
            if "/" not in name or name.startswith(folder):
                assert any((ROOT / "examples" / folder).rglob(Path(name).name)), (folder, name)
