"""The benchmark's naive runner is a fair comparison (same embeddings), `cpembed bench` reports the
rates of its best rounds, and side_by_side.py measures each engine in its own process. That
docs/PERFORMANCE.md is what its measurements draw is tests/test_generated_pages.py's."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import SENTENCES
from cpembed import CPConfig, CPEncoder
from cpembed.bench import sentences_of
from cpembed.cli import main

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))  # the scripts import their shared modules by name

from naive import NaiveCP  # noqa: E402


@pytest.mark.parametrize("prompt", ["prompteol", "ck"])
@pytest.mark.parametrize("cp", [None, CPConfig(layer=3, alpha=2.0), CPConfig(layer=2, norm="recover", site="ffn")])
def test_naive_two_pass_equals_the_encoder(tiny_lm, prompt, cp):
    encoder = CPEncoder(tiny_lm, prompt=prompt, cp=cp)
    naive = NaiveCP(encoder).encode(SENTENCES, batch_size=4)
    np.testing.assert_allclose(naive, encoder.encode(SENTENCES), atol=1e-5, rtol=1e-5)


def test_benchmark_sentences_have_the_asked_length():
    texts = sentences_of(12, 5)
    assert len(set(texts)) == 5 and all(len(t.split()) == 12 for t in texts)


def test_measure_takes_the_clock_around_the_run_alone(monkeypatch):
    from cpembed import bench

    ticks, ran = iter([100.0, 102.5]), []
    monkeypatch.setattr(bench.time, "perf_counter", lambda: next(ticks))
    seconds, peak = bench.measure(lambda: ran.append(True))
    assert ran == [True] and seconds == 2.5 and peak > 0


def test_bench_command_prints_plain_against_cp(tiny_model_dir, tmp_path, monkeypatch):
    """Each configuration's best round on a clock set here: a rate is the count over its seconds,
    rounds alternate their order, and the table prints those numbers."""
    from cpembed import bench

    seconds = {"plain": [2.0, 1.5], "CP": [3.0, 4.0], "grid": [6.0, 4.5]}  # round 0, round 1
    peaks = {"plain": [50.0, 60.0], "CP": [70.0, 80.0], "grid": [90.0, 95.0]}
    order, real = [], CPEncoder.encode_settings

    def recording(encoder, texts, settings, *args, **kwargs):
        order.append("grid" if len(settings) > 1 else "plain" if settings == [None] else "CP")
        return real(encoder, texts, settings, *args, **kwargs)

    def measured(run):
        run()
        name = order[-1]
        done = order.count(name) - 1
        return seconds[name][done], peaks[name][done]

    monkeypatch.setattr(CPEncoder, "encode_settings", recording)
    monkeypatch.setattr(bench, "measure", measured)
    target = tmp_path / "bench.json"
    args = ["bench", "--model", tiny_model_dir, "--count", "6", "--rounds", "2", "--prompts", "prompteol"]
    result = CliRunner().invoke(main, [*args, "--json", str(target)])
    assert result.exit_code == 0, result.output
    assert order == ["plain", "CP", "grid", "grid", "CP", "plain"]
    report = json.loads(target.read_text())
    assert (report["count"], report["words"]) == (6, 12)
    (row,) = report["rows"]
    assert row["plain_rate"] == 6 / 1.5 and row["cp_rate"] == 6 / 3.0 and row["grid_over_plain"] == 4.5 / 1.5
    assert row["grid_settings"] == 1 + 4 * 5 + 4  # layers 3..6
    assert row["peak_rss_mb"] == 95.0  # the largest of the best rounds' peaks: grid's second round
    assert "| prompteol | 4.0 | 2.0 | 0.50 | 3.00x (25 settings) | 95 | CPConfig(" in result.output


@pytest.mark.slow
def test_side_by_side_measures_each_engine_in_its_own_process(tiny_model_dir, tmp_path):
    import subprocess

    from senteval_fixture import write_raw_stsb

    raw, output = write_raw_stsb(tmp_path / "raw"), tmp_path / "docs" / "PERFORMANCE.md"
    engines = "cpembed plain float32,cpembed plain bfloat16"
    command = [sys.executable, str(REPO / "benchmarks" / "side_by_side.py"), "--model", tiny_model_dir]
    command += ["--engines", engines, "--count", "4", "--raw", str(raw), "--output", str(output)]
    done = subprocess.run(command, capture_output=True, text=True, env={"CPEMBED_CACHE": str(tmp_path / "c")} | _env())
    assert done.returncode == 0, done.stderr[-2000:]
    (result_file,) = (output.parent / "performance").glob("side_by_side-*.json")
    result = json.loads(result_file.read_text())
    assert [r["engine"] for r in result["rows"]] == engines.split(",")
    assert all(r["rate"] > 0 and r["peak_rss_mb"] > 0 and -100 <= r["spearman"] <= 100 for r in result["rows"])
    assert 0.9 < result["rows"][1]["min_cosine_to_float32"] <= 1.0001  # bfloat16 against float32
    assert result["ceiling"]["bfloat16"]["sentences_per_s"] > 0
    assert "## Side by side" in output.read_text()


def _env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if k != "CPEMBED_CACHE"}
