"""Embed a text file of any size with flat memory: read it in chunks, write each chunk's rows as they come.

One sentence a line (split on "\\n"; a trailing "\\r" and a UTF-8 BOM are dropped). The input is
checked to be UTF-8 in a first pass, before any model work, so a bad byte on line two million
costs seconds, not hours. Outputs are written to a temporary file beside the target and renamed
when complete, so a target that exists is always whole.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import numpy as np

from .encoder import progress_bar
from .errors import CPEmbedError, InputNotFoundError, InvalidValueError
from .io import read_lines, temporary_beside
from .quantize import Precision, quantize, quantized_dtype, quantized_width

# Lines embedded per chunk: big enough for length-sorted batches to pad little, small enough
# that a chunk's embeddings (CHUNK_LINES x hidden float32) stay a few MB.
CHUNK_LINES = 2048


class NotUTF8Error(InvalidValueError):
    """The input has a byte sequence that is not UTF-8."""


class InputChangedError(CPEmbedError):
    """The input file had other lines when it was read than when it was counted."""


def count_checked_lines(path: Path, name: str | None = None) -> int:
    """The number of lines of a file, after checking that every line is UTF-8 (errors name the
    line, and the file as `name` if given, e.g. "stdin")."""
    count = 0
    with path.open("rb") as stream:
        for count, line in enumerate(stream, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                raise NotUTF8Error(
                    f"{name or path} is not UTF-8 text (line {count}); convert it first, e.g. iconv -f latin1 -t utf-8"
                ) from None
    return count


@contextmanager
def seekable_input(name: str) -> Iterator[Path]:
    """A path for INPUT: the file itself, or stdin ("-") spooled to a temporary file first (the
    UTF-8 check and the progress bar's total need the whole input before the model starts)."""
    if name != "-":
        path = Path(name)
        if not path.is_file():
            raise InputNotFoundError(f"no such input file: {name}")
        yield path
        return
    with tempfile.NamedTemporaryFile(prefix="cpembed-stdin-", suffix=".txt", delete=False) as spool:
        shutil.copyfileobj(sys.stdin.buffer, spool)
    try:
        yield Path(spool.name)
    finally:
        os.unlink(spool.name)


class NpyWriter:
    """Rows into an .npy file of known shape, appended as they come: memory stays flat.

    Plain writes, not a memory map: the pages of a mapped file count as the process's own
    resident memory until it is unmapped, so a map grew RSS by the whole output (230 MB for
    100,000 rows of SmolLM2) though nothing was kept.
    """

    def __init__(self, target: Path, rows: int, width: int, dtype: str = "<f4") -> None:
        self.target = target
        self.partial = temporary_beside(target)
        self.rows, self.width, self.dtype = rows, width, np.dtype(dtype)
        self.written = 0
        self.file = self.partial.open("wb")
        header = {"descr": self.dtype.str, "fortran_order": False, "shape": (rows, width)}
        np.lib.format.write_array_header_1_0(self.file, header)

    def write(self, texts: list[str], embeddings: np.ndarray) -> None:
        if self.written + len(embeddings) > self.rows or embeddings.shape[1:] != (self.width,):
            raise InvalidValueError(f"rows of shape {embeddings.shape} do not fit the ({self.rows}, {self.width}) file")
        self.file.write(np.ascontiguousarray(embeddings, dtype=self.dtype).tobytes())
        self.written += len(embeddings)

    def close(self, complete: bool) -> None:
        self.file.close()
        if complete and self.written == self.rows:
            os.replace(self.partial, self.target)
            return
        self.partial.unlink(missing_ok=True)
        if complete:  # the input changed between counting its lines and reading them
            raise InputChangedError(
                f"counted {self.rows} lines but embedded {self.written}; run again on a file not being written"
            )


class JsonlWriter:
    """One JSON object a line: index, text, embedding. To a file (atomically) or to stdout."""

    def __init__(self, target: Path | None) -> None:
        self.target = target
        self.partial: Path | None = None
        if target is None:
            self.out: TextIO = sys.stdout
        else:
            self.partial = temporary_beside(target)
            self.out = self.partial.open("w", encoding="utf-8")
        self.written = 0

    def write(self, texts: list[str], embeddings: np.ndarray) -> None:
        for text, row in zip(texts, embeddings, strict=True):
            self.out.write(json.dumps({"index": self.written, "text": text, "embedding": row.tolist()}) + "\n")
            self.written += 1
        self.out.flush()

    def close(self, complete: bool) -> None:
        if self.partial is None:
            return
        self.out.close()
        if complete:
            os.replace(self.partial, self.target)
        else:
            self.partial.unlink(missing_ok=True)


def encode_file(
    encoder,
    path: Path,
    output: str,
    batch_size: int = 32,
    normalize: bool = False,
    chunk_lines: int = CHUNK_LINES,
    show_progress_bar: bool | None = None,
    total: int | None = None,
    precision: Precision = "float32",
    ranges: np.ndarray | None = None,
) -> int:
    """Embed every line of `path` into `output` (.npy, .jsonl, or "-" for JSON lines on stdout).

    Returns the number of rows written; a bar on stderr shows the rate and the time left.
    `total` is the file's line count when the caller has checked it already. `precision` quantizes
    the rows (`cpembed.quantize`); int8 and uint8 need `ranges`, so that every chunk has the same steps.
    """
    if total is None:
        total = count_checked_lines(path)
    if precision in ("int8", "uint8") and ranges is None:
        raise InvalidValueError(f"{precision} output of a file needs calibration ranges (quantize.calibration_ranges)")
    if output.endswith(".npy"):
        width = quantized_width(encoder.embedding_dimension, precision)
        writer: NpyWriter | JsonlWriter = NpyWriter(Path(output), total, width, quantized_dtype(precision))
    else:
        writer = JsonlWriter(None if output == "-" else Path(output))
    if show_progress_bar is None:
        show_progress_bar = sys.stderr.isatty()
    complete = False
    try:
        with path.open("rb") as stream, progress_bar(total, show_progress_bar) as bar:
            chunks = read_lines(stream, chunk_lines)
            for chunk, embeddings in encoder.encode_chunks(chunks, batch_size, normalize, bar):
                writer.write(chunk, quantize(embeddings, precision, ranges))
        complete = True
    finally:
        writer.close(complete)
    return writer.written
