"""Post-processing fitted on unlabelled sentences: centering and whitening.

A prompt's last-token states share one large common direction, so any two sentences score a high
cosine. Centering subtracts the mean embedding of a corpus; whitening (Su et al., 2021, "Whitening
Sentence Representations for Better Semantics and Faster Retrieval", arXiv 2103.15316) also maps
the covariance to the identity, `(x - mean) @ U diag(1/sqrt(s))`, with the components sorted by
variance, so that keeping the first k is a real reduced dimension.

A fit belongs to the embedding it was fitted on: it records that encoder's settings digest (the
same identity the embedding cache keys on: model weights, prompt, CP, TP, output layer, dtype) and
refuses to be applied to another.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np

from .errors import InputNotFoundError, InvalidValueError
from .validation import integer

Kind = Literal["center", "whiten"]
KINDS: tuple[Kind, ...] = ("center", "whiten")
FORMAT = 1  # the file layout's version

# What a model without a recipe is centered on: 120 short everyday sentences on many topics, written
# for cpembed (no evaluation data), enough to find the direction every embedding shares.
BUILT_IN_SENTENCES: list[str] = (
    resources.files("cpembed").joinpath("data", "sentences.txt").read_text(encoding="utf-8").splitlines()
)


@dataclass(frozen=True, eq=False)
class PostProcess:
    """A fitted post-processing: `(x - mean)`, then `@ transform` for whitening.

    Args:
        kind: "center" or "whiten".
        mean: `(d,)` float64 mean of the fitted embeddings.
        transform: `(d, k)` whitening matrix (components by decreasing variance); None to center.
        settings: the digest of the encoder settings the fit was made with (`CPEncoder.settings()`).
        source: what it was fitted on, for people (a file name, "tuning mix", ...).
        sentences: how many sentences it was fitted on.
    """

    kind: Kind
    mean: np.ndarray
    transform: np.ndarray | None
    settings: str
    source: str = ""
    sentences: int = 0

    @property
    def input_dimension(self) -> int:
        return int(self.mean.shape[0])

    @property
    def dimensions(self) -> int:
        """The width of the embeddings it gives."""
        return self.input_dimension if self.transform is None else int(self.transform.shape[1])

    def apply(self, embeddings: np.ndarray) -> np.ndarray:
        """Float32 post-processed rows (computed in float64)."""
        if embeddings.shape[-1] != self.input_dimension:
            raise InvalidValueError(
                f"this {self.kind} fit takes embeddings of width {self.input_dimension}, got {embeddings.shape[-1]}"
            )
        x = embeddings.astype(np.float64) - self.mean
        if self.transform is not None:
            x = x @ self.transform
        return x.astype(np.float32)

    def fingerprint(self) -> str:
        """A short digest of the fitted arrays: equal arrays, equal fingerprint."""
        digest = hashlib.sha256(self.mean.tobytes())
        if self.transform is not None:
            digest.update(np.ascontiguousarray(self.transform).tobytes())
        return digest.hexdigest()[:16]

    def describe(self) -> dict:
        """What a report records of the fit: kind, width, what it was fitted on, and a digest of its arrays."""
        return {
            "kind": self.kind,
            "dimensions": self.dimensions,
            "source": self.source,
            "sentences": self.sentences,
            "arrays": self.fingerprint(),
        }

    def check(self, settings: str, describe: str = "this encoder") -> None:
        """Refuse a fit made for another embedding: its numbers mean nothing there."""
        if settings != self.settings:
            raise InvalidValueError(
                f"this {self.kind} fit was made for other encoder settings (digest {self.settings}) than "
                f"{describe} ({settings}): another model, prompt, CP, output layer or dtype gives other "
                "embeddings; fit it again with these settings (`cpembed fit`)"
            )

    def save(self, path: str | Path) -> Path:
        """An .npz file: the arrays, and the metadata as JSON."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(path.suffix + ".npz")
        meta = {"format": FORMAT, "kind": self.kind, "settings": self.settings, "source": self.source}
        meta["sentences"] = self.sentences
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"mean": self.mean} | ({"transform": self.transform} if self.transform is not None else {})
        tmp = path.with_name(path.name + ".partial.npz")
        np.savez(tmp, meta=np.array(json.dumps(meta)), **arrays)
        tmp.replace(path)  # never a half-written fit under the real name
        return path

    @staticmethod
    def load(path: str | Path) -> PostProcess:
        path = Path(path)
        if not path.is_file():
            raise InputNotFoundError(f"no post-processing fit at {path}: make one with `cpembed fit`") from None
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                mean = data["mean"]
                transform = data["transform"] if "transform" in data else None
        except (OSError, ValueError, KeyError) as error:
            raise InvalidValueError(
                f"{path} is not a post-processing fit ({error}); make one with `cpembed fit`"
            ) from None
        if meta.get("format") != FORMAT or meta.get("kind") not in KINDS:
            raise InvalidValueError(f"{path}: unknown fit format {meta.get('format')!r}; fit it again")
        return PostProcess(meta["kind"], mean, transform, meta["settings"], meta["source"], meta["sentences"])


def fit(
    embeddings: np.ndarray,
    kind: Kind,
    settings: str,
    dimensions: int | None = None,
    source: str = "",
) -> PostProcess:
    """Fit centering or whitening on `(n, d)` embeddings of unlabelled sentences.

    `dimensions` keeps the first k whitened components (whitening only; None keeps all d).
    """
    if kind not in KINDS:
        raise InvalidValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise InvalidValueError(f"fitting needs at least 2 embeddings as an (n, d) array, got shape {x.shape}")
    mean = x.mean(axis=0)
    if kind == "center":
        if dimensions is not None:
            raise InvalidValueError("dimensions needs kind='whiten': centering keeps the width")
        return PostProcess(kind, mean, None, settings, source, len(x))
    if dimensions is not None:
        integer("dimensions", dimensions, 1, x.shape[1])
    covariance = np.cov(x - mean, rowvar=False)
    eigenvalues, vectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1][: dimensions or x.shape[1]]
    # With fewer sentences than dimensions the trailing variances are 0: a floor keeps them finite.
    floor = max(eigenvalues.max(), 1e-12) * 1e-6
    transform = vectors[:, order] / np.sqrt(np.maximum(eigenvalues[order], floor))
    return PostProcess(kind, mean, transform, settings, source, len(x))


def fit_file(name: str, dtype: str) -> str:
    """The file name of a recipe's fit `name` made in `dtype` (a fit belongs to one dtype's embeddings)."""
    return f"{name}-{dtype}.npz"


@functools.cache
def packaged_fit(name: str, dtype: str) -> PostProcess | None:
    """A fit that ships with cpembed (`cpembed/fits/`), the post-processing of a model's recipe;
    None where it ships none for `dtype`."""
    file = resources.files("cpembed").joinpath("fits", fit_file(name, dtype))
    if not file.is_file():
        return None
    with resources.as_file(file) as path:
        return PostProcess.load(path)
