"""`CPEncoder(recipe="best")` and `--recipe best`: one name for a model's whole best way to embed."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from conftest import SENTENCES, assert_same_embeddings
from cpembed import BEST_RECIPE, PAPER_CP, CPConfig, CPEncoder, Recipe, TPConfig, recipe
from cpembed.cli import main
from cpembed.errors import InvalidValueError


def test_a_searched_models_recipe_sets_prompt_cp_and_tp(tiny_lm, monkeypatch):
    chosen = Recipe("cot", CPConfig(layer=3, alpha=2.0), TPConfig(last=3))
    monkeypatch.setitem(BEST_RECIPE, tiny_lm.name, chosen)
    encoder = CPEncoder(tiny_lm, recipe="best")
    assert (encoder.prompt.name, encoder.cp, encoder.tp) == ("cot", chosen.cp, chosen.tp)
    by_hand = CPEncoder(tiny_lm, "cot", cp=chosen.cp, tp=chosen.tp)
    assert_same_embeddings(encoder.encode(SENTENCES), by_hand.encode(SENTENCES))
    assert encoder.settings().digest() == by_hand.settings().digest()  # the cache and Ray see one setting


def test_an_unsearched_model_gets_the_papers_best_recipe(tiny_lm):
    assert recipe("some/other/model") == Recipe("ck", PAPER_CP["ck"])
    with pytest.raises(InvalidValueError, match="CP layer 7 is out of range for a 6-layer model"):
        CPEncoder(tiny_lm, recipe="best")  # the paper's l=7 was chosen for a 32-layer model


@pytest.mark.parametrize(
    "given, named",
    [
        ({"prompt": "cot"}, "prompt"),
        ({"cp": None}, "cp"),
        ({"tp": TPConfig(last=3)}, "tp"),
        ({"cp": PAPER_CP["cot"]}, "cp"),
    ],
)
def test_a_recipe_with_its_own_parts_is_refused(tiny_lm, given, named):
    with pytest.raises(InvalidValueError, match=rf"sets the prompt, CP and TP: drop {named}\b"):
        CPEncoder(tiny_lm, recipe="best", **given)


def test_an_unknown_recipe_names_the_known_ones(tiny_lm):
    with pytest.raises(InvalidValueError, match="recipe must be one of best"):
        CPEncoder(tiny_lm, recipe="fastest")


def test_the_cli_takes_a_recipe_and_refuses_it_beside_its_parts(tiny_model_dir, monkeypatch):
    monkeypatch.setitem(BEST_RECIPE, tiny_model_dir, Recipe("cot", CPConfig(layer=2, alpha=1.0)))
    run = CliRunner().invoke
    done = run(main, ["similarity", "A cat sits.", "A dog runs.", "--model", tiny_model_dir, "--recipe", "best"])
    assert done.exit_code == 0, done.output
    expected = CPEncoder(tiny_model_dir, "cot", cp=CPConfig(layer=2, alpha=1.0)).similarity(
        "A cat sits.", "A dog runs."
    )
    assert f"{expected[0, 0]:.4f}" in done.output
    for extra in (["--prompt", "ck"], ["--no-cp"], ["--layer", "3"], ["--tp-layers", "2-3"]):
        refused = run(main, ["similarity", "a", "b", "--model", tiny_model_dir, "--recipe", "best", *extra])
        assert refused.exit_code == 2 and f"drop {extra[0]}" in refused.output


def test_ray_runs_resolve_the_recipe_before_the_workers_start():
    from cpembed.distributed import _encoder_arguments, requested_settings

    settings = requested_settings({"model": "smollm2-135m", "recipe": "best"})
    best = BEST_RECIPE["smollm2-135m"]
    assert settings["prompt"] == best.prompt and _encoder_arguments(settings)["cp"] == best.cp
