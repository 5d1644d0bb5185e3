"""The engine equals the plain two-pass reference, and does not depend on how it is batched."""

from __future__ import annotations

import pytest
import torch

from conftest import CONFIGS, SENTENCES, assert_same_embeddings
from cpembed import CPConfig, CPEncoder, preprocess
from cpembed.engine import longest_first
from reference import encoder_reference


@pytest.mark.parametrize("arch", list(CONFIGS))
@pytest.mark.parametrize("site", ["heads", "ffn", "hidden"])
@pytest.mark.parametrize("norm", ["scale", "recover"])
def test_cp_equals_two_pass_reference(tiny_models, arch, site, norm):
    cp = CPConfig(layer=3, alpha=2.5, norm=norm, site=site)
    encoder = CPEncoder(tiny_models[arch], prompt="prompteol", cp=cp)
    fast = encoder.encode(SENTENCES, batch_size=4, convert_to_tensor=True)
    reference = encoder_reference(encoder, SENTENCES, cp)
    assert_same_embeddings(fast, reference)
    # The comparison could fail: CP moves the embedding far more than the tolerance.
    plain = encoder_reference(encoder, SENTENCES, None)
    assert (plain - reference).abs().max() > 1e-2


@pytest.mark.parametrize("prompt", ["cot", "knowledge", "ck"])
@pytest.mark.parametrize("output_layer", [4, -2, -1])
def test_prompts_and_output_layers_equal_reference(tiny_lm, prompt, output_layer):
    cp = CPConfig(layer=4, alpha=3.0)
    encoder = CPEncoder(tiny_lm, prompt=prompt, cp=cp, output_layer=output_layer)
    fast = encoder.encode(SENTENCES, batch_size=3, convert_to_tensor=True)
    assert_same_embeddings(fast, encoder_reference(encoder, SENTENCES, cp))


@pytest.mark.parametrize("output_layer", [0, 1, 3, -2, -1])
def test_plain_mode_equals_output_hidden_states(tiny_lm, output_layer):
    encoder = CPEncoder(tiny_lm, prompt="prompteol", cp=None, output_layer=output_layer)
    fast = encoder.encode(SENTENCES, batch_size=4, convert_to_tensor=True)
    with torch.no_grad():
        expected = []
        for sentence in SENTENCES:
            text = encoder.prompt.templates[0].fill(preprocess(sentence))
            ids = torch.tensor([tiny_lm.tokenizer(text)["input_ids"]], device=tiny_lm.device)
            expected.append(tiny_lm.model(ids, output_hidden_states=True).hidden_states[output_layer][0, -1].cpu())
    assert_same_embeddings(fast, torch.stack(expected))


@pytest.mark.parametrize("cp", [None, CPConfig(layer=2, alpha=2.0), CPConfig(layer=3, norm="recover", site="ffn")])
def test_batch_invariance(tiny_lm, cp):
    encoder = CPEncoder(tiny_lm, prompt="prompteol", cp=cp)
    alone = torch.stack([encoder.encode(s, convert_to_tensor=True) for s in SENTENCES])
    together = encoder.encode(SENTENCES, batch_size=len(SENTENCES), convert_to_tensor=True)
    shuffled_order = [3, 0, 5, 1, 4, 2]
    shuffled = encoder.encode([SENTENCES[i] for i in shuffled_order], batch_size=2, convert_to_tensor=True)
    assert_same_embeddings(together, alone)
    assert_same_embeddings(shuffled, alone[shuffled_order])


def test_batches_are_filled_longest_first_by_tokens_not_characters(tiny_lm):
    # Nine Japanese characters are more tokens than 23 ASCII ones, so the two orders disagree here.
    texts = ["Hi there, you.", "a b c d e f g h i j k l", "x", "日本語の文章です。"]
    counts = [len(tiny_lm.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    order = longest_first(tiny_lm.tokenizer, texts).tolist()
    assert sorted(order) == [0, 1, 2, 3]
    assert [counts[i] for i in order] == sorted(counts, reverse=True)
    assert longest_first(tiny_lm.tokenizer, []).tolist() == []


SETTINGS = [
    None,
    CPConfig(layer=2, alpha=0.5),
    CPConfig(layer=2, alpha=3.0),
    CPConfig(layer=4, norm="recover"),
    CPConfig(layer=3, alpha=2.0, site="ffn"),
    CPConfig(layer=3, alpha=2.0, site="hidden"),
    CPConfig(layer=3, alpha=1.0, aux_template='The background of this sentence : "{sentence}" means in one word:"'),
]


@pytest.mark.parametrize("prompt", ["prompteol", "ck"])
def test_many_settings_in_one_pass_equal_the_reference(tiny_lm, prompt):
    """k copies of the last token, one per setting, each patched alone: every one equals two full passes."""
    encoder = CPEncoder(tiny_lm, prompt=prompt, output_layer=-2, cp=None)
    together = encoder.encode_settings(SENTENCES, SETTINGS, batch_size=4)
    for setting, embeddings in zip(SETTINGS, together, strict=True):
        assert_same_embeddings(embeddings, encoder_reference(encoder, SENTENCES, setting), err_msg=repr(setting))


def test_a_repeated_setting_is_computed_once(tiny_lm, monkeypatch):
    """Two equal settings (a recipe's plain PromptEOL row and its plain prompt) share one copy in
    the pass and come back as the same embedding."""
    from cpembed import engine

    copies, normal_pass = [], engine._normal_pass
    monkeypatch.setattr(
        engine,
        "_normal_pass",
        lambda lm, t, s, shared, *rest: copies.append(len(shared)) or normal_pass(lm, t, s, shared, *rest),
    )
    encoder = CPEncoder(tiny_lm, cp=None)
    cp = CPConfig(layer=3, alpha=2.0)
    plain, again, patched = encoder.encode_settings(SENTENCES, [None, None, cp], batch_size=len(SENTENCES))
    assert copies == [2]
    assert (plain == again).all()
    assert_same_embeddings(plain, encoder_reference(encoder, SENTENCES, None))
    assert_same_embeddings(patched, encoder_reference(encoder, SENTENCES, cp))


def test_many_settings_in_other_architectures(tiny_models):
    for arch in ("mistral", "qwen3", "gemma3_text"):
        encoder = CPEncoder(tiny_models[arch], cp=None)
        together = encoder.encode_settings(SENTENCES, SETTINGS[:4], batch_size=3)
        for setting, embeddings in zip(SETTINGS[:4], together, strict=True):
            assert_same_embeddings(
                embeddings, encoder_reference(encoder, SENTENCES, setting), err_msg=f"{arch} {setting!r}"
            )


def test_settings_are_checked_against_the_model(tiny_lm):
    encoder = CPEncoder(tiny_lm, cp=None)
    with pytest.raises(ValueError, match="out of range"):
        encoder.encode_settings(SENTENCES, [None, CPConfig(layer=9)])
    with pytest.raises(ValueError, match="at least one setting"):
        encoder.encode_settings(SENTENCES, [])


def test_a_sliding_window_shorter_than_a_prompt(tiny_models):
    """Whole padded rows where one mask cannot serve both window and full layers; settings then cannot share a pass."""
    import copy

    lm = copy.deepcopy(tiny_models["mistral"])
    lm.model.config.sliding_window = 24
    for layer in lm.layers:
        layer.self_attn.config.sliding_window = 24
    long = ["word " * 30, *SENTENCES]
    cp = CPConfig(layer=3, alpha=2.0)
    encoder = CPEncoder(lm, cp=cp)
    assert_same_embeddings(encoder.encode(long, batch_size=4), encoder_reference(encoder, long, cp))
    with pytest.raises(ValueError, match="sliding window"):
        encoder.encode_settings(long, [None, cp])


@pytest.mark.parametrize("keyword", [{"engine": "packed"}, {"padding_side": "left"}])
def test_the_old_engine_keywords_are_gone(tiny_lm, keyword):
    """They had no effect for a release (one engine, whose masks make padding irrelevant); now they are refused."""
    with pytest.raises(TypeError, match=next(iter(keyword))):
        CPEncoder(tiny_lm, cp=CPConfig(layer=3, alpha=2.0), **keyword)


DEMONSTRATIONS = [("A jockey riding a horse.", "Equestrian"), ("Two kids play chess", "Game")]


@pytest.mark.parametrize("cp", [None, CPConfig(layer=3, alpha=2.0), CPConfig(layer=2, norm="recover")])
@pytest.mark.parametrize("prompt", ["prompteol", "ck"])
def test_demonstrations_equal_the_uncached_reference(tiny_lm, prompt, cp):
    """The examples sit in the cached opening; the reference runs each whole prompt from scratch."""
    encoder = CPEncoder(tiny_lm, prompt=prompt, cp=cp, output_layer=-2, demonstrations=DEMONSTRATIONS)
    assert all("Equestrian" in t.text for t in encoder.prompt.templates)
    fast = encoder.encode(SENTENCES, batch_size=4, convert_to_tensor=True)
    assert_same_embeddings(fast, encoder_reference(encoder, SENTENCES, cp))
    # The examples change the embedding far beyond the tolerance, so the comparison could fail.
    without = CPEncoder(tiny_lm, prompt=prompt, cp=cp, output_layer=-2).encode(SENTENCES, convert_to_tensor=True)
    assert (fast - without).abs().max() > 1e-2


@pytest.mark.parametrize("cp", [None, CPConfig(layer=3, alpha=2.0)])
def test_a_prompt_ensemble_is_the_mean_of_its_members_at_one_output_layer(tiny_lm, cp):
    ensemble = CPEncoder(tiny_lm, prompt=["prompteol", "knowledge"], cp=cp, output_layer=-2)
    assert ensemble.prompt.name == "prompteol+knowledge"
    fast = ensemble.encode(SENTENCES, batch_size=4, convert_to_tensor=True)
    assert_same_embeddings(fast, encoder_reference(ensemble, SENTENCES, cp))
    members = [CPEncoder(tiny_lm, p, cp=cp, output_layer=-2).encode(SENTENCES) for p in ("prompteol", "knowledge")]
    assert_same_embeddings(fast, torch.from_numpy((members[0] + members[1]) / 2))
