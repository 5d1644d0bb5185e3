"""The documentation site builds with --strict: every page in the nav, every link and anchor found,
every docstring the API reference draws parsed without a warning."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_site_builds_strict_with_the_api_reference(tmp_path):
    # A missing tool fails rather than skips: CI installs it, and a skip would hide broken links.
    missing = [name for name in ("mkdocs", "material", "mkdocstrings_handlers.python") if not _importable(name)]
    assert not missing, f"{', '.join(missing)} not installed: pip install -e .[docs] (make setup does)"

    site = tmp_path / "site"
    environment = os.environ | {"NO_MKDOCS_2_WARNING": "1"}  # a banner, not a finding
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )
    assert build.returncode == 0, f"mkdocs build --strict failed:\n{build.stdout}\n{build.stderr}"

    encoder = site / "reference" / "encoder" / "index.html"
    assert encoder.is_file() and "CPEncoder" in encoder.read_text(), "the API reference has no CPEncoder page"
    assert "encode_settings" in encoder.read_text(), "CPEncoder's methods are missing from its reference page"
    assert "CPConfig" in (site / "reference" / "config" / "index.html").read_text()
    for page in ("guide/recipes", "guide/service", "RESULTS", "PERFORMANCE", "method", "decisions"):
        assert (site / page / "index.html").is_file(), f"{page}.md was not built"
    assert (site / "results" / "smollm2-135m" / "demo.txt").is_file(), "docs/results/ was not copied"


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False
