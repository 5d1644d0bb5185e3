"""`cpembed eval sts|transfer` on fixture data, and the embedding cache behind them."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cpembed.cli import main
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
