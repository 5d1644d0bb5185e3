"""Files written whole or not at all, and the one way cpembed reads a text file's lines."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

PARTIAL_SUFFIX = ".partial"


def temporary_beside(target: Path) -> Path:
    """An empty file next to `target`, with the permissions a new file would get (mkstemp's are 0600).

    Its name is `.<target name>.<random>.partial`, so `remove_partials(target)` finds what a killed
    writer left behind.
    """
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=PARTIAL_SUFFIX, dir=target.parent)
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(name, 0o666 & ~umask)
    return Path(name)


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """`write(stream)` into `path`, which readers see either as before or complete; a failed
    write leaves nothing behind."""
    path = Path(path)
    partial = temporary_beside(path)
    try:
        with open(partial, "wb") as stream:
            write(stream)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)  # gone once renamed


def read_lines(stream: BinaryIO, chunk_lines: int) -> Iterator[list[str]]:
    """Lists of at most `chunk_lines` UTF-8 lines, in order: split on "\\n" only, a trailing "\\r"
    and the first line's BOM dropped, so line i is always row i - 1."""
    chunk: list[str] = []
    for number, raw in enumerate(stream):
        text = raw.decode("utf-8-sig" if number == 0 else "utf-8")
        chunk.append(text.removesuffix("\n").removesuffix("\r"))
        if len(chunk) == chunk_lines:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
