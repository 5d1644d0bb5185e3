"""Rules about the test suite itself, so that a fresh clone without the evaluation data passes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cpembed.evaluation import data as senteval

TESTS = Path(__file__).resolve().parent
# A path into the shared data folder written out, in any of the forms a test might build it.
_SHARED_PATH = re.compile(r"""["']shared["']\s*[/,)]|shared/data|parents\[2\]""")


def test_only_conftest_knows_where_the_shared_data_is():
    """Real data comes from the `senteval_data` / `raw_stsb_data` fixtures, which skip where it is absent."""
    offenders = [
        path.name
        for path in TESTS.glob("*.py")
        if path.name not in ("conftest.py", Path(__file__).name)
        and _SHARED_PATH.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], f"use the senteval_data / raw_stsb_data fixtures instead of a path in {offenders}"


def test_the_library_finds_no_data_without_the_fixtures():
    """A test that reads the data through the library's own search fails everywhere, not only on a fresh clone."""
    with pytest.raises(senteval.DataNotFoundError):
        senteval.find_data_dir()
    with pytest.raises(senteval.DataNotFoundError):
        senteval.find_raw_stsb_dir()
