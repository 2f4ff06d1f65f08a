"""The documentation site builds without a warning, and what it promises matches the code.

`mkdocs build --strict` runs in a subprocess (a few seconds, no network: no plugin fetches
anything and the theme's web fonts are off): a broken link or anchor, a page missing from the
nav, or a docstring mkdocstrings cannot render fails the suite. The other tests pin the parts of
the pages that restate the code: every series in the Prometheus rules is one the service
exports, every Config, Table and [service] field is documented.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from partman import Config, Table, Tenant
from partman.service.metrics import SERIES
from partman.settings import SERVICE_FIELDS, TABLE_FIELDS, TENANT_FIELDS
from partman.settings.values import DATABASES_FIELDS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_the_site_builds_strictly_without_warnings(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARTMAN_")}
    env["NO_MKDOCS_2_WARNING"] = "1"  # Material's end-of-life banner: not a build warning
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    warnings = [line for line in output.splitlines() if re.match(r"\s*(WARNING|ERROR)\b", line)]
    assert not warnings, "\n".join(warnings)
    assert (tmp_path / "index.html").is_file()
    assert (tmp_path / "api" / "index.html").is_file()
    api = (tmp_path / "api" / "index.html").read_text(encoding="utf-8")
    for name in ("partman.Manager", "partman.Config", "partman.Table", "partman.Report"):
        assert f'id="{name}"' in api, f"{name} missing from the API reference"


def _yaml_blocks(page: Path) -> list[object]:
    text = page.read_text(encoding="utf-8")
    return [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.S)]


def test_alert_rules_parse_and_use_only_exported_series() -> None:
    rules = [
        rule
        for block in _yaml_blocks(DOCS / "operations.md")
        if isinstance(block, dict) and "groups" in block
        for group in block["groups"]
        for rule in group["rules"]
    ]
    assert len(rules) >= 5
    suffixes = ("_total", "_bucket", "_sum", "_count", "_created")
    for rule in rules:
        assert {"alert", "expr", "labels", "annotations"} <= rule.keys(), rule
        for series in re.findall(r"\bpartman_[a-z_]+", rule["expr"]):
            family = next((series[: -len(s)] for s in suffixes if series.endswith(s)), series)
            assert family in SERIES or series in SERIES, f"{rule['alert']}: {series}"


def test_every_series_the_service_exports_is_documented() -> None:
    text = (DOCS / "operations.md").read_text(encoding="utf-8")
    for family in SERIES:
        counter = f"{family}_total"
        assert f"`{family}`" in text or f"`{counter}`" in text, family


@pytest.mark.parametrize("kind", [Config, Table, Tenant])
def test_every_field_is_in_the_configuration_page(kind: type) -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    for f in dataclasses.fields(kind):
        if f.init:
            assert f"`{f.name}`" in text, f"{kind.__name__}.{f.name}"


def test_every_file_key_is_in_the_configuration_page() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    for key in [*TABLE_FIELDS, *TENANT_FIELDS, *SERVICE_FIELDS, *DATABASES_FIELDS]:
        assert re.search(rf"\b{key}\b", text), key


def test_config_files_in_the_pages_are_valid() -> None:
    """Every whole partman.toml shown (not the one-section fragments) reads without a problem."""
    from partman import settings

    pages = [DOCS / "configuration.md", *sorted((DOCS / "migrating").glob("*.md"))]
    checked = 0
    for page in pages:
        for block in re.findall(r"```toml\n(.*?)```", page.read_text(encoding="utf-8"), re.S):
            if not block.lstrip().startswith(("[database]", "[partman]", "[[table]]")):
                continue
            environ = {
                "DATABASE_URL": "postgresql://app@db/app",
                "PARTMAN_TOKEN": "s3cret",
                "ORDERS_DSN": "postgresql://app@orders/orders",
            }
            found = settings.parse(block, file=page.name, environ=environ)
            assert not found.problems, "\n".join(str(p) for p in found.problems)
            checked += 1
    assert checked >= 4
