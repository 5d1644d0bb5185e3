"""Many CP settings in one pass equal one encoder per setting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import SENTENCES, assert_same_embeddings
from cpembed import CPConfig, CPEncoder
from cpembed.variants import encode_variants
from reference import encoder_reference

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
        alone = CPEncoder(tiny_lm, prompt=prompt, cp=variant, output_layer=-2, engine="padded").encode(SENTENCES)
        assert_same_embeddings(embeddings, alone, err_msg=repr(variant))


def test_variants_in_other_architectures(tiny_models):
    for arch in ("mistral", "qwen3", "gemma3_text"):
        encoder = CPEncoder(tiny_models[arch], cp=None)
        together = encode_variants(encoder, SENTENCES, VARIANTS[:4], batch_size=3)
        for variant, embeddings in zip(VARIANTS[:4], together, strict=True):
            alone = CPEncoder(tiny_models[arch], cp=variant, engine="padded").encode(SENTENCES)
            assert_same_embeddings(embeddings, alone, err_msg=f"{arch} {variant!r}")


def test_variants_check_every_setting(tiny_lm):
    encoder = CPEncoder(tiny_lm, cp=None)
    with pytest.raises(ValueError, match="out of range"):
        encode_variants(encoder, SENTENCES, [None, CPConfig(layer=9)])
    with pytest.raises(ValueError, match="at least one setting"):
        encode_variants(encoder, SENTENCES, [])


def test_packs_within_a_token_budget_give_the_same_embeddings(tiny_lm, monkeypatch):
    from cpembed import packing, variants

    encoder = CPEncoder(tiny_lm, cp=None)
    whole = encode_variants(encoder, SENTENCES, VARIANTS[:3], batch_size=len(SENTENCES))
    packs = []
    real_pack = variants.pack
    monkeypatch.setattr(variants, "pack", lambda lm, t, rows, k: packs.append(len(rows)) or real_pack(lm, t, rows, k))
    monkeypatch.setitem(packing.MAX_PACKED_TOKENS, tiny_lm.device.type, 60)
    split = encode_variants(encoder, SENTENCES, VARIANTS[:3], batch_size=len(SENTENCES))
    assert max(packs) < len(SENTENCES)  # the budget did split the batch
    for a, b in zip(whole, split, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)


def test_encoder_engines_agree_and_sliding_windows_fall_back(tiny_lm, monkeypatch):
    cp = CPConfig(layer=3, alpha=2.0)
    packed = CPEncoder(tiny_lm, cp=cp, engine="packed")
    assert CPEncoder(tiny_lm, cp=cp).engine == "padded"  # the default, measured the faster
    np.testing.assert_allclose(
        packed.encode(SENTENCES), CPEncoder(tiny_lm, cp=cp, engine="padded").encode(SENTENCES), atol=1e-5, rtol=1e-5
    )
    with pytest.raises(ValueError, match="engine must be"):
        CPEncoder(tiny_lm, engine="fast")
    # A prompt may not exceed a sliding window in the packed engine: such encoders use padding.
    monkeypatch.setattr(tiny_lm.model.config, "sliding_window", 64, raising=False)
    assert CPEncoder(tiny_lm, max_length=65, engine="packed").engine == "padded"
    # ...and run whole rows: a cached opening could fall out of the window.
    monkeypatch.setattr(tiny_lm, "prefix_states", {})
    CPEncoder(tiny_lm, cp=cp, max_length=65, engine="padded").encode(SENTENCES)
    assert tiny_lm.prefix_states == {}
    assert CPEncoder(tiny_lm, max_length=64, engine="packed").engine == "packed"


def test_a_prefix_that_merges_across_the_template_boundary(tiny_lm):
    """With no space before {sentence}, the template's last word and the sentence's first piece can
    become one token: the shared prefix must come from the whole prompts' ids, not the template's."""
    from cpembed.packing import common_prefix
    from cpembed.prompts import Template, prompt_token_ids
    from reference import reference_embedding

    template = 'Sentence: pl{sentence}" means in one word:"'
    sentences = ["ay.", "e dog.", "s are.", "uitar."]  # "pl" + "ay" is one token in this vocabulary
    rows = prompt_token_ids(tiny_lm.tokenizer, Template(template), sentences)
    alone = tiny_lm.tokenizer("Sentence: pl")["input_ids"]
    assert any(row[: len(alone)] != alone for row in rows)  # the boundary does merge
    shared = common_prefix(rows)
    assert all(row[:shared] == rows[0][:shared] for row in rows) and shared < len(alone)
    cp = CPConfig(layer=3, alpha=2.0)
    packed = CPEncoder(tiny_lm, prompt=template, cp=cp, engine="packed").encode(sentences, convert_to_tensor=True)
    import torch

    expected = torch.stack([reference_embedding(tiny_lm, [template], s, cp, -1) for s in sentences])
    torch.testing.assert_close(packed, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("engine", ["packed", "padded"])
def test_a_template_opening_is_computed_once_per_model(tiny_lm, monkeypatch, engine):
    """Every pack or padded batch after a template's first reads the opening's keys and values
    from the model's cache, and its own sequence starts after them."""
    from cpembed import packing

    monkeypatch.setattr(tiny_lm, "prefix_states", {})
    computed, first_tokens = [], []
    real = packing._prefix_states
    monkeypatch.setattr(packing, "_prefix_states", lambda lm, ids: computed.append(list(ids)) or real(lm, ids))
    hook = tiny_lm.layers[0].register_forward_pre_hook(
        lambda module, args, kwargs: first_tokens.append(1), with_kwargs=True
    )
    try:
        cp = CPConfig(layer=3, alpha=2.0)
        encoder = CPEncoder(tiny_lm, cp=cp, engine=engine)
        first = encoder.encode(SENTENCES, batch_size=2)
        again = encoder.encode(SENTENCES[::-1], batch_size=3)
    finally:
        hook.remove()
    # One opening per template (the prompt and the auxiliary prompt), however many batches ran.
    assert len(computed) == 2 and len(first_tokens) > 2 * len(computed)
    assert_same_embeddings(again[::-1], first)
    assert_same_embeddings(first, encoder_reference(encoder, SENTENCES, cp))


@pytest.mark.parametrize("engine", ["packed", "padded"])
def test_a_first_batch_that_shares_a_word_does_not_bind_later_ones(tiny_lm, monkeypatch, engine):
    """The first batch's sentences all start with "The", so its shared prefix (and the cached one)
    reaches into the sentences; later batches reuse only the part they have in common with it."""
    from cpembed import packing

    monkeypatch.setattr(tiny_lm, "prefix_states", {})
    cp = CPConfig(layer=2, alpha=1.0)
    encoder = CPEncoder(tiny_lm, cp=cp, engine=engine)
    encoder.encode(["The cat sat.", "The dog ran."], batch_size=2)
    stored, _ = tiny_lm.prefix_states[(encoder.prompt.templates[0].text, str(tiny_lm.device), tiny_lm.dtype)]
    others = ["A bird sang.", "Rain fell all day long."]
    rows = packing.prompt_token_ids(tiny_lm.tokenizer, encoder.prompt.templates[0], others)
    assert len(stored) > packing.common_prefix(rows)  # the stored prefix is longer than this batch's
    assert_same_embeddings(encoder.encode(others), encoder_reference(encoder, others, cp))


@pytest.mark.parametrize("engine", ["packed", "padded"])
def test_a_forward_reads_the_cached_opening_without_growing_it(tiny_lm, monkeypatch, engine):
    """The cache a forward gets holds the opening alone when the forward ends, so no layer's keys
    and values for the batch outlive that layer's attention; the stored opening is not written."""
    from cpembed import packing

    monkeypatch.setattr(tiny_lm, "prefix_states", {})
    caches = []
    real = packing.cache_arguments
    monkeypatch.setattr(packing, "cache_arguments", lambda lm, prefix: caches.append(real(lm, prefix)) or caches[-1])
    encoder = CPEncoder(tiny_lm, cp=CPConfig(layer=3, alpha=2.0), engine=engine)
    encoder.encode(SENTENCES, batch_size=3)
    (stored_ids, states), *_ = tiny_lm.prefix_states.values()
    snapshot = [(keys.clone(), values.clone()) for keys, values in states]
    encoder.encode(SENTENCES[::-1], batch_size=3)
    used = [next(v for k, v in arguments.items() if k != "use_cache") for arguments in caches if arguments["use_cache"]]
    assert used, "no forward read the cached opening"
    for cache in used:
        assert all(layer.keys.shape[-2] <= len(stored_ids) for layer in cache.layers)
        assert cache.get_seq_length() == cache.layers[0].keys.shape[-2] > 0
    for (keys, values), (keys_before, values_before) in zip(states, snapshot, strict=True):
        assert torch.equal(keys, keys_before) and torch.equal(values, values_before)
