"""The one embedding cache: keyed by everything that decides an embedding, and what makes long runs resume."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SENTENCES
from cpembed import CPConfig, CPEncoder
from cpembed import cache as caching
from cpembed.cache import EmbeddingCache
from cpembed.io import atomic_write

SETTINGS = [None, CPConfig(layer=3, alpha=2.0), CPConfig(layer=2, norm="recover")]


class Stop(Exception):
    """A run killed mid-way."""


def spy(monkeypatch, stop_on: int | None = None) -> list[list[str]]:
    """Record the sentences of every chunk the encoder computes; raise Stop on call `stop_on`."""
    calls: list[list[str]] = []
    real = CPEncoder.encode_settings

    def encode_settings(self, sentences, *args, **kwargs):
        if kwargs.get("cache") is not None:  # reads the cache, then computes what it lacks below
            return real(self, sentences, *args, **kwargs)
        calls.append(list(sentences))
        if len(calls) == stop_on:
            raise Stop
        return real(self, sentences, *args, **kwargs)

    monkeypatch.setattr(CPEncoder, "encode_settings", encode_settings)
    return calls


def test_cached_rows_equal_computed_ones_and_are_read_back(tiny_lm, tmp_path, monkeypatch):
    encoder = CPEncoder(tiny_lm, cp=None)
    expected = encoder.encode_settings(SENTENCES, SETTINGS, batch_size=4)
    cache = EmbeddingCache(tmp_path)
    first = encoder.encode_settings(SENTENCES + SENTENCES[:1], SETTINGS, batch_size=4, cache=cache)
    for got, want in zip(first, expected, strict=True):
        np.testing.assert_allclose(got[: len(SENTENCES)], want, atol=1e-5, rtol=1e-5)
        np.testing.assert_array_equal(got[-1], got[0])  # a repeated sentence, computed once
    calls = spy(monkeypatch)
    again = encoder.encode_settings(SENTENCES[::-1], SETTINGS, batch_size=4, cache=cache)
    assert calls == []  # every row read
    for got, want in zip(again, first, strict=True):
        np.testing.assert_array_equal(got, want[: len(SENTENCES)][::-1])


def test_a_stopped_run_resumes_from_its_stored_chunks(tiny_lm, tmp_path, monkeypatch):
    encoder = CPEncoder(tiny_lm, cp=None)
    monkeypatch.setattr(caching, "CHUNK_SENTENCES", 2)
    cache = EmbeddingCache(tmp_path)
    spy(monkeypatch, stop_on=2)
    with pytest.raises(Stop):
        encoder.encode_settings(SENTENCES, SETTINGS, batch_size=4, cache=cache)
    monkeypatch.undo()
    monkeypatch.setattr(caching, "CHUNK_SENTENCES", 2)
    calls = spy(monkeypatch)
    resumed = encoder.encode_settings(SENTENCES, SETTINGS, batch_size=4, cache=cache)
    assert calls == [SENTENCES[2:4], SENTENCES[4:6]]  # the first chunk is read, not computed
    for got, want in zip(resumed, encoder.encode_settings(SENTENCES, SETTINGS), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


def test_only_the_settings_that_lack_a_row_compute_it(tiny_lm, tmp_path, monkeypatch):
    encoder = CPEncoder(tiny_lm, cp=None)
    cache = EmbeddingCache(tmp_path)
    encoder.encode_settings(SENTENCES, SETTINGS[:2], cache=cache)
    computed = []
    real = CPEncoder.encode_settings

    def encode_settings(self, sentences, settings, *args, **kwargs):
        if kwargs.get("cache") is None:  # a computing call, not the one that reads the cache
            computed.append([getattr(s, "key", s) for s in settings])
        return real(self, sentences, settings, *args, **kwargs)

    monkeypatch.setattr(CPEncoder, "encode_settings", encode_settings)
    encoder.encode_settings(SENTENCES, SETTINGS, cache=cache)
    assert computed == [[repr(SETTINGS[2])]]


def test_every_setting_that_decides_an_embedding_changes_the_key(tiny_lm):
    base = CPEncoder(tiny_lm, cp=CPConfig(layer=3, alpha=2.0)).settings()
    others = [
        CPEncoder(tiny_lm, cp=CPConfig(layer=3, alpha=3.0)),
        CPEncoder(tiny_lm, cp=CPConfig(layer=3, alpha=2.0, norm="recover")),
        CPEncoder(tiny_lm, cp=CPConfig(layer=3, alpha=2.0, aux_template="The gist of {sentence}")),
        CPEncoder(tiny_lm, cp=None),
        CPEncoder(tiny_lm, cp=CPConfig(layer=3, alpha=2.0), max_length=64),
        CPEncoder(tiny_lm, cp=CPConfig(layer=3, alpha=2.0), output_layer=4),
        CPEncoder(tiny_lm, prompt="cot", cp=CPConfig(layer=3, alpha=2.0), output_layer=-1),
    ]
    digests = {base.digest(), *(o.settings().digest() for o in others)}
    assert len(digests) == 1 + len(others)
    assert CPEncoder(tiny_lm, cp=CPConfig(layer=3, alpha=2.0)).settings().digest() == base.digest()


def test_other_weights_never_share_a_row(tiny_models):
    settings = [CPEncoder(lm, cp=None).settings() for lm in (tiny_models["llama"], tiny_models["qwen2"])]
    assert settings[0].weights != settings[1].weights and settings[0].digest() != settings[1].digest()


def test_nothing_to_encode(tiny_lm, tmp_path):
    encoder = CPEncoder(tiny_lm, cp=None)
    assert encoder.encode_settings([], SETTINGS, cache=EmbeddingCache(tmp_path))[0].shape == (0, 32)
    with pytest.raises(TypeError):
        encoder.encode_settings([1, 2], SETTINGS, cache=EmbeddingCache(tmp_path))


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing_behind(tmp_path):
    path = tmp_path / "grid.png"
    path.write_bytes(b"the old picture")

    def half_then_fail(stream):
        stream.write(b"half a pict")
        raise Stop

    with pytest.raises(Stop):
        atomic_write(path, half_then_fail)
    assert path.read_bytes() == b"the old picture" and [p.name for p in tmp_path.iterdir()] == ["grid.png"]
    atomic_write(path, lambda stream: stream.write(b"the new one"))
    assert path.read_bytes() == b"the new one" and [p.name for p in tmp_path.iterdir()] == ["grid.png"]


def test_a_cached_run_warns_once_about_cut_sentences(tiny_lm, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(caching, "CHUNK_SENTENCES", 2)  # three chunks, each with sentences to cut
    encoder = CPEncoder(tiny_lm, cp=CPConfig(layer=3), max_length=48)
    with caplog.at_level("WARNING", logger="cpembed"):
        encoder.encode_settings([f"{i} " + "word " * 200 for i in range(6)], [None], cache=EmbeddingCache(tmp_path))
    cuts = [r.getMessage() for r in caplog.records if "to fit max_length" in r.getMessage()]
    assert cuts == ["cut 6 sentence(s) to fit max_length=48 tokens (the template is kept whole)"]
