"""What CP does inside the model: NS/NR arithmetic, where it writes, how far the auxiliary pass runs."""

from __future__ import annotations

import pytest
import torch

from conftest import SENTENCES
from cpembed import CPConfig, CPEncoder, preprocess
from cpembed.engine import auxiliary_vectors
from cpembed.steering import norm_recovering, norm_scaling


def test_ns_and_nr_arithmetic():
    torch.manual_seed(0)
    v_nor, v_aux = torch.randn(5, 48), torch.randn(5, 48)
    torch.testing.assert_close(norm_scaling(v_nor, v_aux, 3.0).norm(dim=-1), 3.0 * (v_nor - v_aux).norm(dim=-1))
    recovered = norm_recovering(v_nor, v_aux)
    torch.testing.assert_close(recovered.norm(dim=-1), v_nor.norm(dim=-1))
    cosine = torch.nn.functional.cosine_similarity(recovered, v_nor - v_aux, dim=-1)
    torch.testing.assert_close(cosine, torch.ones(5))


def _record(module, side, into):
    if side == "input":
        return module.register_forward_pre_hook(lambda _m, args: into.append(args[0].clone()))
    return module.register_forward_hook(lambda _m, _a, out: into.append(out.clone()))


def _site_values(encoder: CPEncoder, sentences):
    """(o_proj input at layer l as patched, every later layer's output) seen during encode."""
    layers = encoder.lm.layers
    seen_site: list[torch.Tensor] = []
    seen_outputs: list[torch.Tensor] = []
    # Registered before encode, so it sees the o_proj input *after* cpembed's patch hook.
    handles = [layers[2].self_attn.o_proj.register_forward_hook(lambda _m, args, _o: seen_site.append(args[0].clone()))]
    handles.append(_record(layers[-2], "output", seen_outputs))
    try:
        encoder.encode(sentences, batch_size=len(sentences))
    finally:
        for handle in handles:
            handle.remove()
    return seen_site, seen_outputs


@pytest.mark.parametrize("norm", ["scale", "recover"])
def test_patch_changes_only_the_last_token(tiny_lm, norm):
    sentence = [SENTENCES[3]]
    plain = CPEncoder(tiny_lm, cp=None)
    cp = CPEncoder(tiny_lm, cp=CPConfig(layer=3, alpha=2.0, norm=norm))
    plain_site, plain_out = _site_values(plain, sentence)
    cp_site, cp_out = _site_values(cp, sentence)
    # The auxiliary pass stops inside layer 3's o_proj pre-hook, so o_proj ran once: the patched pass.
    assert len(cp_site) == 1
    v_nor, patched = plain_site[0][0], cp_site[0][0]
    assert torch.equal(patched[:-1], v_nor[:-1])
    assert torch.equal(cp_out[-1][0, :-1], plain_out[-1][0, :-1])  # earlier positions, a later layer
    assert not torch.allclose(cp_out[-1][0, -1], plain_out[-1][0, -1])
    v_aux = auxiliary_vectors(tiny_lm, cp.cp.aux_template, "heads", [3], [preprocess(sentence[0])])[3][0]
    delta_norm = (v_nor[-1] - v_aux).norm()
    if norm == "scale":
        torch.testing.assert_close(patched[-1].norm(), 2.0 * delta_norm)
    else:
        torch.testing.assert_close(patched[-1].norm(), v_nor[-1].norm())


@pytest.mark.parametrize("layer", [1, 2, 5])
def test_auxiliary_pass_runs_exactly_l_layers(tiny_lm, layer):
    cp = CPConfig(layer=layer, alpha=2.0)
    calls = [0] * tiny_lm.num_layers
    handles = [
        block.register_forward_pre_hook(lambda _m, _a, i=i: calls.__setitem__(i, calls[i] + 1))
        for i, block in enumerate(tiny_lm.layers)
    ]
    try:
        auxiliary_vectors(tiny_lm, cp.aux_template, cp.site, [layer], ["a short sentence."])
    finally:
        for handle in handles:
            handle.remove()
    assert calls == [1] * layer + [0] * (tiny_lm.num_layers - layer)


def test_no_layer_after_the_output_layer_runs(tiny_lm):
    encoder = CPEncoder(tiny_lm, cp=None, output_layer=2)
    calls = []
    handle = tiny_lm.layers[2].register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        encoder.encode(SENTENCES)
    finally:
        handle.remove()
    assert calls == []


def _hook_count(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


@pytest.mark.parametrize("site", ["heads", "ffn", "hidden"])
def test_hooks_are_removed_after_encode_and_after_an_error(tiny_lm, site, monkeypatch):
    before = _hook_count(tiny_lm.model)
    encoder = CPEncoder(tiny_lm, cp=CPConfig(layer=2, site=site))
    encoder.encode(SENTENCES)
    assert _hook_count(tiny_lm.model) == before

    def explode(*_args, **_kwargs):
        raise RuntimeError("boom")

    # Layer 3 runs after the patch at layer 2 is registered and before the output layer.
    monkeypatch.setattr(tiny_lm.layers[2].mlp, "forward", explode)
    with pytest.raises(RuntimeError, match="boom"):
        encoder.encode(SENTENCES)
    assert _hook_count(tiny_lm.model) == before
