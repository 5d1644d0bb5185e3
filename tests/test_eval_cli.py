"""`cpembed eval sts|transfer` on fixture data, and the embedding cache behind them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from cpembed import CPConfig, CPEncoder
from cpembed.cli import main
from cpembed.embedding_cache import CachedEncoder
from senteval_fixture import write_raw_stsb, write_senteval, write_transfer


@pytest.fixture
def model_dir(tiny_model_dir):
    return tiny_model_dir


def test_eval_sts_writes_json_and_markdown(model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("CPEMBED_CACHE", str(tmp_path / "cache"))
    data = write_senteval(tmp_path / "downstream")
    raw = write_raw_stsb(tmp_path / "raw")
    out = tmp_path / "out"
    args = ["eval", "sts", "--model", model_dir, "--layer", "3", "--data", str(data), "--output", str(out)]
    result = CliRunner().invoke(
        main, [*args, "--tasks", "STS12,STSBenchmark,SICKRelatedness,STSBenchmark-raw", "--raw-data", str(raw)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "sts.json").read_text())
    assert set(report["tasks"]) == {"STS12", "STSBenchmark", "SICKRelatedness", "STSBenchmark-raw"}
    assert report["average_over"] == ["STS12", "STSBenchmark", "SICKRelatedness"]  # raw is reported beside
    assert report["settings"]["cp"]["layer"] == 3 and report["settings"]["versions"]["torch"]
    assert "| STS12 | STS-B | SICK-R | STS-B raw | avg |" in (out / "sts.md").read_text()


def test_eval_without_data_says_how_to_get_it(model_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("CPEMBED_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["eval", "sts", "--model", model_dir])
    assert result.exit_code == 1 and "get_transfer_data.bash" in result.output


def test_eval_transfer(model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("CPEMBED_CACHE", str(tmp_path / "cache"))
    data = write_transfer(tmp_path / "downstream")
    result = CliRunner().invoke(
        main,
        [
            "eval",
            "transfer",
            "--model",
            model_dir,
            "--layer",
            "3",
            "--tasks",
            "MRPC",
            "--data",
            str(data),
            "--output",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "MRPC F1" in result.output and (tmp_path / "out" / "transfer.json").is_file()


def test_cache_hits_and_misses_on_a_changed_setting(tiny_lm, tmp_path):
    sentences = ["a cat sits.", "a dog runs.", "a cat sits."]
    first = CachedEncoder(CPEncoder(tiny_lm, cp=CPConfig(layer=3, alpha=2.0)), tmp_path)
    expected = first.encoder.encode(sentences)
    np.testing.assert_allclose(first.encode(sentences), expected, atol=1e-5, rtol=1e-5)
    assert (first.hits, first.misses) == (0, 2)
    again = CachedEncoder(CPEncoder(tiny_lm, cp=CPConfig(layer=3, alpha=2.0)), tmp_path)
    np.testing.assert_array_equal(again.encode(sentences), first.encode(sentences))
    assert (again.hits, again.misses) == (2, 0)
    changed = CachedEncoder(CPEncoder(tiny_lm, cp=CPConfig(layer=3, alpha=3.0)), tmp_path)
    assert changed.path != first.path
    out = changed.encode(sentences)
    assert (changed.hits, changed.misses) == (0, 2)
    assert np.abs(out - expected).max() > 1e-3  # not the stale alpha=2 rows
    for other in (
        CPEncoder(tiny_lm, cp=None),
        CPEncoder(tiny_lm, cp=CPConfig(layer=3, alpha=2.0), max_length=64),
        CPEncoder(tiny_lm, cp=CPConfig(layer=3, alpha=2.0), output_layer=4),
    ):
        assert CachedEncoder(other, tmp_path).path != first.path
    assert CachedEncoder(CPEncoder(tiny_lm, cp=None), tmp_path).encode([]).shape == (0, 32)
