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
    return CPEncoder()  # the default model, prompt and CP settings


def test_default_model_embeddings(encoder):
    assert encoder.lm.num_layers == 30 and encoder.cp is not None
    steered = encoder.encode(SENTENCES)
    plain = CPEncoder(encoder.lm, cp=None).encode(SENTENCES)
    assert steered.shape == plain.shape == (4, 576)
    assert np.isfinite(steered).all() and np.isfinite(plain).all()
    assert np.abs(steered - plain).max() > 1e-3  # CP changes the embeddings
    for embeddings in (steered, plain):
        sim = encoder.similarity(embeddings, embeddings)
        # the paraphrase pair is closer than either sentence to the unrelated ones
        assert sim[0, 1] > max(sim[0, 2], sim[0, 3], sim[1, 2], sim[1, 3])
