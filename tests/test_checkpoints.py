"""Chunked encoding kept on disk: equal to one pass, resumed after a stop, never stale."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SENTENCES
from cpembed import CPConfig, CPEncoder, checkpoints
from cpembed.variants import encode_variants

SETTINGS = [
    None,
    CPConfig(layer=2, alpha=2.0),
    CPConfig(layer=3, norm="recover"),
    CPConfig(layer=2, alpha=2.0, intervention="shuffle"),
    CPConfig(layer=2, alpha=2.0, intervention="mean"),
]


class Stop(Exception):
    pass


def test_chunks_equal_one_pass_including_shuffle_partners(tiny_lm, tmp_path):
    encoder = CPEncoder(tiny_lm)
    whole = encode_variants(encoder, SENTENCES, SETTINGS, batch_size=4)
    chunked = checkpoints.encode_variants_resumable(encoder, SENTENCES, SETTINGS, tmp_path, 4, chunk_sentences=3)
    for setting, expected, got in zip(SETTINGS, whole, chunked, strict=True):
        # shuffle too: its partners come from the whole input, not from each chunk
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5, err_msg=repr(setting))
    assert list(tmp_path.iterdir()) == []  # the finished step leaves nothing behind


def test_a_stopped_run_resumes_from_its_finished_chunks(tiny_lm, tmp_path, monkeypatch):
    encoder = CPEncoder(tiny_lm)
    real = checkpoints.encode_variants
    calls = []

    def stops_on_third_chunk(encoder_, chunk, *args, **kwargs):
        calls.append(list(chunk))
        if len(calls) == 3:
            raise Stop
        return real(encoder_, chunk, *args, **kwargs)

    monkeypatch.setattr(checkpoints, "encode_variants", stops_on_third_chunk)
    with pytest.raises(Stop):
        checkpoints.encode_variants_resumable(encoder, SENTENCES, SETTINGS, tmp_path, 4, chunk_sentences=2)
    (kept,) = tmp_path.iterdir()
    assert sorted(p.name for p in kept.iterdir()) == ["00000.npy", "00001.npy"]

    calls.clear()
    resumed = checkpoints.encode_variants_resumable(encoder, SENTENCES, SETTINGS, tmp_path, 4, chunk_sentences=2)
    assert calls[0] == SENTENCES[4:6] and len(calls) == len(range(4, len(SENTENCES), 2))  # the first two are read
    whole = real(encoder, SENTENCES, SETTINGS, batch_size=4)
    for expected, got in zip(whole, resumed, strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)


def test_changed_settings_or_sentences_never_reuse_a_chunk(tiny_lm, tmp_path, monkeypatch):
    encoder = CPEncoder(tiny_lm)
    real = checkpoints.encode_variants
    calls = []

    def stops_on_second_chunk(encoder_, chunk, *args, **kwargs):
        calls.append(chunk)
        if len(calls) == 2:
            raise Stop
        return real(encoder_, chunk, *args, **kwargs)

    monkeypatch.setattr(checkpoints, "encode_variants", stops_on_second_chunk)
    with pytest.raises(Stop):
        checkpoints.encode_variants_resumable(encoder, SENTENCES, SETTINGS, tmp_path, 4, chunk_sentences=2)
    monkeypatch.setattr(checkpoints, "encode_variants", real)

    other = [None, CPConfig(layer=2, alpha=3.0)]
    got = checkpoints.encode_variants_resumable(encoder, SENTENCES, other, tmp_path, 4, chunk_sentences=2)
    np.testing.assert_allclose(got[1], real(encoder, SENTENCES, other, batch_size=4)[1], atol=1e-5, rtol=1e-5)
    changed = ["A different first sentence.", *SENTENCES[1:]]
    got = checkpoints.encode_variants_resumable(encoder, changed, SETTINGS, tmp_path, 4, chunk_sentences=2)
    np.testing.assert_allclose(got[1], real(encoder, changed, SETTINGS, batch_size=4)[1], atol=1e-5, rtol=1e-5)
    assert len(list(tmp_path.iterdir())) == 1  # only the stopped run's chunks are still waiting


def test_shuffle_partners_must_match_the_sentences(tiny_lm):
    with pytest.raises(ValueError, match="shuffle_partners has 1 texts for 2 sentences"):
        encode_variants(CPEncoder(tiny_lm), SENTENCES[:2], SETTINGS[3:4], shuffle_partners=["x"])


def test_bad_input_is_refused_before_any_work(tiny_lm, tmp_path):
    with pytest.raises(TypeError):
        checkpoints.encode_variants_resumable(CPEncoder(tiny_lm), [1, 2], SETTINGS, tmp_path)
    assert checkpoints.encode_variants_resumable(CPEncoder(tiny_lm), [], SETTINGS, tmp_path)[0].shape[0] == 0
