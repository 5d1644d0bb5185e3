"""Many CP settings in one pass equal one encoder per setting."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SENTENCES
from cpembed import CPConfig, CPEncoder
from cpembed.variants import encode_variants

VARIANTS = [
    None,
    CPConfig(layer=2, alpha=0.5),
    CPConfig(layer=2, alpha=3.0),
    CPConfig(layer=4, norm="recover"),
    CPConfig(layer=3, alpha=2.0, site="ffn"),
    CPConfig(layer=3, alpha=2.0, site="hidden"),
    CPConfig(layer=3, alpha=1.0, aux_template='The background of this sentence : "{sentence}" means in one word:"'),
]


@pytest.mark.parametrize("prompt", ["prompteol", "ck"])
def test_variants_equal_separate_encoders(tiny_lm, prompt):
    encoder = CPEncoder(tiny_lm, prompt=prompt, output_layer=-2, cp=None)
    together = encode_variants(encoder, SENTENCES, VARIANTS, batch_size=4)
    for variant, embeddings in zip(VARIANTS, together, strict=True):
        alone = CPEncoder(tiny_lm, prompt=prompt, cp=variant, output_layer=-2).encode(SENTENCES)
        np.testing.assert_allclose(embeddings, alone, atol=1e-5, rtol=1e-5, err_msg=repr(variant))


def test_variants_in_other_architectures(tiny_models):
    for arch in ("mistral", "qwen3", "gemma3_text"):
        encoder = CPEncoder(tiny_models[arch], cp=None)
        together = encode_variants(encoder, SENTENCES, VARIANTS[:4], batch_size=3)
        for variant, embeddings in zip(VARIANTS[:4], together, strict=True):
            alone = CPEncoder(tiny_models[arch], cp=variant).encode(SENTENCES)
            np.testing.assert_allclose(embeddings, alone, atol=1e-5, rtol=1e-5, err_msg=f"{arch} {variant!r}")


def test_variants_check_every_setting(tiny_lm):
    encoder = CPEncoder(tiny_lm, cp=None)
    with pytest.raises(ValueError, match="out of range"):
        encode_variants(encoder, SENTENCES, [None, CPConfig(layer=9)])
    with pytest.raises(ValueError, match="at least one setting"):
        encode_variants(encoder, SENTENCES, [])
