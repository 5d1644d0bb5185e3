"""Control interventions (zero, scale, shuffle, mean) equal the plain reference and keep their promises."""

from __future__ import annotations

import pytest
import torch

from conftest import SENTENCES
from cpembed import CPConfig, CPEncoder
from cpembed.evaluation.controls import REFERENCE_SENTENCES, Control, encode_with_controls, partners
from cpembed.evaluation.search import control_settings, label
from reference import reference_aux_vector, reference_embedding

TOL = dict(atol=1e-5, rtol=1e-5)


def _reference(encoder: CPEncoder, sentences: list[str], control: Control) -> torch.Tensor:
    templates = [t.text for t in encoder.prompt.templates]
    cp, kind = control.cp, control.kind
    aux_vector = None
    if kind == "mean":  # written out: the mean over the reference set, one full pass each
        aux_vector = torch.stack([reference_aux_vector(encoder.lm, cp, s) for s in REFERENCE_SENTENCES]).mean(0)
    # The shuffle partner by its definition: the next different sentence, wrapping around.
    partner = [next(t for t in sentences[i + 1 :] + sentences[: i + 1] if t != s) for i, s in enumerate(sentences)]
    return torch.stack(
        [
            reference_embedding(
                encoder.lm,
                templates,
                s,
                cp,
                encoder.output_layer,
                control=kind,
                aux_sentence=partner[i] if kind == "shuffle" else None,
                aux_vector=aux_vector,
            )
            for i, s in enumerate(sentences)
        ]
    )


CONTROLS = [
    Control("zero", CPConfig(layer=3, alpha=2.0)),
    Control("scale", CPConfig(layer=3, alpha=2.0)),
    Control("shuffle", CPConfig(layer=3, alpha=2.0)),
    Control("shuffle", CPConfig(layer=2, norm="recover", site="ffn")),
    Control("mean", CPConfig(layer=3, alpha=2.0)),
    Control("mean", CPConfig(layer=4, norm="recover", site="hidden")),
]


@pytest.mark.parametrize("prompt", ["prompteol", "ck"])
def test_controls_in_one_pass_equal_the_reference(tiny_lm, prompt):
    """Every control, beside CP and the baseline, from one pass: each equals two full hooked passes."""
    encoder = CPEncoder(tiny_lm, prompt=prompt, cp=None)
    settings = [None, CPConfig(layer=3, alpha=2.0), *CONTROLS]
    together = encode_with_controls(encoder, SENTENCES, settings, batch_size=4)
    plain = torch.from_numpy(together[0])
    for control, embeddings in zip(CONTROLS, together[2:], strict=True):
        expected = _reference(encoder, SENTENCES, control)
        torch.testing.assert_close(torch.from_numpy(embeddings), expected, **TOL, msg=control.label)
        # The comparison could fail: each control moves the embedding far more than the tolerance.
        assert (plain - expected).abs().max() > 1e-2


def _layer_calls(lm, run) -> list[int]:
    calls = [0] * lm.num_layers
    handles = [
        block.register_forward_pre_hook(lambda _m, _a, i=i: calls.__setitem__(i, calls[i] + 1))
        for i, block in enumerate(lm.layers)
    ]
    try:
        run()
    finally:
        for handle in handles:
            handle.remove()
    return calls


@pytest.mark.parametrize("kind", ["zero", "scale"])
def test_zero_and_scale_run_no_auxiliary_pass(tiny_lm, kind):
    """One pass of the prompt, every layer once: CP would run layers 1..l twice."""
    encoder = CPEncoder(tiny_lm, cp=None)
    control = [Control(kind, CPConfig(layer=3, alpha=2.0))]
    calls = _layer_calls(tiny_lm, lambda: encode_with_controls(encoder, SENTENCES, control, batch_size=len(SENTENCES)))
    assert calls == [1] * tiny_lm.num_layers
    cp_calls = _layer_calls(
        tiny_lm, lambda: CPEncoder(tiny_lm, cp=CPConfig(layer=3)).encode(SENTENCES, batch_size=len(SENTENCES))
    )
    assert cp_calls == [2] * 3 + [1] * (tiny_lm.num_layers - 3)


def test_partners_never_self_and_deterministic():
    texts = ["a", "a", "b", "c", "c", "a"]
    found = partners(texts)
    assert found == [2, 2, 3, 5, 5, 2]
    assert all(texts[j] != texts[i] for i, j in enumerate(found))
    assert partners(texts) == found
    assert partners(["x", "y"]) == [1, 0]
    assert partners([]) == []
    for bad in (["only one"], ["same", "same"]):
        with pytest.raises(ValueError, match="at least two different"):
            partners(bad)


def test_shuffle_depends_on_order_not_on_batching(tiny_lm):
    encoder = CPEncoder(tiny_lm, cp=None)
    shuffle = [Control("shuffle", CPConfig(layer=3, alpha=2.0))]
    first = encode_with_controls(encoder, SENTENCES, shuffle, batch_size=2)[0]
    torch.testing.assert_close(
        torch.from_numpy(encode_with_controls(encoder, SENTENCES, shuffle, batch_size=5)[0]),
        torch.from_numpy(first),
        **TOL,
    )
    contrast = CPEncoder(tiny_lm, cp=CPConfig(layer=3, alpha=2.0)).encode(SENTENCES)
    assert abs(first - contrast).max() > 1e-2  # another sentence's vector, not its own
    with pytest.raises(ValueError, match="at least two different"):
        encode_with_controls(encoder, ["a single sentence"], shuffle)


def test_mean_is_independent_of_the_batch(tiny_lm):
    encoder = CPEncoder(tiny_lm, cp=None)
    mean = [Control("mean", CPConfig(layer=3, alpha=2.0))]
    alone = torch.stack([torch.from_numpy(encode_with_controls(encoder, [s], mean)[0][0]) for s in SENTENCES])
    others = ["an unrelated sentence about cooking", "yet another one", *SENTENCES]
    in_batch = torch.from_numpy(encode_with_controls(encoder, others, mean, batch_size=8)[0][2:])
    torch.testing.assert_close(in_batch, alone, **TOL)


def test_control_settings_and_labels():
    names = [label(s) for s in control_settings(5, 2.0)]
    assert names == [
        "baseline",
        "NS l=5 a=2",
        "NR l=5",
        "zero l=5",
        "scale l=5 a=2",
        "shuffle NS l=5 a=2",
        "shuffle NR l=5",
        "mean NS l=5 a=2",
        "mean NR l=5",
    ]
    with pytest.raises(ValueError, match="a control is one of"):
        Control("random", CPConfig())
    with pytest.raises(TypeError):
        CPConfig(intervention="zero")  # controls are not settings of CP


def test_cached_controls_equal_computed_ones(tiny_lm, tmp_path):
    """Controls go through the embedding cache too: a shuffle row is keyed by its partner as well."""
    from cpembed.cache import EmbeddingCache

    encoder = CPEncoder(tiny_lm, cp=None)
    settings = [None, *CONTROLS[:3], CONTROLS[4]]
    computed = encode_with_controls(encoder, SENTENCES, settings, batch_size=4)
    cache = EmbeddingCache(tmp_path)
    first = encode_with_controls(encoder, SENTENCES, settings, batch_size=4, cache=cache)
    again = encode_with_controls(encoder, SENTENCES[::-1], settings, batch_size=4, cache=cache)
    for a, b in zip(computed, first, strict=True):
        torch.testing.assert_close(torch.from_numpy(b), torch.from_numpy(a), **TOL)
    # Reversed, each sentence has another shuffle partner: those rows are new, the others are read.
    torch.testing.assert_close(torch.from_numpy(again[0][::-1].copy()), torch.from_numpy(computed[0]), **TOL)
    assert abs(again[3][::-1] - computed[3]).max() > 1e-3
