"""The Ray engine on a local cluster: equal to CPEncoder, every row once, resumable, refusing mixes."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import SENTENCES, assert_same_embeddings
from cpembed import CPConfig, CPEncoder

pytestmark = pytest.mark.ray

ray = pytest.importorskip("ray")
pq = pytest.importorskip("pyarrow.parquet")
distributed = pytest.importorskip("cpembed.distributed")

CP = CPConfig(layer=3, alpha=2.0)


@pytest.fixture(scope="module", autouse=True)
def local_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=80 * 2**20)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


@pytest.fixture
def corpus(tmp_path):
    """A text file (with a BOM), a JSONL file with ids and a Parquet file: 18 + 6 + 6 rows."""
    import pyarrow as pa

    text = tmp_path / "lines.txt"
    text.write_bytes(("\ufeff" + "\n".join(SENTENCES * 3) + "\n").encode())
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text("".join(json.dumps({"id": f"j{i}", "text": s}) + "\n" for i, s in enumerate(SENTENCES)))
    parquet = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"id": [f"p{i}" for i in range(6)], "text": SENTENCES}), parquet)
    return tmp_path, [str(text), str(jsonl), str(parquet)]


def _expected(model_dir, inputs) -> dict[str, np.ndarray]:
    encoder = CPEncoder(model_dir, cp=CP)
    rows = {f"{inputs[0]}:{i + 1}": s for i, s in enumerate(SENTENCES * 3)}
    rows |= {f"j{i}": s for i, s in enumerate(SENTENCES)} | {f"p{i}": s for i, s in enumerate(SENTENCES)}
    ids = list(rows)
    return dict(zip(ids, encoder.encode([rows[i] for i in ids]), strict=True))


def _table(out) -> dict[str, np.ndarray]:
    table = distributed.read_embeddings(str(out))
    ids = table.column("id").to_pylist()
    assert len(ids) == len(set(ids)), "a row was written twice"
    return dict(zip(ids, np.array(table.column("embedding").to_pylist(), np.float32), strict=True))


def test_output_equals_the_encoder_row_for_row(tiny_model_dir, corpus):
    folder, inputs = corpus
    out = folder / "out"
    summary = distributed.embed_files(
        inputs, str(out), id_field="id", workers=2, rows_per_shard=4, model=tiny_model_dir, cp=CP
    )
    expected, found = _expected(tiny_model_dir, inputs), _table(out)
    assert summary.rows == 30 and sorted(found) == sorted(expected)
    for row_id, vector in expected.items():
        np.testing.assert_allclose(found[row_id], vector, atol=1e-5, rtol=1e-5)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["encoder"]["cp"]["layer"] == 3 and manifest["rows"] == 30 and manifest["shards"] == summary.shards


def test_a_spec_file_runs_the_same_job_and_is_the_manifests_encoder(tiny_model_dir, corpus):
    from cpembed.spec import EncoderSpec

    folder, inputs = corpus
    spec = CPEncoder(tiny_model_dir, cp=CP).spec
    path = spec.save(folder / "spec.json")
    out = folder / "by-spec"
    distributed.embed_files(inputs, str(out), id_field="id", rows_per_shard=8, spec=str(path))
    expected, found = _expected(tiny_model_dir, inputs), _table(out)
    for row_id, vector in expected.items():
        np.testing.assert_allclose(found[row_id], vector, atol=1e-5, rtol=1e-5)
    manifest = json.loads((out / "manifest.json").read_text())
    assert EncoderSpec.from_dict({k: v for k, v in manifest["encoder"].items() if k != "cpembed"}) == spec


def test_jsonl_and_parquet_ids_come_from_the_id_field(tiny_model_dir, corpus):
    folder, inputs = corpus
    out = folder / "with-ids"
    distributed.embed_files(inputs[1:], str(out), id_field="id", include_text=True, model=tiny_model_dir, cp=CP)
    table = distributed.read_embeddings(str(out))
    assert sorted(table.column("id").to_pylist()) == sorted([f"j{i}" for i in range(6)] + [f"p{i}" for i in range(6)])
    assert set(table.column("text").to_pylist()) == set(SENTENCES)
    assert table.schema.field("embedding").type.list_size == 32


def _ray_worker_pids() -> list[int]:
    import psutil

    return [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if any("EmbedShards" in part for part in (p.info["cmdline"] or []))
    ]


def test_a_worker_killed_mid_job_loses_nothing(tiny_model_dir, tmp_path):
    source = tmp_path / "many.txt"
    texts = [f"sentence {i} about {SENTENCES[i % 6]}" for i in range(120)]
    source.write_text("\n".join(texts) + "\n")
    out = tmp_path / "out"
    killed, finished = [], threading.Event()

    def kill_one_worker_once_shards_appear() -> None:
        # No deadline: on a loaded machine the workers may take minutes to start.
        while not finished.is_set() and not killed:
            if out.is_dir() and len(list(out.glob("shard-*.parquet"))) >= 3 and (pids := _ray_worker_pids()):
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.01)

    killer = threading.Thread(target=kill_one_worker_once_shards_appear)
    killer.start()
    try:
        summary = distributed.embed_files(
            [str(source)], str(out), workers=2, rows_per_shard=1, model=tiny_model_dir, cp=CP
        )
    finally:
        finished.set()
        killer.join()
    assert killed, "no worker was killed: the job ended too soon to test the fault"
    found = _table(out)
    assert summary.rows == 120 and sorted(found) == sorted(f"{source}:{i + 1}" for i in range(120))
    expected = CPEncoder(tiny_model_dir, cp=CP).encode(texts)
    for i in range(120):
        np.testing.assert_allclose(found[f"{source}:{i + 1}"], expected[i], atol=1e-5, rtol=1e-5)


def test_a_driver_killed_mid_job_is_finished_by_running_the_command_again(tiny_model_dir, tmp_path):
    """SIGKILL to `cpembed encode --engine ray` (no cleanup runs), then the same command: it keeps the
    shards written, embeds the rest, and every row is there once, equal to the encoder's (as a clean
    run's rows are: test_output_equals_the_encoder_row_for_row)."""
    import subprocess
    import sys

    source = tmp_path / "many.txt"
    texts = [f"sentence {i} about {SENTENCES[i % 6]}" for i in range(24)]
    source.write_text("\n".join(texts) + "\n")
    out = tmp_path / "out"
    address = ray.get_runtime_context().gcs_address  # the test's cluster lives on, as a real one would
    command = [sys.executable, "-m", "cpembed", "encode", str(source), "--engine", "ray", "--output", str(out)]
    command += ["--address", address, "--model", tiny_model_dir, *"--rows-per-shard 2 --layer 3 --alpha 2".split()]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while driver.poll() is None and len(list(out.glob("shard-*.parquet"))) < 2:
            time.sleep(0.01)
        driver.kill()
    finally:
        stderr = driver.communicate(timeout=60)[1].decode(errors="replace")
    assert driver.returncode == -signal.SIGKILL, f"the driver ended before it was killed:\n{stderr[-3000:]}"
    written = len(list(out.glob("shard-*.parquet")))
    assert 2 <= written < 12
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "24 rows in 12 shard(s)" in rerun.stderr and "already complete" in rerun.stderr
    skipped = int(rerun.stderr.split(" written, ")[1].split(" already complete")[0])
    assert skipped >= written  # the shards the killed run finished were kept, not embedded again
    found = _table(out)
    assert sorted(found) == sorted(f"{source}:{i + 1}" for i in range(24))
    expected = CPEncoder(tiny_model_dir, cp=CP).encode(texts)
    for i in range(24):
        np.testing.assert_allclose(found[f"{source}:{i + 1}"], expected[i], atol=1e-5, rtol=1e-5)


def test_a_rerun_finishes_an_interrupted_run_and_refuses_another_configuration(tiny_model_dir, corpus):
    folder, inputs = corpus
    out = folder / "out"
    options = dict(rows_per_shard=5, id_field="id", model=tiny_model_dir, cp=CP)
    first = distributed.embed_files(inputs, str(out), **options)
    shards = sorted(out.glob("shard-*.parquet"))
    before = _table(out)
    for lost in shards[-2:]:  # as if the run died before writing these
        lost.unlink()
    (out / ".shard-000003.parquet.0123.partial").write_bytes(b"half a file")  # killed mid-write
    kept = {p.name: p.stat().st_mtime_ns for p in shards[:-2]}
    second = distributed.embed_files(inputs, str(out), **options)
    assert second.shards_written == 2 and second.shards_skipped == first.shards - 2
    assert {p.name: p.stat().st_mtime_ns for p in shards[:-2]} == kept  # written shards untouched
    assert not list(out.glob("*.partial"))
    after = _table(out)
    assert sorted(after) == sorted(before)
    for row_id in before:  # the lost shards' rows, embedded again, maybe in other batches
        assert_same_embeddings(after[row_id], before[row_id], err_msg=row_id)
    with pytest.raises(distributed.ConfigurationMismatch, match=r"cp.layer 3 -> 2"):
        distributed.embed_files(inputs, str(out), **{**options, "cp": CPConfig(layer=2)})
    with open(inputs[0], "a") as changed:  # the same command on changed data
        changed.write("a line added after the first run\n")
    with pytest.raises(distributed.ConfigurationMismatch, match="lines.txt changed since the first run"):
        distributed.embed_files(inputs, str(out), **options)


def test_bad_inputs_fail_clearly_before_any_work(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(FileNotFoundError, match="no such input file"):
        distributed.plan([str(missing)])
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    shards, empties, described = distributed.plan([str(empty)])
    assert shards == [] and empties == [str(empty)] and described[0]["rows"] == 0
    no_text = tmp_path / "bad.jsonl"
    no_text.write_text('{"text": "fine"}\n{"body": "no text field"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2 has no string field 'text'"):
        distributed.plan([str(no_text)])
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("ok\nok\ncaf\u00e9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.txt:3 is not UTF-8"):
        distributed.plan([str(latin1)])
    twice = tmp_path / "twice.jsonl"
    twice.write_text('{"id": 1, "text": "a"}\n{"id": 1, "text": "b"}\n')
    with pytest.raises(ValueError, match="id '1' appears twice"):
        distributed.plan([str(twice)], id_field="id")
    lines = tmp_path / "lines.txt"
    lines.write_text("first\nsecond\n")
    collide = tmp_path / "collide.jsonl"
    collide.write_text(json.dumps({"id": f"{lines}:1", "text": "x"}) + "\n")  # a given id equal to a generated one
    with pytest.raises(ValueError, match="appears twice"):
        distributed.plan([str(lines), str(collide)], id_field="id")
    blank = tmp_path / "blank.jsonl"
    blank.write_text('{"text": "a"}\n\n{"text": "b"}\n')
    with pytest.raises(ValueError, match=r"blank.jsonl:2 is blank"):
        distributed.plan([str(blank)])


def test_a_pattern_in_a_file_name_stands_for_the_files_it_matches(tmp_path, monkeypatch):
    for name in ("part-1.txt", "part-0.txt", "other.txt"):
        (tmp_path / name).write_text("a line\n")
    (tmp_path / "part-2.jsonl").write_text('{"text": "a line"}\n')
    assert distributed.expand_patterns([str(tmp_path / "part-*.txt"), str(tmp_path / "other.txt")]) == [
        str(tmp_path / "part-0.txt"),
        str(tmp_path / "part-1.txt"),
        str(tmp_path / "other.txt"),
    ]
    monkeypatch.chdir(tmp_path)  # a relative pattern keeps its inputs relative, as given
    assert distributed.expand_patterns(["part-[01].txt"]) == ["part-0.txt", "part-1.txt"]
    _, _, described = distributed.plan(["part-?.*"])
    assert [d["path"] for d in described] == ["part-0.txt", "part-1.txt", "part-2.jsonl"]
    with pytest.raises(FileNotFoundError, match=r"no input file matches .*\*\.parquet"):
        distributed.plan([str(tmp_path / "*.parquet")])
    with pytest.raises(FileNotFoundError, match="only be in the file name, not a folder's"):
        distributed.plan([str(tmp_path / "*" / "part-0.txt")])


def test_impossible_requests_fail_fast(tiny_model_dir, tmp_path):
    source = tmp_path / "one.txt"
    source.write_text("one line\ntwo lines\n")
    with pytest.raises(ValueError, match="needs 1 GPU"):
        distributed.embed_files([str(source)], str(tmp_path / "gpu"), gpus_per_worker=1, model=tiny_model_dir)
    with pytest.raises(ValueError, match="cpus_per_worker must be > 0"):
        distributed.embed_files([str(source)], str(tmp_path / "cpu"), cpus_per_worker=0, model=tiny_model_dir)


def test_an_empty_input_is_recorded_not_lost(tiny_model_dir, tmp_path):
    empty, one = tmp_path / "empty.txt", tmp_path / "one.txt"
    empty.write_bytes(b"")
    one.write_text("just one line\n")
    summary = distributed.embed_files([str(empty), str(one)], str(tmp_path / "out"), model=tiny_model_dir, cp=CP)
    assert summary.rows == 1 and summary.empty_inputs == [str(empty)]
    nothing = distributed.embed_files([str(empty)], str(tmp_path / "none"), model=tiny_model_dir, cp=CP)
    assert nothing.rows == 0 and distributed.read_embeddings(str(tmp_path / "none")).num_rows == 0
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["empty_inputs"] == [str(empty)]


def test_cli_ray_engine(tiny_model_dir, corpus):
    from cpembed.cli import main

    folder, inputs = corpus
    out = folder / "cli-out"
    args = ["encode", *inputs, "--engine", "ray", "--output", str(out), "--model", tiny_model_dir, "--id-field", "id"]
    result = CliRunner().invoke(main, [*args, "--rows-per-shard", "8"])
    assert result.exit_code == 0, result.output
    assert "30 rows in" in result.output and "rows/s" in result.output
    assert len(_table(out)) == 30
    refused = CliRunner().invoke(main, ["encode", inputs[0], "--workers", "2", "--model", tiny_model_dir])
    assert refused.exit_code != 0 and "--workers applies only to --engine ray" in refused.output
