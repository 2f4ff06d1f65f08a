"""The browser the web UI's tests drive: Debian's chromium, never one Playwright downloads.

README's test command must pass on a fresh machine, where ``/usr/bin/chromium`` may be missing.
:func:`chromium_step` decides what to do about it (nothing, install it, or tell the person what
to run); :func:`ensure_chromium` carries that out once per test session (the ``chromium``
fixture in conftest.py). A machine that cannot have it fails the browser tests with the exact
command to run; nothing is skipped.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
INSTALL = (("apt-get", "update"), ("apt-get", "install", "-y", "chromium"))
INSTALL_TEXT = "apt-get update && apt-get install -y chromium"


class BrowserSetupError(RuntimeError):
    """Chromium is missing and could not be installed here; the message says what to run."""


@dataclass(frozen=True)
class ChromiumStep:
    """What to do before the browser tests: run `commands` (may be none), or fail with
    `refusal` (set when the binary is missing and this process may not install it)."""

    commands: tuple[tuple[str, ...], ...] = ()
    refusal: str | None = None


def chromium_step(present: bool, is_root: bool) -> ChromiumStep:
    """Present: nothing to do. Missing as root: install Debian's package (apt works as root
    without a prompt). Missing otherwise: refuse, naming the command for someone who can."""
    if present:
        return ChromiumStep()
    if is_root:
        return ChromiumStep(commands=INSTALL)
    return ChromiumStep(
        refusal=(
            f"{CHROMIUM} is missing: the web UI's browser tests drive Debian's chromium. "
            f"Install it as root, then run the tests again: sudo sh -c '{INSTALL_TEXT}'"
        )
    )


def ensure_chromium(path: Path = CHROMIUM) -> Path:
    """The chromium binary, installed first if it is missing and we run as root."""
    step = chromium_step(path.exists(), os.geteuid() == 0)
    if step.refusal is not None:
        raise BrowserSetupError(step.refusal)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in step.commands:
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
            raise BrowserSetupError(
                f"{path} is missing and `{' '.join(command)}` failed (exit {done.returncode}):\n"
                + "\n".join(tail)
                + f"\nInstall chromium by hand ({INSTALL_TEXT}), then run the tests again."
            )
    if not path.exists():
        raise BrowserSetupError(
            f"{path} is still missing after `{INSTALL_TEXT}`; install chromium by hand"
        )
    return path
