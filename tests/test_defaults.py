"""The shipped defaults are the ones the documented rule picks from the published dev searches."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from experiments.recipe_steps import as_recipe, choose_recipe, recipe_candidates
from experiments.report_steps import choose

from cpembed import DEFAULT_CP, PAPER_CP, CPConfig, CPEncoder, default_cp
from cpembed.config import JOB_RECIPES, MODEL_RECIPES
from cpembed.evaluation.search import label
from cpembed.postprocess import PostProcess, packaged_fit
from cpembed.spec import EncoderSpec

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"
# `cpembed tune MODEL --job JOB` runs on the job's shared tuning split, whose spec files ship as job recipes.
TUNED = sorted(RESULTS.glob("*/tune/*.json"))
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
    assert CPEncoder(tiny_lm, recipe=None).cp is None


@pytest.mark.parametrize("model", sorted({folder.parent.name for folder in SEARCHED}))
def test_recipes_follow_the_rule(model):
    """Each packaged recipe is the rule's choice on the dev files, its fit the chosen post-processing."""
    candidates = recipe_candidates(RESULTS, model, ("prompteol", "cot", "knowledge", "ck"))
    assert model in MODEL_RECIPES, f"{model} was searched: add the rule's recipes to MODEL_RECIPES"
    for name, fast in (("best", False), ("fast", True)):
        chosen, shipped = choose_recipe(candidates, fast), MODEL_RECIPES[model][name]
        rule = as_recipe(chosen)
        assert (shipped.prompt, shipped.cp, shipped.tp) == (rule.prompt, rule.cp, rule.tp), name
        if chosen["post"] is None:
            assert shipped.fit is None, name
        else:
            fitted = packaged_fit(shipped.fit, shipped.dtypes[0])
            width = "" if fitted.dimensions == fitted.input_dimension else f"-{fitted.dimensions}"
            assert (fitted.kind + width, fitted.source) == (chosen["post"], "tuning corpus"), name


def test_the_recipe_rule_needs_a_gain_on_raw_text():
    def candidate(prompt, cp, senteval, raw):
        return {
            "prompt": prompt,
            "cp": cp,
            "tp": None,
            "STS-B dev": senteval,
            "raw STS-B dev": raw,
            "score": (senteval + raw) / 2,
        }

    plain = candidate("prompteol", None, 60.0, 70.0)
    only_senteval = candidate("cot", CPConfig(7, 4.0), 75.0, 69.9)  # the best mean, but worse on raw text
    assert choose_recipe([plain, only_senteval]) is plain
    both = candidate("ck", CPConfig(7, 1.0, "recover"), 64.0, 71.0)
    assert choose_recipe([plain, only_senteval, both]) is both
    worse_mean = candidate("knowledge", None, 50.0, 71.5)  # better on raw text alone
    assert choose_recipe([plain, worse_mean]) is plain
    single = candidate("cot", CPConfig(7, 4.0), 63.0, 70.5)
    assert choose_recipe([plain, both, single]) is both  # CK runs two prompts: not a "fast" candidate
    assert choose_recipe([plain, both, single], fast=True) is single
    assert choose_recipe([plain, both], fast=True) is plain


def test_the_size_table_reads_each_searched_prompt_and_the_paper():
    from experiments.scale_table import scale_markdown

    models = sorted({folder.parent.name for folder in SEARCHED})
    searched = [folder for folder in SEARCHED if folder.name in ("prompteol", "cot")]
    lines = scale_markdown(RESULTS, models, ("prompteol", "cot"))
    rows = [line.split(" | ") for line in lines if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == len(searched) + 2  # each searched model and prompt, and the paper's two
    for row in rows:
        depth, fraction = int(row[1]), float(row[4])
        layer = int(row[3].split("l=")[1].split()[0])
        assert fraction == pytest.approx(layer / depth, abs=0.005)
        if not row[0].endswith("(paper)"):
            model, prompt = row[0].removeprefix("| "), row[2]
            raw = json.loads((RESULTS / model / prompt / "grid_raw.json").read_text())["records"]
            plain = next(r["spearman"] for r in raw if r["label"] == "baseline")
            assert float(row[-2]) == pytest.approx(plain, abs=0.005)
            grid = json.loads((RESULTS / model / prompt / "grid.json").read_text())
            assert row[-1].removesuffix(" |") == grid["dtype"].removeprefix("torch.")
            sweep = RESULTS / model / prompt / "layers.json"
            if sweep.is_file():  # the sweep's best layer on SentEval dev, as a fraction of depth
                records = json.loads(sweep.read_text())["records"]
                best = max((r for r in records if r["norm"] != "none"), key=lambda r: r["spearman"])
                assert row[8].startswith(f"{best['layer']} / {depth} = ")
                recipe = RESULTS / model / "recipe.json"
                step = json.loads(recipe.read_text()) if recipe.is_file() else {}
                if step.get("recipe") == f"{prompt} + {best['label']}":  # the recipe is the swept layer
                    averages = {r["row"]: r["average"] for r in step["rows"]}
                    assert row[8].endswith(f"; test avg {averages['recipe'] - averages[f'plain {prompt}']:+.2f} r)")
                else:
                    assert "test avg" not in row[8]
            else:
                assert row[8] == "—"


def test_the_size_table_names_a_prompt_searched_on_one_dev_split_only(tmp_path):
    from experiments.scale_table import scale_markdown

    model = SEARCHED[0].parent.name
    shutil.copytree(RESULTS / model / "prompteol", tmp_path / model / "prompteol")
    shutil.copytree(RESULTS / model / "cot", tmp_path / model / "cot")
    (tmp_path / model / "cot" / "grid_raw.json").unlink()
    lines = scale_markdown(tmp_path, [model], ("prompteol", "cot"))
    rows = [line for line in lines if line.startswith(f"| {model} |")]
    assert [row.split(" | ")[2] for row in rows] == ["prompteol"]
    assert f"Not searched on both dev splits yet (see the notes): {model} cot." in lines


def test_the_size_table_takes_the_sts_gain_from_a_recipe_test_of_that_prompt_and_setting(tmp_path):
    from experiments.scale_table import scale_markdown

    model = SEARCHED[0].parent.name
    shutil.copytree(RESULTS / model / "cot", tmp_path / model / "cot")
    (tmp_path / model / "cot" / "sts.json").unlink(missing_ok=True)
    grid = json.loads((RESULTS / model / "cot" / "grid.json").read_text())["records"]
    raw = json.loads((RESULTS / model / "cot" / "grid_raw.json").read_text())["records"]
    best_ns = label(choose(grid, raw)["scale"])
    rows = [{"row": "plain PromptEOL", "average": 60.0}, {"row": "plain cot", "average": 70.0}]

    def gain_column(recipe: str) -> str:
        step = {"recipe": recipe, "rows": [*rows, {"row": "recipe", "average": 71.25}]}
        (tmp_path / model / "recipe.json").write_text(json.dumps(step))
        line = next(line for line in scale_markdown(tmp_path, [model], ("cot",)) if line.startswith(f"| {model} |"))
        return line.split(" | ")[7]

    assert gain_column(f"cot + {best_ns}") == "+1.25 r"
    assert gain_column(f"cot + {best_ns} + TP 2-7") == "—"  # TP in the recipe: not CP's gain alone


def test_the_layer_sweeps_layers_scored_on_both_dev_splits_are_recipe_candidates(tmp_path):
    model = "qwen2.5-coder-0.5b"
    folder = tmp_path / model / "prompteol"
    folder.mkdir(parents=True)
    for name in ("grid.json", "grid_raw.json"):
        shutil.copy(RESULTS / model / "prompteol" / name, folder / name)
    swept = CPConfig(layer=12, alpha=1.0)
    fields = {"layer": 12, "alpha": 1.0, "norm": "scale", "site": "heads", "aux_template": swept.aux_template}
    baseline = {"label": "baseline", "spearman": 70.0, "norm": "none"}
    (folder / "layers.json").write_text(
        json.dumps({"records": [baseline, {"label": label(swept), "spearman": 90.0, **fields}]})
    )
    (folder / "layers_raw.json").write_text(
        json.dumps({"records": [baseline, {"label": label(swept), "spearman": 91.0, **fields}]})
    )
    candidates = recipe_candidates(tmp_path, model, ("prompteol",))
    found = [c for c in candidates if c["cp"] == swept]
    assert len(found) == 1 and (found[0]["STS-B dev"], found[0]["raw STS-B dev"]) == (90.0, 91.0)
    assert as_recipe(choose_recipe(candidates)).cp == swept
    default = choose(*(json.loads((folder / n).read_text())["records"] for n in ("grid.json", "grid_raw.json")))
    swept_default = {"label": label(default["default"]), "spearman": 10.0, "norm": default["default"].norm}
    swept_default |= {f: getattr(default["default"], f) for f in ("layer", "alpha", "site", "aux_template")}
    for name in ("layers.json", "layers_raw.json"):  # the grid's default swept again: one candidate, the grid's
        records = json.loads((folder / name).read_text())["records"]
        (folder / name).write_text(json.dumps({"records": records + [swept_default]}))
    twice = [c for c in recipe_candidates(tmp_path, model, ("prompteol",)) if c["cp"] == default["default"]]
    assert len(twice) == 1 and twice[0]["STS-B dev"] != 10.0
    (folder / "layers_raw.json").unlink()  # only on SentEval dev: not a candidate
    assert not any(c["cp"] == swept for c in recipe_candidates(tmp_path, model, ("prompteol",)))


@pytest.mark.parametrize("path", TUNED, ids=lambda p: f"{p.parents[1].name}/{p.stem}")
def test_each_job_recipe_is_what_tune_chose_on_the_jobs_tuning_split(path):
    model, job = path.parents[1].name, path.stem
    spec = EncoderSpec.load(path)
    assert job in MODEL_RECIPES.get(model, {}), f"tune ran for {model} {job}: ship its choice as the {job!r} recipe"
    shipped = MODEL_RECIPES[model][job]
    assert (shipped.prompt, shipped.cp, shipped.tp) == (spec.prompt, spec.cp, spec.tp)
    assert shipped.dtype == (spec.dtype if shipped.fit else None)  # a fit fixes the dtype it was made in
    assert spec.job == job and spec.output_layer is None and not spec.demonstrations
    assert not any("test" in data.lower() for data in spec.origin["data"])
    if spec.postprocess is None:
        assert shipped.fit is None
    else:
        tuned, packaged = PostProcess.load(spec.postprocess), packaged_fit(shipped.fit, spec.dtype)
        assert (tuned.kind, tuned.settings, tuned.dimensions) == (packaged.kind, packaged.settings, packaged.dimensions)
        assert tuned.fingerprint() == packaged.fingerprint()


def test_every_job_recipe_has_the_tune_run_that_chose_it():
    tuned = {(p.parents[1].name, p.stem) for p in TUNED}
    shipped = {(model, job) for model, recipes in MODEL_RECIPES.items() for job in recipes if job in JOB_RECIPES}
    assert shipped <= tuned
