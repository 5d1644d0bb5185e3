"""Control interventions (zero, scale, shuffle, mean) equal the plain reference and keep their promises."""

from __future__ import annotations

import pytest
import torch

from conftest import SENTENCES
from cpembed import CPConfig, CPEncoder
from cpembed.controls import REFERENCE_SENTENCES, partners
from cpembed.search import control_settings, label
from cpembed.variants import encode_variants
from reference import reference_aux_vector, reference_embedding

TOL = dict(atol=1e-5, rtol=1e-5)


def _reference(encoder: CPEncoder, sentences: list[str], cp: CPConfig) -> torch.Tensor:
    templates = [t.text for t in encoder.prompt.templates]
    aux_vector = None
    if cp.intervention == "mean":  # written out: the mean over the reference set, one full pass each
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
                aux_sentence=partner[i] if cp.intervention == "shuffle" else None,
                aux_vector=aux_vector,
            )
            for i, s in enumerate(sentences)
        ]
    )


CONTROLS = [
    CPConfig(layer=3, alpha=2.0, intervention="zero"),
    CPConfig(layer=3, alpha=2.0, intervention="scale"),
    CPConfig(layer=3, alpha=2.0, intervention="shuffle"),
    CPConfig(layer=2, norm="recover", intervention="shuffle", site="ffn"),
    CPConfig(layer=3, alpha=2.0, intervention="mean"),
    CPConfig(layer=4, norm="recover", intervention="mean", site="hidden"),
]


@pytest.mark.parametrize("engine", ["packed", "padded"])
@pytest.mark.parametrize("cp", CONTROLS, ids=label)
@pytest.mark.parametrize("prompt", ["prompteol", "ck"])
def test_controls_equal_reference(tiny_lm, cp, prompt, engine):
    encoder = CPEncoder(tiny_lm, prompt=prompt, cp=cp, engine=engine)
    expected = _reference(encoder, SENTENCES, cp)
    torch.testing.assert_close(encoder.encode(SENTENCES, batch_size=4, convert_to_tensor=True), expected, **TOL)
    # The comparison could fail: each control moves the embedding far more than the tolerance.
    plain = CPEncoder(tiny_lm, prompt=prompt, cp=None).encode(SENTENCES, convert_to_tensor=True)
    assert (plain - expected).abs().max() > 1e-2


def test_controls_in_the_many_settings_engine(tiny_lm):
    settings = [None, CPConfig(layer=3, alpha=2.0), *CONTROLS]
    encoder = CPEncoder(tiny_lm, prompt="prompteol", cp=None)
    together = encode_variants(encoder, SENTENCES, settings, batch_size=4)
    for setting, embeddings in zip(settings, together, strict=True):
        alone = CPEncoder(tiny_lm, prompt="prompteol", cp=setting, engine="padded").encode(SENTENCES, batch_size=3)
        torch.testing.assert_close(torch.from_numpy(embeddings), torch.from_numpy(alone), **TOL)


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


@pytest.mark.parametrize("intervention", ["zero", "scale"])
def test_zero_and_scale_run_no_auxiliary_pass(tiny_lm, intervention):
    """One pass of the prompt, every layer once: CP would run layers 1..l twice."""
    encoder = CPEncoder(tiny_lm, cp=CPConfig(layer=3, alpha=2.0, intervention=intervention))
    calls = _layer_calls(tiny_lm, lambda: encoder.encode(SENTENCES, batch_size=len(SENTENCES)))
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
    encoder = CPEncoder(tiny_lm, cp=CPConfig(layer=3, alpha=2.0, intervention="shuffle"))
    first = encoder.encode(SENTENCES, batch_size=2)
    torch.testing.assert_close(
        torch.from_numpy(encoder.encode(SENTENCES, batch_size=5)), torch.from_numpy(first), **TOL
    )
    contrast = CPEncoder(tiny_lm, cp=CPConfig(layer=3, alpha=2.0)).encode(SENTENCES)
    assert abs(first - contrast).max() > 1e-2  # another sentence's vector, not its own
    with pytest.raises(ValueError, match="at least two different"):
        encoder.encode("a single sentence")


def test_mean_is_independent_of_the_batch(tiny_lm):
    encoder = CPEncoder(tiny_lm, cp=CPConfig(layer=3, alpha=2.0, intervention="mean"))
    alone = torch.stack([encoder.encode(s, convert_to_tensor=True) for s in SENTENCES])
    others = ["an unrelated sentence about cooking", "yet another one", *SENTENCES]
    in_batch = encoder.encode(others, batch_size=8, convert_to_tensor=True)[2:]
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
    with pytest.raises(ValueError, match="intervention must be one of"):
        CPConfig(intervention="random")


def test_the_mean_reference_is_computed_once_per_model(tiny_lm):
    """Not once per encode call: it costs 32 auxiliary passes."""
    encoder = CPEncoder(tiny_lm, cp=CPConfig(layer=3, alpha=2.0, intervention="mean"))
    tiny_lm.reference_aux.clear()
    encoder.encode(SENTENCES[:2])
    calls = _layer_calls(tiny_lm, lambda: encoder.encode(SENTENCES[:2], batch_size=2))
    assert calls == [1] * tiny_lm.num_layers  # the second call runs only the prompt itself
