"""Files written whole or not at all, and the one way cpembed reads a text file's lines."""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

PARTIAL_SUFFIX = ".partial"


def temporary_beside(target: Path) -> Path:
    """An empty file next to `target`, with the permissions a new file would get (mkstemp's are 0600).

    Its name, `.<target name>.<pid>.<random>.partial`, says which process writes it, so a later
    writer of the same target can remove what a killed one left behind (`remove_stale_partials`).
    """
    remove_stale_partials(target)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=PARTIAL_SUFFIX, dir=target.parent)
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(name, 0o666 & ~umask)
    return Path(name)


def remove_stale_partials(target: Path) -> list[Path]:
    """Remove the partial files of `target` whose writer is no longer running; return them.

    A process killed with SIGKILL cannot clean up after itself: the next writer does. A partial
    of a live process (another run writing the same target right now) is left alone; one without
    a process id in its name comes from a version that did not write one, and counts as stale.
    """
    removed = []
    for partial in Path(target).parent.glob(f".{glob.escape(Path(target).name)}.*{PARTIAL_SUFFIX}"):
        writer = partial.name[len(Path(target).name) + 2 :].split(".", 1)[0]
        if writer.isdigit() and _running(int(writer)):
            continue
        partial.unlink(missing_ok=True)
        removed.append(partial)
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


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
