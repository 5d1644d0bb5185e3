"""Scoring many CP settings on STS-B dev in one pass: equal to scoring each alone, never near a test split."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from cpembed import CPEncoder
from cpembed.cli import main
from cpembed.evaluation import data as senteval
from cpembed.evaluation.metrics import paired_cosine, spearman
from cpembed.evaluation.search import (
    AUX_TEMPLATES,
    ablate_aux_templates,
    compare_controls,
    dev_splits,
    grid_settings,
    score_settings,
    sweep_layers,
)
from senteval_fixture import write_raw_stsb, write_senteval


@pytest.fixture
def data_dir(tmp_path):
    return write_senteval(tmp_path / "downstream")


def test_grid_settings_follow_the_paper():
    settings = grid_settings()
    assert settings[0] is None and len(settings) == 1 + 25 + 5
    assert {s.layer for s in settings[1:]} == {3, 4, 5, 6, 7}
    assert {s.alpha for s in settings[1:] if s.norm == "scale"} == {0.5, 1.0, 2.0, 3.0, 4.0}


def test_grid_scores_equal_scoring_each_setting_alone(tiny_lm, data_dir):
    encoder = CPEncoder(tiny_lm, cp=None)
    result = score_settings(encoder, dev_splits(data_dir), grid_settings([2, 4], [1.0, 3.0]), batch_size=3)
    pairs = senteval.load_stsb(data_dir, "dev")
    for setting, score in zip(result.settings, result.scores, strict=True):
        alone = CPEncoder(tiny_lm, cp=setting)
        cos = paired_cosine(alone.encode(pairs.sentences1), alone.encode(pairs.sentences2))
        assert score == pytest.approx(100 * spearman(cos, pairs.scores), abs=1e-6)
    assert result.best[1] == max(result.scores) and result.baseline == result.scores[0]
    intervals = result.intervals("STS-B dev", resamples=200)
    assert intervals[0] is None and len(intervals) == len(result.settings)
    for score, (low, high) in zip(result.scores[1:], intervals[1:], strict=True):
        assert low <= score - result.baseline <= high  # the point difference lies inside its interval
    against = result.intervals("STS-B dev", resamples=200, against=result.settings[2])
    assert against[2] is None and against[0] is not None  # the baseline, now measured against setting 2
    for score, bounds in zip(result.scores, against, strict=True):
        if bounds is not None:
            assert bounds[0] <= score - result.scores[2] <= bounds[1]
    one = result.interval("STS-B dev", result.settings[3], against=result.settings[2], resamples=200)
    assert one == against[3]  # one pair's interval is the same draw as in the full list
    without_baseline = score_settings(encoder, pairs, result.settings[1:], batch_size=3)
    with pytest.raises(ValueError, match="include None among the settings"):
        without_baseline.intervals("STS-B dev")


def test_searches_never_read_a_test_split(tiny_lm, data_dir, monkeypatch):
    opened = []
    real = senteval._read_lines
    monkeypatch.setattr(senteval, "_read_lines", lambda path, *a: opened.append(str(path)) or real(path, *a))
    encoder = CPEncoder(tiny_lm, cp=None)
    sweep_layers(encoder, data_dir, alpha=2.0)
    ablate_aux_templates(encoder, data_dir, layer=2, alpha=2.0)
    compare_controls(encoder, data_dir, layer=2, alpha=2.0)
    compare_controls(encoder, data_dir, 2, 2.0, rank_by="mean", raw_dir=write_raw_stsb(data_dir / "raw"))
    assert opened and all(path.endswith("sts-dev.csv") for path in opened)


def test_rank_by_raw_dev_or_the_mean(tiny_lm, data_dir, tmp_path):
    raw_dir = write_raw_stsb(tmp_path / "raw")
    encoder = CPEncoder(tiny_lm, cp=None)
    grid = dict(layer=2, alpha=1.0, batch_size=3)
    senteval_only = compare_controls(encoder, data_dir, **grid)
    raw_only = compare_controls(encoder, None, rank_by="raw", raw_dir=raw_dir, **grid)
    mean = compare_controls(encoder, data_dir, rank_by="mean", raw_dir=raw_dir, **grid)
    by_raw = compare_controls(encoder, data_dir, rank_by="raw", raw_dir=raw_dir, **grid)
    assert list(raw_only.splits) == ["STS-B raw dev"] and list(mean.splits) == ["STS-B dev", "STS-B raw dev"]
    # shuffle and mean draw on the batch's other sentences, which differ when both splits are read
    rows = [i for i, name in enumerate(senteval_only.labels) if not name.startswith(("shuffle", "mean"))]
    assert len(rows) >= 3

    def kept(scores):
        return np.asarray(scores)[rows]

    np.testing.assert_allclose(kept(mean.splits["STS-B dev"]), kept(senteval_only.scores), atol=1e-4)
    np.testing.assert_allclose(kept(mean.splits["STS-B raw dev"]), kept(raw_only.scores), atol=1e-4)
    expected = (kept(senteval_only.scores) + kept(raw_only.scores)) / 2
    np.testing.assert_allclose(kept(mean.scores), expected, atol=1e-4)
    np.testing.assert_allclose(kept(by_raw.scores), kept(raw_only.scores), atol=1e-4)
    assert by_raw.split == "STS-B raw dev" and "STS-B dev" in by_raw.records()[0]
    with pytest.raises(ValueError, match="rank_by must be one of"):
        compare_controls(encoder, data_dir, 2, 1.0, rank_by="test")


def test_layer_sweep_and_aux_ablation(tiny_lm, data_dir):
    encoder = CPEncoder(tiny_lm, cp=None, output_layer=4)
    sweep = sweep_layers(encoder, data_dir, alpha=2.0)
    assert [s.layer for s in sweep.settings[1:]] == [1, 2, 3, 4]
    ablation = ablate_aux_templates(encoder, data_dir, 2, 2.0, extra={"mine": 'Noise in "{sentence}" is:"'})
    assert ablation.labels == ["baseline", *AUX_TEMPLATES, "mine"]
    assert len(set(np.round(ablation.scores[1:], 6))) > 1  # the wording matters to the result
    mine = 'Noise in "{sentence}" is:"'
    assert {s.aux_template for s in sweep_layers(encoder, data_dir, 2.0, aux_template=mine).settings[1:]} == {mine}
    assert {s.site for s in ablate_aux_templates(encoder, data_dir, 2, 2.0, site="ffn").settings[1:]} == {"ffn"}


def test_eval_controls_writes_csv_and_json(tiny_model_dir, data_dir, tmp_path):
    write_raw_stsb(data_dir / "raw")
    out = tmp_path / "out"
    args = ["--model", tiny_model_dir, "--data", str(data_dir), "--output", str(out)]
    result = CliRunner().invoke(main, ["eval", "controls", "--layer", "2", *args])
    assert result.exit_code == 0, result.output
    labels = [r["label"] for r in json.loads((out / "controls.json").read_text())["records"]]
    assert {"NS l=2 a=2", "zero l=2", "scale l=2 a=2", "shuffle NS l=2 a=2", "mean NR l=2"} <= set(labels)
    result = CliRunner().invoke(
        main, ["eval", "controls", "--layer", "2", "--rank-by", "mean", "--raw-data", str(data_dir / "raw"), *args]
    )
    assert result.exit_code == 0, result.output
    assert "search on mean of STS-B dev and STS-B raw dev" in result.output and "STS-B raw dev |" in result.output


def test_eval_controls_intervals_on_every_split(tiny_model_dir, data_dir, tmp_path):
    write_raw_stsb(data_dir / "raw")
    out = tmp_path / "out"
    args = ["--model", tiny_model_dir, "--data", str(data_dir), "--output", str(out), "--layer", "2"]
    raw = ["--rank-by", "mean", "--raw-data", str(data_dir / "raw")]
    result = CliRunner().invoke(main, ["eval", "controls", *args, *raw, "--intervals"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "controls.json").read_text())
    assert report["interval_splits"] == ["STS-B dev", "STS-B raw dev"]
    baseline, *others = report["records"]
    assert baseline["label"] == "baseline" and not any(key.endswith(" low") for key in baseline)
    for record in others:
        for split in report["interval_splits"]:
            assert record[f"{split} low"] <= record[f"{split} high"]
        cell = f"[{record['STS-B raw dev low']:+.2f}, {record['STS-B raw dev high']:+.2f}]"
        assert f"{cell} |" in result.output
    assert "| STS-B raw dev vs baseline, 95% interval |" in result.output
    assert "STS-B raw dev low" in (out / "controls.csv").read_text().splitlines()[0]
    result = CliRunner().invoke(main, ["eval", "controls", *args])  # off by default
    assert "interval_splits" not in json.loads((out / "controls.json").read_text())


def test_the_former_search_command_names_what_replaced_it():
    result = CliRunner().invoke(main, ["search", "grid", "--layers", "3,4"])
    assert result.exit_code == 2 and "cpembed tune MODEL --job sts" in result.output
    assert "eval controls" in result.output and "search" not in CliRunner().invoke(main, ["--help"]).output
