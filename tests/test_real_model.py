"""One check on the real default model, SmolLM2-135M from PyPI (`make test` installs it)."""

from __future__ import annotations

import numpy as np
import pytest

from cpembed import CPEncoder

pytestmark = pytest.mark.model

SENTENCES = [
    "A man is playing a guitar.",
    "Someone is playing the guitar.",
    "The stock market fell sharply after the announcement.",
    "A woman is slicing an onion in the kitchen.",
]


@pytest.fixture(scope="module")
def encoder():
    return CPEncoder()  # the default model and its best recipe, with the fit packaged for it


def test_default_model_embeddings(encoder):
    assert encoder.lm.num_layers == 30 and encoder.cp is not None and encoder.recipe_name == "best"
    default = encoder.encode(SENTENCES)
    plain_encoder = CPEncoder(encoder.lm, cp=None)
    plain = plain_encoder.encode(SENTENCES)
    assert default.shape == (4, encoder.postprocess.dimensions) and plain.shape == (4, 576)
    assert np.isfinite(default).all() and np.isfinite(plain).all()
    default_sim, plain_sim = encoder.similarity(default, default), plain_encoder.similarity(plain, plain)
    for sim in (default_sim, plain_sim):
        # the paraphrase pair is closer than either sentence to the unrelated ones
        assert sim[0, 1] > max(sim[0, 2], sim[0, 3], sim[1, 2], sim[1, 3])
    unrelated = [(0, 2), (0, 3), (1, 2), (2, 3)]
    # the whitened default spreads unrelated sentences apart; plain last-token states all look alike
    assert max(default_sim[i, j] for i, j in unrelated) < 0.5 < min(plain_sim[i, j] for i, j in unrelated)


def test_every_recipe_of_the_default_model_loads_its_packaged_fit(encoder):
    fast = CPEncoder(recipe="fast")
    assert fast.postprocess is not None and fast.prompt.name == "prompteol"
    assert fast.settings().digest() == fast.postprocess.settings
