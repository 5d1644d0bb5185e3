"""Encoding that survives being stopped: `encode_variants` in chunks, each kept on disk as it ends.

The report's steps each encode thousands of sentences under dozens of settings; on a CPU one
step can take hours. Each finished chunk is saved under a folder named by everything that
decides its result (the encoder's settings, the CP settings, the sentences), so a rerun of the
same step loads the finished chunks and computes only the rest, and a changed input never
reuses a stale chunk. The folder is removed once the whole step's embeddings are assembled.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .config import CPConfig
from .controls import partners
from .encoder import CPEncoder, _sentence_list
from .prompts import preprocess
from .variants import encode_variants

CHUNK_SENTENCES = 256


def encode_variants_resumable(
    encoder: CPEncoder,
    sentences: Sequence[str],
    variants: Sequence[CPConfig | None],
    root: Path,
    batch_size: int = 16,
    show_progress_bar: bool | None = None,
    chunk_sentences: int = CHUNK_SENTENCES,
) -> list[np.ndarray]:
    """What `encode_variants` returns, computed `chunk_sentences` at a time with each chunk kept
    under `root`; chunks already there from an interrupted run are loaded, not computed."""
    from tqdm.auto import tqdm

    sentences, variants = _sentence_list(sentences)[0], list(variants)
    # The shuffle control's partners come from the whole input, so chunking does not change them.
    cleaned = [preprocess(s) for s in sentences]
    partner_texts = [cleaned[i] for i in partners(cleaned)] if _uses_partners(variants) else None
    folder = root / _key(encoder, sentences, variants)
    folder.mkdir(parents=True, exist_ok=True)
    starts = range(0, len(sentences), chunk_sentences)
    parts = []
    with tqdm(total=len(sentences), unit="sent", desc="encoding", disable=show_progress_bar is False) as bar:
        for number, start in enumerate(starts):
            chunk = sentences[start : start + chunk_sentences]
            chunk_partners = partner_texts[start : start + chunk_sentences] if partner_texts else None
            path = folder / f"{number:05d}.npy"
            if path.is_file():
                part = np.load(path)
            else:
                part = np.stack(
                    encode_variants(encoder, chunk, variants, batch_size, False, shuffle_partners=chunk_partners)
                )
                partial = path.with_suffix(".tmp.npy")  # renamed when complete: a killed write is never read
                np.save(partial, part)
                partial.replace(path)
            parts.append(part)
            bar.update(len(chunk))
    shutil.rmtree(folder, ignore_errors=True)
    if not parts:  # no sentences: encode_variants' own result (and checks)
        return encode_variants(encoder, sentences, variants, batch_size, show_progress_bar=False)
    return list(np.concatenate(parts, axis=1))


def encode_settings(
    encoder: CPEncoder,
    sentences: Sequence[str],
    variants: Sequence[CPConfig | None],
    batch_size: int = 16,
    show_progress_bar: bool | None = None,
    checkpoints: Path | None = None,
) -> list[np.ndarray]:
    """`encode_variants`, resumable under `checkpoints` when a folder is given."""
    if checkpoints is None:
        return encode_variants(encoder, sentences, variants, batch_size, show_progress_bar)
    return encode_variants_resumable(encoder, sentences, variants, checkpoints, batch_size, show_progress_bar)


def _uses_partners(variants: list[CPConfig | None]) -> bool:
    return any(v is not None and v.intervention == "shuffle" for v in variants)


def _key(encoder: CPEncoder, sentences: list[str], variants: list[CPConfig | None]) -> str:
    from .embedding_cache import encoder_settings

    digest = hashlib.sha256(json.dumps(encoder_settings(encoder), sort_keys=True).encode())
    digest.update(json.dumps([repr(v) for v in variants]).encode())
    for sentence in sentences:
        digest.update(hashlib.sha1(sentence.encode()).digest())
    return digest.hexdigest()[:32]
