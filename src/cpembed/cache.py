"""One on-disk embedding cache, keyed by `EncoderSettings.digest()` and the sentence.

It is also what makes long runs resumable: `encode_cached` computes only what the cache lacks,
a chunk at a time, and stores each chunk as soon as it is done, so a stopped run loses at most
one chunk. One SQLite file (`CPEMBED_CACHE`, default `~/.cache/cpembed`, then `embeddings.sqlite`);
a changed setting has another digest, so a stale row is never read.
"""

from __future__ import annotations

import hashlib
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .encoder import CPEncoder, progress_bar, sentence_list
from .engine import OWN
from .models import cache_dir
from .prompts import one_cut_warning

CHUNK_SENTENCES = 256  # what a stop can lose; large enough that batches stay full


class EmbeddingCache:
    """Float32 vectors by (settings digest, row key)."""

    def __init__(self, root: str | Path | None = None) -> None:
        folder = Path(root) if root else cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "embeddings.sqlite"
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS vectors (digest TEXT, row TEXT, vector BLOB, PRIMARY KEY (digest, row))"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=60)

    def get(self, digest: str, rows: Sequence[str]) -> dict[str, np.ndarray]:
        """The vectors kept for those of `rows` that have one."""
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(rows))
        with self._connect() as db:
            for start in range(0, len(unique), 900):  # SQLite's limit on bound parameters
                part = unique[start : start + 900]
                query = f"SELECT row, vector FROM vectors WHERE digest = ? AND row IN ({','.join('?' * len(part))})"
                for row, blob in db.execute(query, [digest, *part]):
                    found[row] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put(self, digest: str, rows: Sequence[str], vectors: np.ndarray) -> None:
        with self._connect() as db:
            db.executemany(
                "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                (
                    (digest, row, np.ascontiguousarray(v, dtype=np.float32).tobytes())
                    for row, v in zip(rows, vectors, strict=True)
                ),
            )


def encode_cached(
    encoder: CPEncoder,
    sentences: Sequence[str],
    settings: Sequence,
    cache: EmbeddingCache | None,
    batch_size: int = 32,
    show_progress_bar: bool | None = None,
    aux_sentences: dict[str, Sequence[str]] | None = None,
) -> list[np.ndarray]:
    """`encoder.encode_settings`, through `cache`: kept rows are read, the rest computed a chunk at
    a time for every setting that lacks it, and stored chunk by chunk. `cache=None` computes all."""
    sentences, settings = sentence_list(sentences)[0], list(settings)
    if cache is None:
        return encoder.encode_settings(sentences, settings, batch_size, show_progress_bar, aux_sentences)
    steerings = [encoder.steering(s) for s in settings]
    digests = [encoder.settings(s).digest() for s in steerings]
    keys = [_row_keys(sentences, s, aux_sentences) for s in steerings]
    found = [cache.get(d, k) for d, k in zip(digests, keys, strict=True)]
    missing = list(  # each row some setting lacks, once (a repeated sentence is computed once)
        {
            tuple(k[i] for k in keys): i
            for i in range(len(sentences))
            if any(k[i] not in f for f, k in zip(found, keys, strict=True))
        }.values()
    )
    lacking = [j for j in range(len(settings)) if any(keys[j][i] not in found[j] for i in missing)]
    if show_progress_bar is None:
        show_progress_bar = sys.stderr.isatty()
    with progress_bar(len(missing), show_progress_bar) as bar, one_cut_warning():
        for start in range(0, len(missing), CHUNK_SENTENCES):
            rows = missing[start : start + CHUNK_SENTENCES]
            aux = {name: [texts[i] for i in rows] for name, texts in (aux_sentences or {}).items()}
            chunk = [sentences[i] for i in rows]
            vectors = encoder.encode_settings(
                chunk, [settings[j] for j in lacking], batch_size, aux_sentences=aux, bar=bar
            )
            for j, v in zip(lacking, vectors, strict=True):
                chunk_keys = [keys[j][i] for i in rows]
                cache.put(digests[j], chunk_keys, v)
                found[j].update(zip(chunk_keys, v, strict=True))
    width = encoder.embedding_dimension
    return [
        np.stack([f[key] for key in k]) if k else np.zeros((0, width), np.float32)
        for f, k in zip(found, keys, strict=True)
    ]


def _row_keys(sentences: list[str], steering, aux_sentences) -> list[str]:
    """Each sentence's key: its text, and the text of its auxiliary prompt where that is another's."""
    texts = sentences
    if steering is not None and steering.aux_template is not None and steering.aux_source != OWN:
        texts = [f"{s}\0{other}" for s, other in zip(sentences, aux_sentences[steering.aux_source], strict=True)]
    return [hashlib.sha1(text.encode()).hexdigest() for text in texts]
