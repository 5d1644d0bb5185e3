"""The fits packaged with cpembed (src/cpembed/fits/): each recipe's post-processing, fitted on the
tuning corpus with the recipe's own settings, as the post-processing dev step chose it.

A general recipe ("best", "fast") names its fit and the dtypes it ships in (`cpembed.config.MODEL_RECIPES`);
one run writes the fits of the dtype the model is loaded in. The kind and width come from the dev step
of the recipe's prompt (postprocess_dev.json, "chosen"), whose setting must be the recipe's CP
setting; the same kind and width serve every dtype. A job recipe's fit is the one `cpembed tune`
made. Nothing here reads a test split.
"""

from __future__ import annotations

import json
from pathlib import Path

from cpembed.cache import EmbeddingCache
from cpembed.config import GENERAL_RECIPES, MODEL_RECIPES
from cpembed.encoder import CPEncoder
from cpembed.evaluation.corpus import tuning_corpus
from cpembed.evaluation.search import label
from cpembed.postprocess import fit, fit_file

from .postprocess_steps import PER_SOURCE, parse_post

FITS = Path(__file__).resolve().parents[1] / "src" / "cpembed" / "fits"


def ship_fits(model: str, lm, data_dir: Path, beyond_root: Path, out: Path, batch_size: int = 16, fits=FITS) -> list:
    """Fit and save every packaged fit of `model`'s recipes in `lm`'s dtype; the paths written."""
    written = []
    recipes = MODEL_RECIPES.get(model, {})
    for recipe in dict.fromkeys(recipes[name] for name in GENERAL_RECIPES if name in recipes):  # jobs: tune's fits
        if recipe.fit is None or recipe.fit == "center":
            continue
        dtype = str(lm.dtype).removeprefix("torch.")
        if dtype not in recipe.dtypes:
            continue  # this recipe ships no fit in this dtype
        chosen = json.loads((out / model / recipe.prompt / "postprocess_dev.json").read_text())["chosen"]
        if chosen["setting"] != label(recipe.cp):
            raise ValueError(f"{recipe.fit}: the dev step chose {chosen['setting']}, the recipe has {label(recipe.cp)}")
        kind, dimensions = parse_post(chosen["post"])
        encoder = CPEncoder(lm, recipe.prompt, cp=recipe.cp, tp=recipe.tp)
        corpus = tuning_corpus(data_dir, beyond_root, PER_SOURCE)
        rows = encoder.encode_settings(
            corpus, [recipe.cp], batch_size=batch_size, show_progress_bar=True, cache=EmbeddingCache()
        )[0]
        fitted = fit(rows, kind, encoder.settings().digest(), dimensions, source="tuning corpus")
        written.append(fitted.save(fits / fit_file(recipe.fit, dtype)))
    return written
