"""Recipes: one name for a model's whole way to embed (prompt, CP, TP, post-processing), and the
default: `CPEncoder()` is the model's best recipe unless the caller chooses the parts."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import SENTENCES, assert_same_embeddings
from cpembed import CPConfig, CPEncoder, Recipe, TPConfig, recipe
from cpembed.cli import main
from cpembed.config import GENERAL_RECIPES, MODEL_RECIPES, RECIPES, UNSEARCHED_RECIPE
from cpembed.errors import InvalidValueError
from cpembed.postprocess import BUILT_IN_SENTENCES, fit, fit_file, packaged_fit

BEST = Recipe("cot", CPConfig(layer=3, alpha=2.0), TPConfig(last=3), about="cot, l=3")
FAST = Recipe("prompteol", CPConfig(layer=2, alpha=1.0), about="prompteol, l=2")


@pytest.fixture
def searched(tiny_lm, monkeypatch):
    monkeypatch.setitem(MODEL_RECIPES, tiny_lm.name, {"best": BEST, "fast": FAST})
    return tiny_lm


def test_the_default_is_the_models_best_recipe(searched):
    encoder = CPEncoder(searched)
    assert (encoder.recipe_name, encoder.prompt.name, encoder.cp, encoder.tp) == ("best", "cot", BEST.cp, BEST.tp)
    by_hand = CPEncoder(searched, "cot", cp=BEST.cp, tp=BEST.tp)
    assert by_hand.recipe is None
    assert_same_embeddings(encoder.encode(SENTENCES), by_hand.encode(SENTENCES))
    assert encoder.settings().digest() == by_hand.settings().digest()  # the cache and Ray see one setting
    fast = CPEncoder(searched, recipe="fast")
    assert (fast.prompt.name, fast.cp, fast.tp) == ("prompteol", FAST.cp, None)
    assert "best for" in encoder.describe_recipe() and "cot, l=3" in encoder.describe_recipe()


@pytest.mark.parametrize(
    "given",
    [
        {"prompt": "prompteol"},
        {"cp": None},
        {"cp": CPConfig(layer=2)},
        {"tp": TPConfig(last=2)},
        {"output_layer": -2},
        {"demonstrations": [("A horse.", "Horse")]},
        {"query_prompt": "prompteol"},
        {"recipe": None},
    ],
)
def test_choosing_any_part_turns_the_default_recipe_off(searched, given):
    encoder = CPEncoder(searched, **given)
    assert encoder.recipe is None and encoder.postprocess is None
    assert encoder.describe_recipe() == "recipe: none (the settings given)"


@pytest.mark.parametrize(
    "given, named",
    [
        ({"prompt": "cot"}, "prompt"),
        ({"cp": None}, "cp"),
        ({"tp": TPConfig(last=3)}, "tp"),
        ({"output_layer": -1}, "output_layer"),
    ],
)
def test_a_named_recipe_with_its_own_parts_is_refused(searched, given, named):
    with pytest.raises(InvalidValueError, match=rf"output layer: drop {named}\b"):
        CPEncoder(searched, recipe="best", **given)


def test_an_unknown_recipe_names_the_known_ones(tiny_lm):
    with pytest.raises(InvalidValueError, match="recipe must be one of auto, best, fast"):
        CPEncoder(tiny_lm, recipe="fastest")


def test_a_job_recipe_is_named_by_its_job_and_a_model_without_one_says_how_to_get_one(searched, monkeypatch):
    tuned = Recipe("prompteol", CPConfig(layer=2, alpha=0.5), about="tuned for reranking")
    monkeypatch.setitem(MODEL_RECIPES, searched.name, {"best": BEST, "fast": FAST, "reranking": tuned})
    encoder = CPEncoder(searched, recipe="reranking")
    assert (encoder.recipe_name, encoder.prompt.name, encoder.cp) == ("reranking", "prompteol", tuned.cp)
    assert (encoder.spec.job, CPEncoder(searched).spec.job) == ("reranking", None)
    assert encoder.describe_recipe() == f"recipe: reranking for {searched.name}: tuned for reranking"
    with pytest.raises(InvalidValueError, match=r"no 'pairs' recipe yet .*`cpembed tune .* --job pairs`"):
        CPEncoder(searched, recipe="pairs")
    assert recipe("some/other/model", "pairs") == UNSEARCHED_RECIPE  # what it gets for every name


def test_an_unsearched_model_gets_plain_prompteol_centered_on_the_built_in_sentences(tiny_lm, caplog):
    assert recipe("some/other/model", "best") == recipe("some/other/model", "fast") == UNSEARCHED_RECIPE
    with caplog.at_level(logging.WARNING, logger="cpembed"):
        encoder = CPEncoder(tiny_lm)
    assert "no recipe has been searched" in caplog.text and "cpembed fit" in caplog.text
    assert (encoder.prompt.name, encoder.cp, encoder.postprocess.kind) == ("prompteol", None, "center")
    plain = CPEncoder(tiny_lm, cp=None)
    mean = plain.encode(BUILT_IN_SENTENCES).astype(np.float64).mean(axis=0)
    assert_same_embeddings(encoder.encode(SENTENCES), plain.encode(SENTENCES) - mean)
    assert len(BUILT_IN_SENTENCES) == len(set(BUILT_IN_SENTENCES)) >= 100


def test_a_recipes_packaged_fit_fixes_its_dtype_and_refuses_another(tiny_model_dir, tiny_lm, monkeypatch):
    """A recipe's fit belongs to one dtype: the recipe loads the model in it, and refuses another."""
    import cpembed.encoder

    shipped = Recipe("prompteol", None, fit="tiny", dtypes=("float32",), about="whitened")
    monkeypatch.setitem(MODEL_RECIPES, tiny_model_dir, dict.fromkeys(RECIPES, shipped))
    reference = CPEncoder(tiny_model_dir, cp=None, dtype="float32")
    rows = reference.encode(BUILT_IN_SENTENCES)
    whitening = fit(rows, "whiten", reference.settings().digest(), 8)
    monkeypatch.setattr(
        cpembed.encoder, "packaged_fit", lambda name, dtype: {("tiny", "float32"): whitening}.get((name, dtype))
    )
    encoder = CPEncoder(tiny_model_dir)  # dtype unset: the fit's
    assert encoder.postprocess is whitening and encoder.embedding_dimension == 8
    assert_same_embeddings(encoder.encode(SENTENCES), whitening.apply(reference.encode(SENTENCES)))
    with monkeypatch.context() as patched, pytest.raises(InvalidValueError, match=r"use dtype float32 \(--dtype"):
        patched.setattr(cpembed.encoder, "load_model", lambda *a: pytest.fail("refused only after loading"))
        CPEncoder(tiny_model_dir, dtype="bfloat16")
    assert CPEncoder(tiny_model_dir, postprocess=None).postprocess is None  # the recipe without its fit


def test_every_packaged_fit_belongs_to_a_recipe():
    named = {
        fit_file(r.fit, dtype)
        for recipes in MODEL_RECIPES.values()
        for r in recipes.values()
        if r.fit not in (None, "center")
        for dtype in r.dtypes
    }
    shipped = {p.name for p in (Path(__import__("cpembed").__file__).parent / "fits").glob("*.npz")}
    assert named == shipped
    assert (
        packaged_fit("smollm2-135m-best", "float32") is not None
        and packaged_fit("smollm2-135m-best", "float16") is None
    )
    for recipes in MODEL_RECIPES.values():
        assert set(GENERAL_RECIPES) <= set(recipes) <= set(RECIPES)
        for r in recipes.values():
            # a packaged fit names the dtypes it was made in
            assert r.about and (r.fit in (None, "center") or set(r.dtypes) <= {"float32", "bfloat16"} and r.dtypes)


def test_a_recipe_with_fits_in_both_dtypes_leaves_the_dtype_to_the_hardware(tiny_model_dir, monkeypatch):
    """ "auto" picks bfloat16 where the hardware computes it natively; a recipe with a fit for each
    dtype runs in whichever it gets, with that dtype's fit, and takes either when asked."""
    import cpembed.encoder
    import cpembed.models
    from cpembed.spec import resolve

    shipped = Recipe("prompteol", None, fit="tiny", dtypes=("float32", "bfloat16"), about="whitened")
    monkeypatch.setitem(MODEL_RECIPES, tiny_model_dir, dict.fromkeys(RECIPES, shipped))
    fits = {}
    for dtype in ("float32", "bfloat16"):
        reference = CPEncoder(tiny_model_dir, cp=None, dtype=dtype)
        rows = reference.encode(BUILT_IN_SENTENCES)
        fits[dtype] = fit(rows, "whiten", reference.settings().digest(), 8)
    monkeypatch.setattr(
        cpembed.encoder, "packaged_fit", lambda name, dtype: fits.get(dtype) if name == "tiny" else None
    )
    assert resolve(tiny_model_dir).dtype == "auto"
    for dtype in ("float32", "bfloat16"):
        assert CPEncoder(tiny_model_dir, dtype=dtype).postprocess is fits[dtype]
    monkeypatch.setattr(cpembed.models, "native_bfloat16", lambda device: True)
    assert CPEncoder(tiny_model_dir).postprocess is fits["bfloat16"]
    monkeypatch.setattr(cpembed.models, "native_bfloat16", lambda device: False)
    assert CPEncoder(tiny_model_dir).postprocess is fits["float32"]


def test_the_cli_uses_the_recipe_says_so_and_refuses_it_beside_its_parts(tiny_model_dir, monkeypatch):
    monkeypatch.setitem(MODEL_RECIPES, tiny_model_dir, dict.fromkeys(RECIPES, Recipe("cot", CPConfig(2), about="c")))
    run = CliRunner().invoke
    done = run(main, ["similarity", "A cat sits.", "A dog runs.", "--model", tiny_model_dir])
    assert done.exit_code == 0, done.output
    expected = CPEncoder(tiny_model_dir, "cot", cp=CPConfig(layer=2)).similarity("A cat sits.", "A dog runs.")
    assert f"{expected[0, 0]:.4f}" in done.stdout
    assert f"cpembed: recipe: best for {tiny_model_dir}: c" in done.stderr
    plain = run(main, ["similarity", "A cat sits.", "A dog runs.", "--model", tiny_model_dir, "--recipe", "none"])
    assert "recipe:" not in plain.stderr
    for extra in (["--prompt", "ck"], ["--no-cp"], ["--layer", "3"], ["--tp-layers", "2-3"], ["--output-layer", "-1"]):
        refused = run(main, ["similarity", "a", "b", "--model", tiny_model_dir, "--recipe", "best", *extra])
        assert refused.exit_code == 2 and f"drop {extra[0]}" in refused.output


def test_ray_runs_resolve_the_recipe_before_the_workers_start():
    from cpembed.distributed import requested_spec

    spec = requested_spec({"model": "smollm2-135m"})
    best = MODEL_RECIPES["smollm2-135m"]["best"]
    assert (spec.recipe, spec.prompt, spec.cp, spec.dtype) == ("best", best.prompt, best.cp, best.dtype)
    assert (
        spec.postprocess == "packaged:" + best.fit and fit_file(best.fit, "float32") == "smollm2-135m-best-float32.npz"
    )
    plain = requested_spec({"model": "smollm2-135m", "recipe": None, "cp": None})
    assert plain.recipe is None and plain.postprocess is None and plain.cp is None


def test_each_recipes_stated_cost_is_the_measured_one():
    import json
    import re

    performance = Path(__file__).resolve().parents[1] / "docs" / "performance"
    for model, recipes in MODEL_RECIPES.items():
        measured = performance / f"recipes-{model}.json"
        for name, r in recipes.items():
            stated = re.search(r"([0-9.]+)x the sentences/s of plain PromptEOL", r.about)
            if not measured.is_file():
                assert stated is None, f"{model} {name} states a cost nobody measured"
                continue
            assert stated, f"{model} {name}: measured in {measured.name}, say its cost"
            assert stated.group(1) == f"{json.loads(measured.read_text())['relative'][name]:.2f}"
