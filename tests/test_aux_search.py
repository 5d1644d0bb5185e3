"""The auxiliary prompt search: its grammar, its two stages on dev splits only, and its command."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cpembed import CPEncoder
from cpembed.cli import main
from cpembed.errors import InvalidValueError
from cpembed.evaluation import data as senteval
from cpembed.evaluation.aux_search import ASKS, FRAMES, HAND_WRITTEN, aux_candidates, search_aux_prompts
from cpembed.evaluation.search import score_settings
from cpembed.prompts import IRRELEVANT
from senteval_fixture import write_raw_stsb, write_senteval


def test_the_grammar_holds_the_papers_prompt_and_every_ask_in_every_frame():
    candidates = aux_candidates()
    assert candidates["irrelevant information / of"] == IRRELEVANT
    assert len(candidates) == len(ASKS) * len(FRAMES) + len(HAND_WRITTEN) == len(set(candidates.values()))
    assert all(t.count("{sentence}") == 1 and "{ask}" not in t for t in candidates.values())
    with pytest.raises(InvalidValueError, match="paper's auxiliary prompt"):
        aux_candidates(asks=("stop words",))
    with pytest.raises(InvalidValueError, match="exactly one"):
        aux_candidates(hand_written={"bad": "no placeholder"})


def test_the_search_screens_then_grids_the_best_on_dev_splits_only(tiny_lm, tmp_path, monkeypatch):
    data, raw = write_senteval(tmp_path / "downstream"), write_raw_stsb(tmp_path / "raw")
    opened = []
    real = senteval._read_lines
    monkeypatch.setattr(senteval, "_read_lines", lambda path, *a: opened.append(str(path)) or real(path, *a))
    encoder = CPEncoder(tiny_lm, cp=None)
    candidates = {
        "paper": IRRELEVANT,
        "style": 'The writing style of this sentence : "{sentence}" means in one word:"',
        "noise": 'Noise : "{sentence}" in one word:"',
    }
    found = search_aux_prompts(encoder, data, raw, candidates, layers=(2, 3), alphas=(1.0, 2.0), top=1, batch_size=3)
    assert opened and all(path.endswith("sts-dev.csv") for path in opened)
    assert len(found.screen.settings) == 1 + 3 * 2  # the baseline, then NR at each layer per candidate
    screened = {}
    for setting, score in zip(found.screen.settings[1:], found.screen.scores[1:], strict=True):
        screened[setting.aux_template] = max(score, screened.get(setting.aux_template, -100))
    finalist = max((t for t in screened if t != IRRELEVANT), key=lambda t: screened[t])
    assert {s.aux_template for s in found.grid.settings[1:]} == {IRRELEVANT, finalist}
    assert found.best.aux_template == finalist and found.paper_best.aux_template == IRRELEVANT
    assert found.best_name == next(n for n, t in candidates.items() if t == finalist)
    # Each grid score is what scoring that setting alone gives.
    alone = score_settings(encoder, _splits(data, raw), [found.best])
    assert alone.scores[0] == pytest.approx(found.grid.scores[found.grid.settings.index(found.best)], abs=1e-4)
    low, high = found.interval
    grid = found.grid
    gain = grid.splits["STS-B raw dev"][grid.settings.index(found.best)]
    gain -= grid.splits["STS-B raw dev"][grid.settings.index(found.paper_best)]
    assert low <= gain <= high
    with pytest.raises(InvalidValueError, match="top >= 1"):
        search_aux_prompts(encoder, data, raw, candidates, top=0)


def _splits(data, raw):
    from cpembed.evaluation.search import dev_splits

    return dev_splits(data, "mean", raw)


def test_the_command_prints_the_best_and_writes_json(tiny_model_dir, tmp_path, monkeypatch):
    data, raw = write_senteval(tmp_path / "downstream"), write_raw_stsb(tmp_path / "raw")
    monkeypatch.setenv("CPEMBED_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    args = ["--model", tiny_model_dir, "--data", str(data), "--raw-data", str(raw), "--output", str(out)]
    result = CliRunner().invoke(main, ["search", "aux-prompt", "--layers", "2", "--alphas", "1", "--top", "2", *args])
    assert result.exit_code == 0, result.output
    assert "best: " in result.output and "raw STS-B dev 95% interval" in result.output
    report = json.loads((out / "aux_prompt.json").read_text())
    assert len(report["screen"]) == 1 + len(aux_candidates()) and report["best"]["aux_template"] != IRRELEVANT
    from experiments.aux_table import aux_markdown

    (out.parent / "m" / "p").mkdir(parents=True)
    (out / "aux_prompt.json").rename(out.parent / "m" / "p" / "aux_prompt.json")
    text = "\n".join(aux_markdown(out.parent, ["m"], ["p"]))
    assert "## A searched auxiliary prompt" in text and f"Best: `{report['best']['candidate']}`" in text
    assert "irrelevant information / of" in text  # the paper's prompt is named with its rank
    assert f"best of {len(aux_candidates())} candidates" in text  # "hand: surface" is one, not "hand"
    refused = CliRunner().invoke(main, ["search", "aux-prompt", "--aux-template", "x {sentence}", *args])
    assert refused.exit_code == 2 and "leave out --aux-template" in refused.output


def test_the_winner_is_checked_on_the_beyond_sts_dev_splits_only(tiny_lm, tmp_path, monkeypatch):
    """SciFact train queries and stsb-multi-mt dev: each setting's score is what encoding it alone
    gives, the interval holds best minus paper, and no test split is opened."""
    from beyond_fixture import write_beyond
    from cpembed import CPConfig
    from cpembed.evaluation import beyond
    from cpembed.evaluation.aux_search import check_on_beyond_dev

    root = write_beyond(tmp_path / "beyond")
    splits = []
    for name in ("load_scifact", "load_stsb_multi"):
        real = getattr(beyond, name)
        monkeypatch.setattr(beyond, name, lambda *a, real=real: splits.append(a[-1]) or real(*a))
    paper = CPConfig(layer=2, alpha=1.0)
    style = 'The writing style of this sentence : "{sentence}" means in one word:"'
    best = CPConfig(layer=3, alpha=2.0, aux_template=style)
    encoder = CPEncoder(tiny_lm, cp=None)
    check = check_on_beyond_dev(encoder, root, paper, best, batch_size=3)
    assert set(splits) == {"train", "dev"}
    retrieval = check.tasks["SciFact train nDCG@10"]
    alone = CPEncoder(tiny_lm, cp=best)
    scifact = beyond.load_scifact(root, "train")
    assert retrieval["best"] == pytest.approx(beyond.evaluate_retrieval(alone.encode, alone.encode, scifact)["ndcg@10"])
    low, high = retrieval["interval"]
    assert low <= retrieval["best - paper"] == retrieval["best"] - retrieval["paper"] <= high
    multi = check.tasks["stsb-multi-mt dev mean Spearman"]
    plain = beyond.evaluate_sts_multilingual(CPEncoder(tiny_lm, cp=None).encode, root, split="dev")["mean"]
    assert multi["baseline"] == pytest.approx(plain, abs=1e-4)
    low, high = multi["interval"]
    assert low <= multi["best - paper"] <= high
    assert check.settings == {"paper": "NS l=2 a=1", "best": "NS l=3 a=2", "best_aux_template": best.aux_template}

    # Languages holding other pairs are refused before anything is encoded.
    english = beyond.load_stsb_multi(root, "en", "dev")
    reversed_scores = senteval.Pairs(english.sentences1, english.sentences2, english.scores[::-1])
    monkeypatch.setattr(beyond, "load_stsb_multi", lambda r, lang, split: reversed_scores if lang == "ja" else english)
    monkeypatch.setattr(CPEncoder, "encode_settings", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    with pytest.raises(InvalidValueError, match="other pairs"):
        check_on_beyond_dev(encoder, root, paper, best, batch_size=3)


def test_the_command_checks_the_winner_on_the_beyond_sts_dev_splits(tiny_model_dir, tmp_path, monkeypatch):
    from beyond_fixture import write_beyond

    data, raw = write_senteval(tmp_path / "downstream"), write_raw_stsb(tmp_path / "raw")
    monkeypatch.setenv("CPEMBED_CACHE", str(tmp_path / "cache"))
    args = ["--model", tiny_model_dir, "--data", str(data), "--raw-data", str(raw), "--output", str(tmp_path / "out")]
    args += ["--layers", "2", "--alphas", "1", "--top", "1"]
    missing = CliRunner().invoke(main, ["search", "aux-prompt", *args, "--beyond-data", str(tmp_path / "nowhere")])
    assert missing.exit_code != 0 and not (tmp_path / "out").exists()  # refused before the search runs
    root = write_beyond(tmp_path / "beyond")
    result = CliRunner().invoke(main, ["search", "aux-prompt", *args, "--beyond-data", str(root)])
    assert result.exit_code == 0, result.output
    assert "SciFact train nDCG@10: baseline" in result.output and "stsb-multi-mt dev mean Spearman" in result.output
    report = json.loads((tmp_path / "out" / "aux_prompt.json").read_text())
    assert report["beyond_dev"]["settings"]["best"] == report["best"]["setting"]
    from experiments.aux_table import aux_markdown

    (tmp_path / "m" / "p").mkdir(parents=True)
    (tmp_path / "out" / "aux_prompt.json").rename(tmp_path / "m" / "p" / "aux_prompt.json")
    text = "\n".join(aux_markdown(tmp_path, ["m"], ["p"]))
    row = report["beyond_dev"]["tasks"]["SciFact train nDCG@10"]
    assert f"| SciFact train nDCG@10 | {row['baseline']:.2f} | {row['paper']:.2f} | {row['best']:.2f} |" in text
