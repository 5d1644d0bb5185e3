"""Quantized embeddings, as sentence-transformers' `quantize_embeddings` makes them.

- int8 / uint8: each dimension's range (from calibration embeddings, else from the rows
  themselves) cut into 256 equal steps; `calibration_ranges` keeps the `(2, d)` minimum and
  maximum of a corpus so that every later batch uses the same steps.
- binary / ubinary: one bit per dimension (1 where the value is above 0), packed 8 to a byte:
  `d / 8` bytes a row, as int8 (offset by -128) or as uint8. Compare them by Hamming distance.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from .errors import InvalidValueError

Precision = Literal["float32", "int8", "uint8", "binary", "ubinary"]
PRECISIONS: tuple[Precision, ...] = ("float32", "int8", "uint8", "binary", "ubinary")


def quantized_width(width: int, precision: Precision) -> int:
    """How many numbers a row of `width` dimensions becomes: binary packs 8 to a byte."""
    return -(-width // 8) if precision in ("binary", "ubinary") else width


def quantized_dtype(precision: Precision) -> np.dtype:
    return np.dtype({"float32": "<f4", "int8": "i1", "uint8": "u1", "binary": "i1", "ubinary": "u1"}[precision])


def calibration_ranges(embeddings: np.ndarray) -> np.ndarray:
    """`(2, d)`: each dimension's minimum and maximum over `embeddings` (a corpus' rows)."""
    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim != 2 or len(x) < 2:
        raise InvalidValueError(f"calibration needs at least 2 embeddings as an (n, d) array, got shape {x.shape}")
    return np.stack([x.min(axis=0), x.max(axis=0)])


def quantize(embeddings: np.ndarray, precision: Precision, ranges: np.ndarray | None = None) -> np.ndarray:
    """`embeddings` (n, d) in `precision`; `ranges` (from `calibration_ranges`) fix int8/uint8's steps."""
    if precision not in PRECISIONS:
        raise InvalidValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    x = np.asarray(embeddings, dtype=np.float32)
    if precision == "float32":
        return x
    if precision in ("binary", "ubinary"):
        packed = np.packbits(x > 0, axis=-1)
        return packed if precision == "ubinary" else (packed.astype(np.int16) - 128).astype(np.int8)
    if ranges is None:
        if x.ndim != 2 or len(x) < 2:
            raise InvalidValueError(
                f"{precision} needs calibration ranges (calibration_ranges of a corpus) to quantize fewer than 2 rows"
            )
        ranges = calibration_ranges(x)
    ranges = np.asarray(ranges, dtype=np.float32)
    if ranges.shape != (2, x.shape[-1]):
        raise InvalidValueError(f"ranges must have shape (2, {x.shape[-1]}), got {ranges.shape}")
    low, steps = ranges[0], (ranges[1] - ranges[0]) / 255
    level = np.clip(np.floor((x - low) / np.where(steps > 0, steps, 1)), 0, 255)
    return level.astype(np.uint8) if precision == "uint8" else (level - 128).astype(np.int8)
