"""cpembed explain: the last token's attention and gradient x input, with and without CP."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from cpembed import CPConfig, CPEncoder
from cpembed.cli import main
from cpembed.errors import InvalidValueError
from cpembed.explain import explain, explanation_png


def test_cp_changes_attention_only_after_its_layer(tiny_lm, tmp_path):
    before = tiny_lm.model.config._attn_implementation
    encoder = CPEncoder(tiny_lm, "prompteol", cp=CPConfig(layer=3, alpha=2.0))
    found = explain(encoder, "The cat sat on the mat.")
    assert tiny_lm.model.config._attn_implementation == before  # restored
    assert found.layers == list(range(3, encoder.output_layer + 1))
    for run in ("plain", "CP"):
        assert found.attention[run].shape == (len(found.layers), len(found.tokens))
        np.testing.assert_allclose(found.attention[run].sum(1), 1, atol=1e-5)  # a softmax per head, averaged
        assert found.saliency[run].sum() == pytest.approx(1, abs=1e-5)
    # Layer 3's weights are computed before its o_proj input is patched; the later layers read the patch.
    np.testing.assert_allclose(found.attention["CP"][0], found.attention["plain"][0], atol=1e-6)
    assert not np.allclose(found.attention["CP"][1:], found.attention["plain"][1:], atol=1e-4)
    assert 0 < found.sentence_tokens.sum() < len(found.tokens)
    assert "".join(t for t, inside in zip(found.tokens, found.sentence_tokens, strict=True) if inside).count("cat")
    shares = found.stop_word_share()
    assert all(0 <= v <= 1 for run in shares.values() for v in run.values())
    assert explanation_png(found, tmp_path / "e.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(InvalidValueError, match="with and without CP"):
        explain(CPEncoder(tiny_lm, cp=None), "x")


def test_the_command_writes_a_png_and_the_stop_word_shares(tiny_model_dir, tmp_path):
    out = tmp_path / "explain.png"
    args = ["explain", "A man plays the guitar.", "--model", tiny_model_dir, "--layer", "2", "--output", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:4] == b"\x89PNG" and "stop words hold" in result.output
    refused = CliRunner().invoke(main, ["explain", "x", "--model", tiny_model_dir, "--no-cp"])
    assert refused.exit_code == 2 and "leave out --no-cp" in refused.output
