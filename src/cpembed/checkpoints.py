"""Encoding that survives being stopped: `encode_variants` in chunks, each kept on disk as it ends.

The report's steps each encode thousands of sentences under dozens of settings; on a CPU one
step can take hours. Each finished chunk is saved under `root`, in a folder named by everything
that decides its result (the encoder's settings, the CP settings, the sentences, the chunk
size), so a rerun of the same step loads the finished chunks and computes only the rest, and a
changed input never reuses a stale chunk. The caller removes `root` once it has kept what it
computed from the embeddings (the report does so after writing the step's JSON).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .config import CPConfig
from .controls import partner_texts as shuffle_partner_texts
from .encoder import CPEncoder, _sentence_list
from .prompts import preprocess
from .variants import _source, encode_variants

CHUNK_SENTENCES = 256
SECONDS_FILE = "seconds.json"  # compute time of the chunks kept under a root, for honest wall times


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
    under `root`; chunks already there from an interrupted run are loaded, not computed.

    `show_progress_bar=None` shows a bar when stderr is a terminal.
    """
    from tqdm.auto import tqdm

    sentences, variants = _sentence_list(sentences)[0], list(variants)
    # The shuffle control's partners come from the whole input, so chunking does not change them.
    cleaned = [preprocess(s) for s in sentences]
    uses_partners = any(_source(v) == "partner" for v in variants)
    partner_texts = shuffle_partner_texts(cleaned) if uses_partners else None
    folder = Path(root) / _key(encoder, sentences, variants, chunk_sentences)
    folder.mkdir(parents=True, exist_ok=True)
    if show_progress_bar is None:
        show_progress_bar = sys.stderr.isatty()
    parts = []
    with tqdm(total=len(sentences), unit="sent", desc="encoding", disable=not show_progress_bar) as bar:
        for number, start in enumerate(range(0, len(sentences), chunk_sentences)):
            chunk = sentences[start : start + chunk_sentences]
            path = folder / f"{number:05d}.npy"
            part = _load(path, (len(variants), len(chunk), encoder.embedding_dimension))
            if part is None:
                started = time.perf_counter()
                chunk_partners = partner_texts[start : start + chunk_sentences] if partner_texts else None
                part = np.stack(
                    encode_variants(encoder, chunk, variants, batch_size, False, shuffle_partners=chunk_partners)
                )
                _save(path, part)
                _add_seconds(Path(root), time.perf_counter() - started)
            parts.append(part)
            bar.update(len(chunk))
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
    return encode_variants_resumable(
        encoder, sentences, variants, checkpoints, batch_size, show_progress_bar, chunk_sentences=CHUNK_SENTENCES
    )


def kept_seconds(root: Path) -> float:
    """Compute time of the chunks kept under `root` so far: the work an earlier, stopped run did."""
    path = Path(root) / SECONDS_FILE
    try:
        return float(json.loads(path.read_text()))
    except (OSError, ValueError):
        return 0.0


def _add_seconds(root: Path, seconds: float) -> None:
    write_atomically(root / SECONDS_FILE, lambda f: f.write(json.dumps(kept_seconds(root) + seconds).encode()))


def _load(path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    """A kept chunk, or None when there is none or it is not what this run needs (then it is redone)."""
    if not path.is_file():
        return None
    try:
        part = np.load(path)
    except (OSError, ValueError, EOFError):  # a file a crash left empty or cut short
        return None
    return part if part.shape == shape else None


def _save(path: Path, part: np.ndarray) -> None:
    write_atomically(path, lambda f: np.save(f, part))


def write_atomically(path: Path, write) -> None:
    """`write(stream)` into `path`, which readers see either as before or complete."""
    # A unique temporary name, renamed when complete: a killed write is never read, and two runs
    # of the same step never write into one file.
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(partial, "wb") as stream:
            write(stream)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)  # gone once renamed; a failed write leaves nothing behind


def _key(encoder: CPEncoder, sentences: list[str], variants: list[CPConfig | None], chunk_sentences: int) -> str:
    from .embedding_cache import encoder_settings

    digest = hashlib.sha256(json.dumps(encoder_settings(encoder), sort_keys=True).encode())
    digest.update(json.dumps([repr(v) for v in variants] + [chunk_sentences]).encode())
    for sentence in sentences:
        digest.update(hashlib.sha1(sentence.encode()).digest())
    return digest.hexdigest()[:32]
