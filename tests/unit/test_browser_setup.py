"""What the test run does about a missing chromium (tests/browser.py): the decision only; the
install itself runs on a fresh machine (README's second command, .ci/run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from browser import BrowserSetupError, ChromiumStep, chromium_step, ensure_chromium


def test_present_means_nothing_to_do() -> None:
    assert chromium_step(present=True, is_root=True) == ChromiumStep()
    assert chromium_step(present=True, is_root=False) == ChromiumStep()


def test_missing_as_root_installs_debians_package() -> None:
    step = chromium_step(present=False, is_root=True)
    assert step.refusal is None
    assert step.commands == (("apt-get", "update"), ("apt-get", "install", "-y", "chromium"))


def test_missing_as_someone_else_names_the_command() -> None:
    step = chromium_step(present=False, is_root=False)
    assert step.commands == ()
    assert step.refusal is not None
    assert "/usr/bin/chromium is missing" in step.refusal
    assert "apt-get update && apt-get install -y chromium" in step.refusal


def test_a_present_binary_is_returned_without_running_anything(tmp_path: Path) -> None:
    binary = tmp_path / "chromium"
    binary.write_text("")
    assert ensure_chromium(binary) == binary


def test_a_missing_binary_never_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(BrowserSetupError, match="apt-get install -y chromium"):
        ensure_chromium(tmp_path / "chromium")
