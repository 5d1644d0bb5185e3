"""One on-disk embedding cache, keyed by `EncoderSettings.digest()` and the sentence.

It is also what makes long runs resumable: `CPEncoder.encode_settings(..., cache=)` computes only
what the cache lacks, a chunk at a time, and stores each chunk as soon as it is done, so a stopped
run loses at most one chunk. One SQLite file (`CPEMBED_CACHE`, default `~/.cache/cpembed`, then `embeddings.sqlite`);
a changed setting has another digest, so a stale row is never read.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .models import cache_dir
from .steering import OWN

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


def row_keys(sentences: list[str], steering, aux_sentences) -> list[str]:
    """Each sentence's key: its text, and the text of its auxiliary prompt where that is another's."""
    texts = sentences
    if steering is not None and steering.aux_template is not None and steering.aux_source != OWN:
        texts = [f"{s}\0{other}" for s, other in zip(sentences, aux_sentences[steering.aux_source], strict=True)]
    return [hashlib.sha1(text.encode()).hexdigest() for text in texts]
