"""Token Prepending: equal to a hooked one-sentence-at-a-time reference in fp32, alone and with CP."""

from __future__ import annotations

import pytest
import torch

from conftest import SENTENCES, assert_same_embeddings
from cpembed import CPConfig, CPEncoder
from cpembed.config import TPConfig
from cpembed.errors import InvalidTypeError, InvalidValueError
from reference import encoder_reference


@pytest.mark.parametrize("prompt", ["prompteol", "ck"])
@pytest.mark.parametrize("tp", [TPConfig(last=3), TPConfig(last=4, first=1)])
def test_tp_equals_the_reference(tiny_lm, prompt, tp):
    encoder = CPEncoder(tiny_lm, prompt, cp=None, tp=tp)
    embeddings = encoder.encode(SENTENCES, batch_size=4, convert_to_tensor=True)
    assert_same_embeddings(embeddings, encoder_reference(encoder, SENTENCES, None, tp=tp))
    plain = CPEncoder(tiny_lm, prompt, cp=None).encode(SENTENCES, convert_to_tensor=True)
    assert not torch.allclose(embeddings, plain, atol=1e-3)  # TP changes the embedding


@pytest.mark.parametrize(
    "cp",
    [
        CPConfig(layer=4, alpha=2.0),  # after TP's layers: shares the pass with the others
        CPConfig(layer=2, alpha=2.0),  # inside them: changes what TP copies, so runs alone
        CPConfig(layer=3, norm="recover", site="hidden"),
    ],
)
def test_tp_with_cp_equals_the_reference(tiny_lm, cp):
    tp = TPConfig(last=3)
    encoder = CPEncoder(tiny_lm, "prompteol", cp=cp, tp=tp)
    assert_same_embeddings(encoder.encode(SENTENCES, batch_size=4), encoder_reference(encoder, SENTENCES, cp, tp=tp))


def test_settings_with_tp_in_one_call_equal_each_alone(tiny_lm):
    tp = TPConfig(last=3)
    settings = [None, CPConfig(layer=4, alpha=2.0), CPConfig(layer=2, alpha=1.0), CPConfig(layer=5, norm="recover")]
    encoder = CPEncoder(tiny_lm, "prompteol", cp=None, tp=tp)
    together = encoder.encode_settings(SENTENCES, settings, batch_size=3)
    for setting, found in zip(settings, together, strict=True):
        assert_same_embeddings(found, encoder_reference(encoder, SENTENCES, setting, tp=tp), err_msg=repr(setting))


def test_tp_leaves_no_hook_behind(tiny_lm):
    def hooks() -> int:  # transformers may keep hooks of its own for output_hidden_states: count ours
        return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in tiny_lm.model.modules())

    before = hooks()
    CPEncoder(tiny_lm, "prompteol", cp=CPConfig(layer=2), tp=TPConfig(last=3)).encode(SENTENCES)
    assert hooks() == before


def test_tp_settings_and_their_errors(tiny_lm):
    assert TPConfig.parse("2-7") == TPConfig(last=7, first=2) and TPConfig.parse("7") == TPConfig(last=7)
    for bad in ("x", "2-", "7-2", "0"):
        with pytest.raises(InvalidValueError):
            TPConfig.parse(bad)
    with pytest.raises(InvalidValueError, match="out of range for a 6-layer model"):
        CPEncoder(tiny_lm, cp=None, tp=TPConfig(last=7))
    with pytest.raises(InvalidTypeError, match="tp must be a TPConfig"):
        CPEncoder(tiny_lm, cp=None, tp=3)
    plain, with_tp = CPEncoder(tiny_lm, cp=None), CPEncoder(tiny_lm, cp=None, tp=TPConfig(last=3))
    assert "tp" not in plain.settings().as_dict()  # digests made before TP existed still hold
    assert plain.settings().digest() != with_tp.settings().digest()
    assert with_tp.for_role("query").tp == with_tp.tp


def test_ray_workers_get_the_tp_setting():
    from cpembed.distributed import requested_spec
    from cpembed.spec import EncoderSpec

    with_tp = requested_spec({"model": "smollm2-135m", "tp": TPConfig(last=3)})
    assert with_tp.to_dict()["tp"] == {"last": 3, "first": 2, "seed": 3407}
    assert EncoderSpec.from_dict(with_tp.to_dict()).tp == TPConfig(last=3)
    assert requested_spec({"model": "smollm2-135m"}).tp is None
