"""The engine equals the plain two-pass reference, and does not depend on how it is batched."""

from __future__ import annotations

import pytest
import torch

from conftest import CONFIGS, SENTENCES, assert_same_embeddings
from cpembed import CPConfig, CPEncoder, preprocess
from reference import encoder_reference


@pytest.mark.parametrize("engine", ["packed", "padded"])
@pytest.mark.parametrize("arch", list(CONFIGS))
@pytest.mark.parametrize("site", ["heads", "ffn", "hidden"])
@pytest.mark.parametrize("norm", ["scale", "recover"])
def test_cp_equals_two_pass_reference(tiny_models, arch, site, norm, engine):
    cp = CPConfig(layer=3, alpha=2.5, norm=norm, site=site)
    encoder = CPEncoder(tiny_models[arch], prompt="prompteol", cp=cp, engine=engine)
    fast = encoder.encode(SENTENCES, batch_size=4, convert_to_tensor=True)
    reference = encoder_reference(encoder, SENTENCES, cp)
    assert_same_embeddings(fast, reference)
    # The comparison could fail: CP moves the embedding far more than the tolerance.
    plain = encoder_reference(encoder, SENTENCES, None)
    assert (plain - reference).abs().max() > 1e-2


@pytest.mark.parametrize("engine", ["packed", "padded"])
@pytest.mark.parametrize("prompt", ["cot", "knowledge", "ck"])
@pytest.mark.parametrize("output_layer", [4, -2, -1])
def test_prompts_and_output_layers_equal_reference(tiny_lm, prompt, output_layer, engine):
    cp = CPConfig(layer=4, alpha=3.0)
    encoder = CPEncoder(tiny_lm, prompt=prompt, cp=cp, output_layer=output_layer, engine=engine)
    fast = encoder.encode(SENTENCES, batch_size=3, convert_to_tensor=True)
    assert_same_embeddings(fast, encoder_reference(encoder, SENTENCES, cp))


@pytest.mark.parametrize("engine", ["packed", "padded"])
@pytest.mark.parametrize("output_layer", [0, 1, 3, -2, -1])
def test_plain_mode_equals_output_hidden_states(tiny_lm, output_layer, engine):
    encoder = CPEncoder(tiny_lm, prompt="prompteol", cp=None, output_layer=output_layer, engine=engine)
    fast = encoder.encode(SENTENCES, batch_size=4, convert_to_tensor=True)
    with torch.no_grad():
        expected = []
        for sentence in SENTENCES:
            text = encoder.prompt.templates[0].fill(preprocess(sentence))
            ids = tiny_lm.tokenizer(text, return_tensors="pt").input_ids.to(tiny_lm.device)
            expected.append(tiny_lm.model(ids, output_hidden_states=True).hidden_states[output_layer][0, -1].cpu())
    assert_same_embeddings(fast, torch.stack(expected))


@pytest.mark.parametrize(("engine", "padding_side"), [("padded", "right"), ("padded", "left"), ("packed", "right")])
@pytest.mark.parametrize("cp", [None, CPConfig(layer=2, alpha=2.0), CPConfig(layer=3, norm="recover", site="ffn")])
def test_batch_invariance(tiny_lm, engine, padding_side, cp):
    encoder = CPEncoder(tiny_lm, prompt="prompteol", cp=cp, padding_side=padding_side, engine=engine)
    alone = torch.stack([encoder.encode(s, convert_to_tensor=True) for s in SENTENCES])
    together = encoder.encode(SENTENCES, batch_size=len(SENTENCES), convert_to_tensor=True)
    shuffled_order = [3, 0, 5, 1, 4, 2]
    shuffled = encoder.encode([SENTENCES[i] for i in shuffled_order], batch_size=2, convert_to_tensor=True)
    assert_same_embeddings(together, alone)
    assert_same_embeddings(shuffled, alone[shuffled_order])


def test_padding_sides_agree(tiny_lm):
    cp = CPConfig(layer=3, alpha=2.0)
    right = CPEncoder(tiny_lm, cp=cp, padding_side="right", engine="padded").encode(SENTENCES, convert_to_tensor=True)
    left = CPEncoder(tiny_lm, cp=cp, padding_side="left", engine="padded").encode(SENTENCES, convert_to_tensor=True)
    assert_same_embeddings(left, right)
