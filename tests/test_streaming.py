"""`cpembed encode` streams: chunked reads, incremental writes, whole-or-nothing output files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import SENTENCES
from cpembed import CPEncoder
from cpembed.cli import main
from cpembed.streaming import NotUTF8Error, count_checked_lines, encode_file


class FakeEncoder:
    """Embeds a line as [its length, its chunk's size]; records every call's size."""

    embedding_dimension = 2

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.calls: list[int] = []
        self.fail_on_call = fail_on_call

    def encode(self, sentences, **_):
        self.calls.append(len(sentences))
        if self.fail_on_call == len(self.calls):
            raise RuntimeError("killed mid-file")
        return np.array([[len(s), len(sentences)] for s in sentences], np.float32)

    def encode_chunks(self, chunks, batch_size, normalize_embeddings, bar):
        for chunk in chunks:
            yield chunk, self.encode(chunk)
            bar.update(len(chunk))


@pytest.fixture
def lines_file(tmp_path):
    path = tmp_path / "in.txt"
    lines = [f"sentence number {i}" for i in range(10)] + ["with a \u2028 line separator inside", "crlf"]
    path.write_bytes(("\n".join(lines[:-1]) + "\n" + lines[-1] + "\r\n").encode())
    return path, lines


@pytest.mark.parametrize("suffix", [".npy", ".jsonl"])
def test_chunks_are_bounded_and_rows_keep_their_order(lines_file, tmp_path, suffix):
    path, lines = lines_file
    target = tmp_path / f"out{suffix}"
    encoder = FakeEncoder()
    assert encode_file(encoder, path, str(target), chunk_lines=5) == len(lines)
    assert encoder.calls == [5, 5, 2]  # never more than a chunk in memory
    if suffix == ".npy":
        rows = np.load(target)
    else:
        records = [json.loads(line) for line in target.read_text().splitlines()]
        assert [r["index"] for r in records] == list(range(len(lines)))
        assert [r["text"] for r in records] == lines
        rows = np.array([r["embedding"] for r in records])
    np.testing.assert_array_equal(rows[:, 0], [len(s) for s in lines])


@pytest.mark.parametrize("suffix", [".npy", ".jsonl"])
def test_an_interrupted_run_leaves_no_output(lines_file, tmp_path, suffix):
    path, _ = lines_file
    target = tmp_path / f"out{suffix}"
    with pytest.raises(RuntimeError, match="killed"):
        encode_file(FakeEncoder(fail_on_call=2), path, str(target), chunk_lines=5)
    assert list(tmp_path.iterdir()) == [path]  # neither the target nor a partial file


def test_empty_input_gives_an_empty_array(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    assert encode_file(FakeEncoder(), path, str(tmp_path / "out.npy")) == 0
    assert np.load(tmp_path / "out.npy").shape == (0, 2)


def test_non_utf8_is_found_before_any_work(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("ok\nok\ncaf\u00e9\n".encode("latin-1"))
    with pytest.raises(NotUTF8Error, match=r"line 3"):
        count_checked_lines(path)
    # The CLI checks the file before it loads the model: a missing model is not what it reports.
    result = CliRunner().invoke(main, ["encode", str(path), "--model", "no-such-model"])
    assert result.exit_code == 1 and "is not UTF-8 text (line 3)" in result.output


def test_cli_streams_a_file_larger_than_a_chunk(tiny_model_dir, tmp_path, monkeypatch):
    from cpembed import streaming

    monkeypatch.setattr(streaming, "CHUNK_LINES", 4)
    source, target = tmp_path / "in.txt", tmp_path / "out.npy"
    source.write_text("\n".join(SENTENCES * 2) + "\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["encode", str(source), "-o", str(target), "--model", tiny_model_dir])
    assert result.exit_code == 0, result.output
    expected = CPEncoder(tiny_model_dir).encode(SENTENCES * 2)
    np.testing.assert_allclose(np.load(target), expected, atol=1e-5)


def test_outputs_get_normal_permissions(lines_file, tmp_path):
    import os
    import stat

    path, _ = lines_file
    umask = os.umask(0o022)
    try:
        encode_file(FakeEncoder(), path, str(tmp_path / "out.npy"))
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "out.npy").stat().st_mode) == 0o644


def _encode_until_its_partial_appears(model_dir: str, folder):
    """A `cpembed encode` subprocess of 30,000 lines to folder/out.npy, once its partial file exists."""
    import subprocess
    import sys
    import time

    source = folder / "many.txt"
    source.write_text("\n".join(f"sentence number {i} is here." for i in range(30_000)) + "\n")
    command = [
        sys.executable,
        "-m",
        "cpembed",
        "encode",
        str(source),
        "-o",
        str(folder / "out.npy"),
        "--model",
        model_dir,
    ]
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(folder.glob(".out.npy.*.partial")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be interrupted"
    return process


@pytest.mark.slow
def test_sigterm_leaves_no_partial_output(tiny_model_dir, tmp_path):
    import os
    import signal

    process = _encode_until_its_partial_appears(tiny_model_dir, tmp_path)
    os.kill(process.pid, signal.SIGTERM)
    assert process.wait(60) == 143
    assert sorted(p.name for p in tmp_path.iterdir()) == ["many.txt"]


@pytest.mark.slow
def test_the_next_run_removes_what_a_killed_run_left(tiny_model_dir, tmp_path):
    """SIGKILL leaves the partial file; the next run of the same output removes it."""
    import os
    import signal

    process = _encode_until_its_partial_appears(tiny_model_dir, tmp_path)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(60)
    assert len(list(tmp_path.glob(".out.npy.*.partial"))) == 1
    small = tmp_path / "small.txt"
    small.write_text("one sentence.\nanother one.\n")
    result = CliRunner().invoke(
        main, ["encode", str(small), "-o", str(tmp_path / "out.npy"), "--model", tiny_model_dir]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["many.txt", "out.npy", "small.txt"]
    assert np.load(tmp_path / "out.npy").shape == (2, 32)


def test_a_live_writers_partial_is_left_alone(tmp_path):
    import os

    from cpembed.io import remove_stale_partials

    target = tmp_path / "out.npy"
    live = tmp_path / f".out.npy.{os.getppid()}.abc.partial"  # the test runner's parent: running
    dead, old_style = tmp_path / ".out.npy.999999999.abc.partial", tmp_path / ".out.npy.k3j2h1.partial"
    for path in (live, dead, old_style):
        path.write_bytes(b"x")
    assert sorted(p.name for p in remove_stale_partials(target)) == sorted([dead.name, old_style.name])
    assert live.exists()


def test_the_bar_moves_after_every_batch_not_every_chunk(tiny_lm, tmp_path, monkeypatch):
    import cpembed.streaming

    moves: list[int] = []

    class Bar:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            moves.append(n)

    monkeypatch.setattr(cpembed.streaming, "progress_bar", lambda total, show: Bar())
    path = tmp_path / "in.txt"
    path.write_text("\n".join(SENTENCES) + "\n")
    encode_file(CPEncoder(tiny_lm, cp=None), path, str(tmp_path / "out.npy"), batch_size=2, chunk_lines=4)
    assert moves == [2, 2, 2]  # a chunk of 4 (two batches), then one of 2


def test_npy_rows_are_written_not_mapped(tmp_path):
    """Mapped pages of the output count as the process's resident memory: the writer must not map it."""
    from pathlib import Path

    from cpembed.streaming import NpyWriter

    target = tmp_path / "out.npy"
    writer = NpyWriter(target, rows=4, width=3)
    writer.write(["a", "b"], np.ones((2, 3), np.float64))
    maps = Path("/proc/self/maps")
    if maps.exists():
        assert writer.partial.name not in maps.read_text()
    writer.write(["c", "d"], np.full((2, 3), 2.0, np.float32))
    writer.close(complete=True)
    np.testing.assert_array_equal(np.load(target), [[1] * 3, [1] * 3, [2] * 3, [2] * 3])


def test_an_input_that_changes_while_read_fails_and_leaves_nothing(lines_file, tmp_path):
    path, lines = lines_file
    target = tmp_path / "out.npy"
    from cpembed.streaming import InputChangedError

    with pytest.raises(InputChangedError, match="counted 20 lines but embedded 12"):
        encode_file(FakeEncoder(), path, str(target), total=20)
    assert list(tmp_path.iterdir()) == [path]
