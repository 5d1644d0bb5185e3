"""The shipped defaults are the ones the documented rule picks from the published dev searches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from experiments.report_steps import choose

from cpembed import DEFAULT_CP, PAPER_CP, CPConfig, CPEncoder, default_cp

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"
SEARCHED = sorted(p.parent for p in RESULTS.glob("*/*/grid_raw.json") if (p.parent / "grid.json").is_file())


@pytest.mark.parametrize("folder", SEARCHED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_defaults_table_follows_the_rule(folder):
    grid = json.loads((folder / "grid.json").read_text())["records"]
    raw = json.loads((folder / "grid_raw.json").read_text())["records"]
    key = (folder.parent.name, folder.name)
    assert key in DEFAULT_CP, f"{key} was searched: add the rule's choice to DEFAULT_CP"
    assert DEFAULT_CP[key] == choose(grid, raw)["default"]


def test_unsearched_models_get_the_papers_settings(tiny_lm):
    assert default_cp("some/other/model", "cot") == PAPER_CP["cot"] == CPConfig(layer=7, alpha=3.0)
    assert default_cp("some/other/model", "my template") == PAPER_CP["custom"]


def test_a_default_of_no_cp_gives_plain_embeddings(tiny_lm, monkeypatch):
    monkeypatch.setitem(DEFAULT_CP, (tiny_lm.name, "prompteol"), None)
    assert CPEncoder(tiny_lm).cp is None
