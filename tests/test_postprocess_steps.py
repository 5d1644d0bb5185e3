"""The post-processing steps of the report: tuning sentences only for fits, dev before test, the rule."""

from __future__ import annotations

import json

import pytest
from experiments import postprocess_steps as steps

from beyond_fixture import write_beyond
from cpembed import CPEncoder
from cpembed.evaluation import beyond as beyond_module
from cpembed.evaluation import corpus as corpus_module
from cpembed.evaluation import data as data_module
from cpembed.evaluation.corpus import SOURCES, tuning_corpus
from senteval_fixture import write_raw_stsb, write_senteval


@pytest.fixture
def folders(tmp_path):
    return (
        write_senteval(tmp_path / "downstream"),
        write_raw_stsb(tmp_path / "raw"),
        write_beyond(tmp_path / "beyond"),
        tmp_path / "results",
    )


def test_the_tuning_corpus_reads_tuning_splits_only_and_is_the_same_every_run(folders, monkeypatch):
    data, _, beyond, _ = folders
    opened = []
    real = data_module._read_lines
    monkeypatch.setattr(data_module, "_read_lines", lambda path, *a: opened.append(path.name) or real(path, *a))
    first = tuning_corpus(data, beyond, per_source=3, seed=1)
    assert opened == ["sts-train.csv"]
    assert first == tuning_corpus(data, beyond, per_source=3, seed=1)
    assert len(first) == len(set(first)) and len(first) <= 3 * len(SOURCES)
    sources = corpus_module.tuning_sources(data, beyond)
    assert {s for s in first} <= {s for pool in sources.values() for s in pool}
    assert not any(s.startswith("re ") for s in tuning_corpus(data, beyond, 3, 1, sources=("stsb-train",)))
    with pytest.raises(ValueError, match="unknown tuning source"):
        tuning_corpus(data, beyond, 3, sources=("sts-test",))


def test_dev_step_reads_no_test_split_and_the_test_step_follows_its_choice(folders, tiny_models, monkeypatch):
    data, raw, beyond, out = folders
    opened = []
    real = data_module._read_lines
    monkeypatch.setattr(data_module, "_read_lines", lambda path, *a: opened.append(str(path)) or real(path, *a))
    lm = tiny_models["llama"]
    dev = steps.run_postprocess_dev("tiny", lm, "prompteol", data, raw, beyond, out, batch_size=4)
    assert not [p for p in opened if "test" in p.rsplit("/", 1)[-1]], opened
    posts = {(r["setting"], r["post"], r["fitted_on"]) for r in dev["records"]}
    assert ("baseline", "none", None) in posts
    assert ("baseline", "whiten", "without STS-B train") in posts
    assert dev["chosen"] == steps.choose(dev["records"])
    opened.clear()
    test = steps.run_postprocess_test("tiny", lm, "prompteol", data, raw, beyond, out, batch_size=4)
    assert any("STS.input" in p for p in opened)
    assert test["rows"][0]["row"] == "baseline"
    assert {r["row"] for r in test["rows"]} >= {"baseline", test["chosen"]}
    assert json.loads((out / "tiny" / "prompteol" / "postprocess_test.json").read_text())["chosen"] == test["chosen"]
    steps.run_postprocess_beyond("tiny", lm, "prompteol", data, beyond, out, batch_size=4, tasks=("rerank", "pairs"))
    rerank = json.loads((out / "tiny" / "prompteol" / "postprocess-beyond" / "rerank.json").read_text())
    assert [r["setting"] for r in rerank["rows"]] == ["baseline", rerank["chosen"]]
    page = "\n".join(steps.postprocess_markdown(out, ["tiny"], ["prompteol"]))
    assert "WikiQA reranking" in page and "TwitterURL pairs" in page
    assert f"chosen: {test['chosen']})" in page
    assert page.count("seven-task average") == len(test["comparisons"])


def _record(setting, post, senteval, raw, fitted_on="tuning corpus"):
    return {
        "setting": setting,
        "post": post,
        "fitted_on": fitted_on if post != "none" else None,
        "STS-B dev": senteval,
        "raw STS-B dev": raw,
        "mean": (senteval + raw) / 2,
    }


def test_the_rule_takes_the_best_mean_that_beats_the_plain_embedding_on_raw_dev():
    base = _record("baseline", "none", 70.0, 75.0)
    best_mean_but_worse_raw = _record("baseline", "center", 80.0, 74.9)
    chosen = _record("NS l=3 a=1", "whiten-128", 76.0, 78.0)
    lower = _record("baseline", "whiten", 74.0, 77.0)
    other_corpus = _record("baseline", "whiten-64", 90.0, 90.0, fitted_on="without STS-B train")
    records = [base, best_mean_but_worse_raw, lower, chosen, other_corpus]
    assert steps.choose(records) == {"setting": "NS l=3 a=1", "post": "whiten-128"}
    assert steps.choose([base, best_mean_but_worse_raw]) == {"setting": "baseline", "post": "none"}
    assert steps.parse_post("whiten-128") == ("whiten", 128) and steps.parse_post("center") == ("center", None)


def test_the_recipes_test_scores_the_packaged_fit_against_plain_prompteol(folders, tiny_models, monkeypatch):
    from experiments import default_steps

    from cpembed import CPConfig, CPEncoder, Recipe
    from cpembed.config import MODEL_RECIPES
    from cpembed.postprocess import fit

    data, raw, beyond, out = folders
    lm = tiny_models["llama"]
    best = Recipe("prompteol", CPConfig(layer=2), fit="tiny", dtypes=("float32",), about="whitened")
    monkeypatch.setitem(MODEL_RECIPES, "tiny", {"best": best, "fast": best})
    encoder = CPEncoder(lm, cp=CPConfig(layer=2))
    corpus = tuning_corpus(data, beyond, steps.PER_SOURCE)
    shipped = fit(encoder.encode(corpus), "whiten", encoder.settings().digest(), 4, source="tuning corpus")
    monkeypatch.setattr(default_steps, "packaged_fit", lambda name, dtype: {("tiny", "float32"): shipped}[name, dtype])
    step = default_steps.run_recipes_test("tiny", lm, data, raw, beyond, out, batch_size=4)
    names = [r["row"] for r in step["rows"]]
    assert names == ["plain PromptEOL", "best", "best without CP", "best without post-processing"]
    assert set(step["comparisons"]) == {f"best - {other}" for other in names if other != "best"}
    # the packaged fit's rows are what `CPEncoder(recipe="best")` gives: score them by hand on one task
    pooled = steps.pooled_tasks(data, raw)["STSBenchmark-raw"]
    rows = shipped.apply(encoder.encode(pooled[0] + pooled[1]))
    expected = steps.spearman(steps.paired_cosine(rows[: len(pooled[0])], rows[len(pooled[0]) :]), pooled[2])
    best_row = next(r for r in step["rows"] if r["row"] == "best")
    assert best_row["STSBenchmark-raw"] == pytest.approx(100 * expected, abs=1e-3)
    assert "| **best** |" in "\n".join(default_steps.recipes_markdown(out, ["tiny"]))


def test_the_recipes_beyond_step_scores_each_recipe_against_plain_prompteol(folders, tiny_models, monkeypatch):
    from experiments import default_steps

    from cpembed import CPConfig, CPEncoder, Recipe
    from cpembed.config import MODEL_RECIPES
    from cpembed.postprocess import fit

    data, _, beyond, out = folders
    lm = tiny_models["llama"]
    best = Recipe("prompteol", CPConfig(layer=2), fit="tiny", dtypes=("float32",), about="whitened")
    fast = Recipe("prompteol", None, about="plain")
    monkeypatch.setitem(MODEL_RECIPES, "tiny", {"best": best, "fast": fast})
    encoder = CPEncoder(lm, cp=CPConfig(layer=2))
    shipped = fit(encoder.encode(tuning_corpus(data, beyond, 5)), "center", encoder.settings().digest())
    monkeypatch.setattr(default_steps, "packaged_fit", lambda name, dtype: {("tiny", "float32"): shipped}[name, dtype])
    default_steps.run_recipes_beyond("tiny", lm, beyond, out, batch_size=4, tasks=("pairs",))
    step = json.loads((out / "tiny" / "recipes-beyond" / "pairs.json").read_text())
    assert [r["setting"] for r in step["rows"]] == ["plain PromptEOL", "best", "fast"]
    plain, _, same = step["rows"]
    assert same["AP"] == pytest.approx(plain["AP"]) and same["AP low"] <= 0 <= same["AP high"]  # fast = plain here
    row = next(line for line in default_steps._beyond_lines(out, "tiny") if line.startswith("| TwitterURL pairs"))
    assert row.startswith(f"| TwitterURL pairs | AP | {plain['AP']:.2f} | ")


def test_the_ensembles_step_combines_unit_members_and_reads_no_test_split(folders, tiny_models, monkeypatch):
    import numpy as np
    from experiments import ensemble_steps

    from cpembed import CPConfig, config

    data, raw, beyond, out = folders
    for prompt in ("prompteol", "ck"):
        monkeypatch.setitem(config.DEFAULT_CP, ("tiny", prompt), CPConfig(layer=2))
    monkeypatch.setattr(ensemble_steps, "POSTS", ("none", "center", "whiten-16"))
    monkeypatch.setattr(ensemble_steps, "TO_BEAT", "ck CP + whiten-16")
    opened = []
    real = data_module._read_lines
    monkeypatch.setattr(data_module, "_read_lines", lambda path, *a: opened.append(str(path)) or real(path, *a))
    step = ensemble_steps.run_ensembles_dev("tiny", tiny_models["llama"], data, raw, beyond, out, batch_size=4)
    assert not [p for p in opened if "test" in p.rsplit("/", 1)[-1]], opened
    names = {r["candidate"] for r in step["records"]}
    assert "mean(prompteol, ck, prompteol@-2) CP + whiten-16" in names and "concat(prompteol, ck) plain" in names
    widths = {r["candidate"]: r["width"] for r in step["records"]}
    hidden = tiny_models["llama"].hidden_size
    assert widths["concat(prompteol, ck) plain"] == 2 * hidden and widths["mean(prompteol, ck) plain"] == hidden
    means = [r["mean"] for r in step["records"]]
    assert means == sorted(means, reverse=True)
    a, b = np.array([[3.0, 4.0]]), np.array([[0.0, 2.0]])
    np.testing.assert_allclose(ensemble_steps.combined([a, b], "mean"), [[0.3, 0.9]])
    np.testing.assert_allclose(ensemble_steps.combined([a, b], "concat"), [[0.6, 0.8, 0.0, 1.0]])
    page = "\n".join(ensemble_steps.ensembles_markdown(out, ["tiny"]))
    assert "## Ensembles on the dev splits (tiny" in page and "ck CP + whiten-16" in page


def test_the_output_costs_step_scores_each_variant_against_float32(folders, tiny_models, monkeypatch):
    from experiments import output_steps

    data, raw, beyond, out = folders
    opened = []
    real = data_module._read_lines
    monkeypatch.setattr(data_module, "_read_lines", lambda path, *a: opened.append(str(path)) or real(path, *a))
    step = output_steps.run_output_dev("tiny", tiny_models["llama"], data, raw, beyond, out, batch_size=4)
    assert not [p for p in opened if "test" in p.rsplit("/", 1)[-1]], opened
    for name in ("default recipe", "plain PromptEOL"):
        rows = {r["variant"]: r for r in step["records"] if r["embedding"] == name}
        width = rows["float32"]["width"]
        assert set(rows) == {"float32", "int8", "uint8", "binary", "ubinary"} | {
            f"first {width // 2} dimensions",
            f"first {width // 4} dimensions",
        }
        assert rows["float32"]["difference"] == 0
        for r in rows.values():
            low, high = r["interval"]
            assert low - 1e-9 <= r["difference"] <= high + 1e-9 or r["variant"] == "float32"
    retrieval = output_steps.run_output_retrieval_dev("tiny", tiny_models["llama"], data, beyond, out, batch_size=4)
    assert not [p for p in opened if "test" in p.rsplit("/", 1)[-1]], opened
    assert retrieval["split"].startswith("SciFact train: 2 queries")
    for name in ("default recipe", "plain PromptEOL"):
        rows = {r["variant"]: r for r in retrieval["records"] if r["embedding"] == name}
        assert rows["float32"]["difference"] == 0 and 0 <= rows["float32"]["nDCG@10"] <= 100
        for r in rows.values():
            low, high = r["interval"]
            assert low - 1e-9 <= r["difference"] <= high + 1e-9 or r["variant"] == "float32"
    # float32 ranks as the beyond-STS evaluation does, on the same sample of SciFact train
    sample = output_steps.scifact_subset(beyond_module.load_scifact(beyond, "train"))
    plain = CPEncoder(tiny_models["llama"], "prompteol", cp=None)
    expected = beyond_module.evaluate_retrieval(plain.encode, plain.encode, sample)["ndcg@10"]
    found = next(r for r in retrieval["records"] if r["embedding"] == "plain PromptEOL" and r["variant"] == "float32")
    assert abs(found["nDCG@10"] - expected) < 1e-6
    page = "\n".join(output_steps.output_markdown(out, ["tiny"]))
    assert "## Quantized and shorter embeddings (tiny" in page and "**The same on retrieval** (SciFact train" in page
