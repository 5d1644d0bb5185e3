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
    # 6 sentences in chunks of 4: a short last chunk, and shuffle partners across the boundary
    chunked = checkpoints.encode_variants_resumable(encoder, SENTENCES, SETTINGS, tmp_path, 4, chunk_sentences=4)
    for setting, expected, got in zip(SETTINGS, whole, chunked, strict=True):
        # shuffle too: its partners come from the whole input, not from each chunk
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5, err_msg=repr(setting))
    (kept,) = [p for p in tmp_path.iterdir() if p.is_dir()]  # kept for the caller to remove
    assert sorted(p.name for p in kept.iterdir()) == ["00000.npy", "00001.npy"]
    assert checkpoints.kept_seconds(tmp_path) > 0


def stop_on_call(monkeypatch, number: int) -> list[list[str]]:
    """Make the `number`-th chunk's encoding raise Stop (as if the run were killed); the chunks seen."""
    real, calls = encode_variants, []  # the module's own, never an earlier spy

    def spy(encoder_, chunk, *args, **kwargs):
        calls.append(list(chunk))
        if len(calls) == number:
            raise Stop
        return real(encoder_, chunk, *args, **kwargs)

    monkeypatch.setattr(checkpoints, "encode_variants", spy)
    return calls


def test_a_stopped_run_resumes_from_its_finished_chunks(tiny_lm, tmp_path, monkeypatch):
    encoder = CPEncoder(tiny_lm)
    calls = stop_on_call(monkeypatch, 2)
    with pytest.raises(Stop):
        checkpoints.encode_variants_resumable(encoder, SENTENCES, SETTINGS, tmp_path, 4, chunk_sentences=2)
    (kept,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert [p.name for p in kept.iterdir()] == ["00000.npy"]
    spent = checkpoints.kept_seconds(tmp_path)

    calls = stop_on_call(monkeypatch, 0)  # a spy only: nothing stops the second run
    resumed = checkpoints.encode_variants_resumable(encoder, SENTENCES, SETTINGS, tmp_path, 4, chunk_sentences=2)
    assert calls == [SENTENCES[2:4], SENTENCES[4:6]]  # the first chunk is read, not computed
    assert checkpoints.kept_seconds(tmp_path) > spent
    whole = encode_variants(encoder, SENTENCES, SETTINGS, batch_size=4)
    for expected, got in zip(whole, resumed, strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)


def test_a_damaged_chunk_is_computed_again(tiny_lm, tmp_path, monkeypatch):
    encoder = CPEncoder(tiny_lm)
    checkpoints.encode_variants_resumable(encoder, SENTENCES, SETTINGS, tmp_path, 4, chunk_sentences=2)
    (kept,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    (kept / "00000.npy").write_bytes(b"")  # what a crash between write and disk can leave
    np.save(kept / "00001.npy", np.zeros((1, 2, 3), dtype=np.float32))  # not this run's shape
    calls = stop_on_call(monkeypatch, 0)
    again = checkpoints.encode_variants_resumable(encoder, SENTENCES, SETTINGS, tmp_path, 4, chunk_sentences=2)
    assert calls == [SENTENCES[0:2], SENTENCES[2:4]]
    np.testing.assert_allclose(again[1], encode_variants(encoder, SENTENCES, SETTINGS)[1], atol=1e-5, rtol=1e-5)


def test_changed_settings_sentences_or_chunks_never_reuse_a_chunk(tiny_lm, tmp_path, monkeypatch):
    encoder = CPEncoder(tiny_lm)
    stop_on_call(monkeypatch, 2)
    with pytest.raises(Stop):
        checkpoints.encode_variants_resumable(encoder, SENTENCES, SETTINGS, tmp_path, 4, chunk_sentences=2)

    other = [None, CPConfig(layer=2, alpha=3.0)]
    changed = ["A different first sentence.", *SENTENCES[1:]]
    for sentences, settings, size in ((SENTENCES, other, 2), (changed, SETTINGS, 2), (SENTENCES, SETTINGS, 3)):
        calls = stop_on_call(monkeypatch, 0)
        got = checkpoints.encode_variants_resumable(encoder, sentences, settings, tmp_path, 4, chunk_sentences=size)
        assert calls[0] == sentences[:size]  # computed, not read from the stopped run's chunk
        expected = encode_variants(encoder, sentences, settings, batch_size=4)[1]
        np.testing.assert_allclose(got[1], expected, atol=1e-5, rtol=1e-5)


def test_shuffle_partners_must_match_the_sentences(tiny_lm):
    with pytest.raises(ValueError, match="shuffle_partners has 1 texts for 2 sentences"):
        encode_variants(CPEncoder(tiny_lm), SENTENCES[:2], SETTINGS[3:4], shuffle_partners=["x"])


def test_bad_input_is_refused_before_any_work(tiny_lm, tmp_path):
    with pytest.raises(TypeError):
        checkpoints.encode_variants_resumable(CPEncoder(tiny_lm), [1, 2], SETTINGS, tmp_path)
    assert checkpoints.encode_variants_resumable(CPEncoder(tiny_lm), [], SETTINGS, tmp_path)[0].shape[0] == 0


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing_behind(tmp_path):
    path = tmp_path / "grid.png"
    path.write_bytes(b"the old picture")

    def half_then_fail(stream):
        stream.write(b"half a pict")
        raise Stop

    with pytest.raises(Stop):
        checkpoints.write_atomically(path, half_then_fail)
    assert path.read_bytes() == b"the old picture" and [p.name for p in tmp_path.iterdir()] == ["grid.png"]
    checkpoints.write_atomically(path, lambda stream: stream.write(b"the new one"))
    assert path.read_bytes() == b"the new one" and [p.name for p in tmp_path.iterdir()] == ["grid.png"]
