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
    assert report["settings"]["recipe"] is None  # --layer chose the setting: no recipe
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


@pytest.mark.parametrize(
    ("task", "metrics"),
    [
        ("retrieval", ["nDCG@10", "recall@100"]),
        ("rerank", ["MAP", "MRR@10"]),
        ("pairs", ["AP", "accuracy", "F1"]),
        ("cluster", ["V-measure"]),
        ("sts-multilingual", ["de", "zh", "mean"]),
    ],
)
def test_beyond_sts_commands_write_their_report(model_dir, tmp_path, monkeypatch, task, metrics):
    from beyond_fixture import write_beyond

    monkeypatch.setenv("CPEMBED_CACHE", str(tmp_path / "cache"))
    root = write_beyond(tmp_path / "beyond")
    args = ["eval", task, "--model", model_dir, "--layer", "3", "--data", str(root), "--output", str(tmp_path / "out")]
    extra = ["--seeds", "2"] if task == "cluster" else ["--languages", "en,de,zh"] if task == "sts-multilingual" else []
    result = CliRunner().invoke(main, [*args, *extra])
    assert result.exit_code == 0, result.output
    assert all(f"| {metric} |" in result.output for metric in metrics)
    report = json.loads((tmp_path / "out" / f"{task}.json").read_text())
    assert report["settings"]["cp"]["layer"] == 3 and report["task"] == task


def test_queries_and_documents_take_the_prompts_they_are_given(model_dir, tmp_path, monkeypatch):
    from beyond_fixture import write_beyond

    monkeypatch.setenv("CPEMBED_CACHE", str(tmp_path / "cache"))
    root = write_beyond(tmp_path / "beyond")
    common = ["eval", "retrieval", "--model", model_dir, "--no-cp", "--data", str(root)]
    same = CliRunner().invoke(main, common)
    other = CliRunner().invoke(main, [*common, "--query-prompt", 'A question : "{sentence}" means in one word:"'])
    assert same.exit_code == other.exit_code == 0, same.output + other.output
    assert same.output != other.output  # the query prompt changed the ranking's scores
    bad = CliRunner().invoke(main, [*common, "--document-prompt", "nope"])
    assert bad.exit_code == 2 and "unknown prompt" in bad.output
