"""The compiled path: equal to the two-pass reference, off where it cannot compile, on when a job is long."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import cpembed.compiled
from conftest import CONFIGS, SENTENCES, assert_same_embeddings, make_lm
from cpembed import CPConfig, CPEncoder
from cpembed.cli import main
from cpembed.compiled import (
    COMPILE_AFTER,
    compile_model,
    compile_when_worth_it,
    hook_free_modules,
    keep_eager,
    should_compile,
)
from cpembed.errors import InvalidValueError
from reference import encoder_reference

# Every site on one architecture, the paper's site on every other (each compiles its own graphs).
CASES = [("llama", site) for site in ("heads", "ffn", "hidden")] + [(a, "heads") for a in CONFIGS if a != "llama"]


@pytest.mark.parametrize("arch, site", CASES)
def test_compiled_cp_equals_two_pass_reference(arch, site):
    # A model of its own: compiling changes it in place, and the reference runs on an eager twin.
    compiled, eager = make_lm(arch), make_lm(arch)
    cp = CPConfig(layer=3, alpha=2.5, site=site)
    encoder = CPEncoder(compiled, prompt="prompteol", cp=cp, compile=True)
    fast = encoder.encode(SENTENCES, batch_size=4, convert_to_tensor=True)
    if not compiled.compiled:
        pytest.skip("torch.compile is unavailable on this machine (no C++ compiler)")
    assert all(getattr(m.forward, "_torchdynamo_orig_callable", None) for m in hook_free_modules(compiled))
    reference = encoder_reference(CPEncoder(eager, prompt="prompteol", cp=cp), SENTENCES, cp)
    assert_same_embeddings(fast, reference)
    plain = CPEncoder(compiled, prompt="prompteol", cp=None).encode(SENTENCES, convert_to_tensor=True)
    assert (plain - reference).abs().max() > 1e-2  # CP still acts through the compiled parts


def test_a_machine_that_cannot_compile_runs_eagerly(monkeypatch, caplog):
    def no_compiler(function, **options):
        def fails(*args):
            raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found\nmore detail")

        return fails

    monkeypatch.setattr(torch, "compile", no_compiler)
    lm = make_lm("llama")
    forwards = [m.forward for m in hook_free_modules(lm)]
    with caplog.at_level(logging.WARNING):
        assert compile_model(lm) is False
    assert "runs eagerly (InvalidCxxCompiler: No working C++ compiler found)" in caplog.text
    assert [m.forward for m in hook_free_modules(lm)] == forwards
    rows = CPEncoder(lm, prompt="prompteol", cp=None, compile=True).encode(SENTENCES)
    assert rows.shape == (len(SENTENCES), lm.hidden_size)


def test_the_hook_free_modules_are_the_feed_forward_blocks_and_norms():
    lm = make_lm("llama")
    kinds = [type(m).__name__ for m in hook_free_modules(lm)]
    assert kinds.count("LlamaMLP") == lm.num_layers
    assert kinds.count("LlamaRMSNorm") == 2 * lm.num_layers + 1  # two per layer and the final norm
    assert not any(m is layer.self_attn.o_proj for m in hook_free_modules(lm) for layer in lm.layers)


def _model(device="cpu", dtype=torch.bfloat16):
    return SimpleNamespace(device=torch.device(device), dtype=dtype, compiled=None, sentences_asked=0)


def test_auto_compiles_only_a_long_bfloat16_job_on_a_cpu():
    assert should_compile(_model(), "auto", long_job=True)
    assert not should_compile(_model(), "auto", long_job=False)
    assert not should_compile(_model(dtype=torch.float32), "auto", long_job=True)
    assert not should_compile(_model("cuda"), "auto", long_job=True)
    assert should_compile(_model(dtype=torch.float32), True, long_job=False)
    assert not should_compile(_model(), False, long_job=True)
    done = _model()
    done.compiled = False  # tried already, and this machine could not
    assert not should_compile(done, True, long_job=True)
    assert not should_compile(keep_eager(_model()), True, long_job=True)  # the report's runs


def test_auto_compiles_once_the_model_has_been_asked_for_enough_sentences(monkeypatch):
    compiled = []
    monkeypatch.setattr(cpembed.compiled, "compile_model", lambda lm: compiled.append(lm))
    lm = _model()
    compile_when_worth_it(lm, "auto", COMPILE_AFTER // 2)
    assert compiled == []
    compile_when_worth_it(lm, "auto", COMPILE_AFTER // 2)
    assert compiled == [lm]


def test_a_bad_compile_value_is_refused_before_loading():
    with pytest.raises(InvalidValueError, match="compile must be True, False or 'auto', got 'yes'"):
        CPEncoder("no-such-model-anywhere", compile="yes")


def test_encode_compile_flag_gives_the_eager_rows(tiny_model_dir, tmp_path):
    source, target = tmp_path / "in.txt", tmp_path / "out.npy"
    source.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    flags = ["--model", tiny_model_dir, "--layer", "3", "--alpha", "2"]
    result = CliRunner().invoke(main, ["encode", str(source), "-o", str(target), "--compile", *flags])
    assert result.exit_code == 0, result.output
    eager = CPEncoder(tiny_model_dir, cp=CPConfig(layer=3, alpha=2.0), compile=False).encode(SENTENCES)
    np.testing.assert_allclose(np.load(target), eager, atol=1e-5)


def test_serve_compiles_before_the_first_request_where_auto_pays(monkeypatch):
    from cpembed.cli.serve import compile_before_serving

    calls = []
    monkeypatch.setattr(cpembed.compiled, "compile_model", lambda lm: calls.append("compile") or True)
    for dtype, expected in ((torch.bfloat16, ["compile", 2, 1]), (torch.float32, [])):
        calls.clear()
        encoder = SimpleNamespace(lm=_model(dtype=dtype), compile="auto", encode=lambda s: calls.append(len(s)))
        compile_before_serving(encoder)
        assert calls == expected  # compiled, then the graphs for several rows and for one built
