"""catalog.py's pieces that need no server: the collector pause of big reads."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from partman.db.catalog import gc_paused


@pytest.fixture(autouse=True)
def collector() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_the_collector_is_paused_during_a_read_and_back_after() -> None:
    gc.enable()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():  # a second read at the same time shares the pause
            assert not gc.isenabled()
        assert not gc.isenabled()  # ... which the first read still holds
    assert gc.isenabled()


def test_overlapping_reads_end_the_pause_with_the_last_one() -> None:
    gc.enable()
    first, second = gc_paused(), gc_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_collector_the_application_disabled_stays_disabled() -> None:
    gc.disable()
    with gc_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_an_error_in_the_read_ends_the_pause_too() -> None:
    gc.enable()
    with pytest.raises(ValueError), gc_paused():
        raise ValueError("bad row")
    assert gc.isenabled()
