"""The benchmark's naive runner is a fair comparison (same embeddings), and `cpembed bench` runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import SENTENCES
from cpembed import CPConfig, CPEncoder
from cpembed.benchmark import sentences_of
from cpembed.cli import main
from cpembed.naive import NaiveCP


@pytest.mark.parametrize("prompt", ["prompteol", "ck"])
@pytest.mark.parametrize("cp", [None, CPConfig(layer=3, alpha=2.0), CPConfig(layer=2, norm="recover", site="ffn")])
def test_naive_two_pass_equals_the_encoder(tiny_lm, prompt, cp):
    encoder = CPEncoder(tiny_lm, prompt=prompt, cp=cp)
    naive = NaiveCP(CPEncoder(tiny_lm, prompt=prompt, cp=cp, engine="padded")).encode(SENTENCES, batch_size=4)
    np.testing.assert_allclose(naive, encoder.encode(SENTENCES), atol=1e-5, rtol=1e-5)


def test_benchmark_sentences_have_the_asked_length():
    texts = sentences_of(12, 5)
    assert len(set(texts)) == 5 and all(len(t.split()) == 12 for t in texts)


def test_bench_command_writes_the_report(tiny_model_dir, tmp_path):
    target = tmp_path / "docs" / "PERFORMANCE.md"
    result = CliRunner().invoke(
        main, ["bench", "--model", tiny_model_dir, "--quick", "--count", "8", "--output", str(target)]
    )
    assert result.exit_code == 0, result.output
    text = target.read_text()
    assert "| prompteol | 8 | 16 |" in text and "CP fast / naive" in text and "## Memory" in text
    assert (target.parent / "performance" / "throughput.png").read_bytes()[:4] == b"\x89PNG"
    timings = json.loads((target.parent / "performance" / "bench.json").read_text())["timings"]
    assert {t["name"] for t in timings} == {"plain", "plain (padded)", "CP fast", "CP padded", "CP naive"}


def test_opening_cache_benchmark_writes_its_section(tiny_model_dir, tmp_path, monkeypatch):
    import runpy
    import sys
    from pathlib import Path

    script = Path(__file__).parents[1] / "benchmarks" / "prefix_cache.py"
    target = tmp_path / "docs" / "PERFORMANCE.md"
    args = ["--model", tiny_model_dir, "--count", "4", "--rounds", "1", "--prompts", "prompteol", "--words", "8,20"]
    monkeypatch.setattr(sys, "argv", [str(script), *args, "--output", str(target)])
    runpy.run_path(str(script), run_name="__main__")
    text = target.read_text()
    assert "## The template's opening, computed once per model" in text
    rows = json.loads((target.parent / "performance" / "prefix_cache.json").read_text())["rows"]
    assert {r["engine"] for r in rows} == {"plain", "CP fast", "CP fast, opening per pack", "CP naive"}
    assert all(r["rate"] > 0 for r in rows) and len(rows) == 2 * 4
