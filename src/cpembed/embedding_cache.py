"""An on-disk cache of embeddings, keyed by everything that determines them.

One SQLite file per encoder configuration (model weights, prompt, CP settings, output layer,
dtype, max_length, cpembed version); rows keyed by the sentence's sha1. A changed setting
gives a different file, so a stale entry is never reused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
from pathlib import Path

import numpy as np
import torch

from .encoder import CPEncoder
from .models import LanguageModel, cache_dir


def weights_fingerprint(lm: LanguageModel) -> str:
    """A cheap fingerprint of a model: its config plus a few values of every parameter."""
    cached = getattr(lm, "_fingerprint", None)
    if cached:
        return cached
    digest = hashlib.sha256(lm.model.config.to_json_string(use_diff=False).encode())
    with torch.no_grad():
        for name, parameter in lm.model.named_parameters():
            digest.update(name.encode())
            digest.update(str(tuple(parameter.shape)).encode())
            digest.update(parameter.detach().flatten()[:64].float().cpu().numpy().tobytes())
    lm._fingerprint = digest.hexdigest()
    return lm._fingerprint


def encoder_settings(encoder: CPEncoder) -> dict:
    """Everything that decides an embedding, as JSON-ready data."""
    from . import __version__

    return {
        "model": encoder.lm.name,
        "weights": weights_fingerprint(encoder.lm),
        "prompt": encoder.prompt.name,
        "templates": [t.text for t in encoder.prompt.templates],
        "cp": dataclasses.asdict(encoder.cp) if encoder.cp else None,
        "output_layer": encoder.output_layer,
        "dtype": str(encoder.lm.dtype).removeprefix("torch."),
        "max_length": encoder.max_length,
        "cpembed": __version__,
    }


class CachedEncoder:
    """`encode` through an on-disk cache; only sentences never seen with these settings are run."""

    def __init__(self, encoder: CPEncoder, root: str | Path | None = None) -> None:
        self.encoder = encoder
        self.settings = encoder_settings(encoder)
        key = hashlib.sha256(json.dumps(self.settings, sort_keys=True).encode()).hexdigest()
        folder = Path(root) if root else cache_dir() / "embeddings"
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{key[:32]}.sqlite"
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS embeddings (sentence TEXT PRIMARY KEY, vector BLOB)")
            db.execute("CREATE TABLE IF NOT EXISTS settings (json TEXT)")
            if db.execute("SELECT COUNT(*) FROM settings").fetchone()[0] == 0:
                db.execute("INSERT INTO settings VALUES (?)", (json.dumps(self.settings, sort_keys=True),))
        self.hits = self.misses = 0

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=60)

    def encode(self, sentences: list[str], batch_size: int = 32, show_progress_bar: bool | None = None) -> np.ndarray:
        keys = [hashlib.sha1(s.encode()).hexdigest() for s in sentences]
        found: dict[str, np.ndarray] = {}
        with self._connect() as db:
            unique = list(dict.fromkeys(keys))
            for start in range(0, len(unique), 900):  # SQLite's limit on bound parameters
                chunk = unique[start : start + 900]
                query = f"SELECT sentence, vector FROM embeddings WHERE sentence IN ({','.join('?' * len(chunk))})"
                for key, blob in db.execute(query, chunk):
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        missing = {key: s for key, s in zip(keys, sentences, strict=True) if key not in found}
        self.hits += len(set(keys)) - len(missing)
        self.misses += len(missing)
        if missing:
            vectors = self.encoder.encode(
                list(missing.values()), batch_size=batch_size, show_progress_bar=show_progress_bar
            )
            with self._connect() as db:
                db.executemany(
                    "INSERT OR REPLACE INTO embeddings VALUES (?, ?)",
                    ((key, vector.tobytes()) for key, vector in zip(missing, vectors, strict=True)),
                )
            found.update(zip(missing, vectors, strict=True))
        if not keys:
            return np.zeros((0, self.encoder.embedding_dimension), dtype=np.float32)
        return np.stack([found[key] for key in keys])
