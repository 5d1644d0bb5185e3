"""Embed a corpus on a Ray cluster (Ray Data), with nothing lost and nothing twice.

The driver plans first: it reads every input once (checking UTF-8, JSON and fields, so a bad
line fails in seconds, before any model work), gives every row a stable id, and cuts the inputs
into shards of at most `rows_per_shard` rows, by byte range (text, JSONL) or row range (Parquet).
A manifest with the full configuration is written to the output folder. Ray Data then runs an
actor pool (each actor loads the model once) over the shards that have no output yet; an actor
writes each shard to a temporary file and renames it when complete, so a shard file is always
whole. A rerun after a crash skips the complete shards; a rerun with another configuration is
refused. Actors that die are restarted and their shards retried (writing a shard twice gives the
same file, so a retry never duplicates a row).

Inputs: `.txt` (one sentence a line; id = "<input>:<line number>", 1-based), `.jsonl` (a text
field and optionally an id field; without one, "<input>:<line number>"), `.parquet` (the same
columns; without an id field, "<input>:<row number>", 0-based). Local paths or any URI pyarrow's
filesystems read (s3://, gs://, hdfs://, ...). A pattern in an input's file name
(`s3://bucket/corpus/*.parquet`) stands for the files it matches, in name order: no shell expands
a remote one. Empty inputs are recorded in the manifest and produce no shard.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import os
import time
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass, field

import numpy as np

from .errors import InputNotFoundError, InvalidValueError
from .validation import integer

MANIFEST = "manifest.json"
FORMAT_VERSION = 2  # 2: the encoder is an EncoderSpec (spec.py)


class ConfigurationMismatch(ValueError):
    """The output folder holds embeddings made with another configuration."""


@dataclass(frozen=True)
class Shard:
    """Rows [first_row, first_row + rows) of one input: bytes [start, stop) or Parquet rows."""

    index: int
    source: str
    kind: str  # "text", "jsonl" or "parquet"
    start: int
    stop: int
    first_row: int
    rows: int

    @property
    def name(self) -> str:
        return f"shard-{self.index:06d}.parquet"


@dataclass
class Summary:
    rows: int
    shards: int
    shards_written: int
    shards_skipped: int
    seconds: float
    rows_per_second: float
    per_worker_rows_per_second: dict[str, float] = field(default_factory=dict)
    empty_inputs: list[str] = field(default_factory=list)


def _filesystem(uri: str):
    from pyarrow import fs

    if "://" not in uri:
        return fs.LocalFileSystem(), os.path.abspath(uri)
    return fs.FileSystem.from_uri(uri)


def _kind(uri: str) -> str:
    lowered = uri.lower()
    if lowered.endswith((".jsonl", ".json")):
        return "jsonl"
    if lowered.endswith(".parquet"):
        return "parquet"
    return "text"


def plan(inputs: list[str], text_field: str = "text", id_field: str | None = None, rows_per_shard: int = 10_000):
    """Shards over every input, the inputs that were empty, and each input's rows and sha256.

    Raises on any unreadable row, and on an id that appears twice (given or generated).
    """
    from pyarrow import fs as pafs

    if not inputs:
        raise InvalidValueError("give at least one input file")
    integer("rows_per_shard", rows_per_shard)
    shards, empty, described, seen_ids = [], [], [], set()
    for uri in expand_patterns(inputs):
        filesystem, path = _filesystem(uri)
        kind_on_disk = filesystem.get_file_info(path).type
        if kind_on_disk == pafs.FileType.Directory:
            raise InvalidValueError(f"{uri} is a folder: give its files, e.g. '{uri.rstrip('/')}/*.parquet' (quoted)")
        if kind_on_disk != pafs.FileType.File:
            hint = " (a pattern may only be in the file name, not a folder's)" if _is_pattern(uri) else ""
            raise InputNotFoundError(f"no such input file: {uri}{hint}")
        kind = _kind(uri)
        # One read per input: checked, cut into shards and hashed (a rerun on changed data must
        # not reuse shards of the old data) in the same pass.
        digest = hashlib.sha256()
        if kind == "parquet":
            ranges = _parquet_ranges(filesystem, path, uri, text_field, id_field, rows_per_shard, seen_ids, digest)
        else:
            ranges = _line_ranges(filesystem, path, uri, kind, text_field, id_field, rows_per_shard, seen_ids, digest)
        if not ranges:
            empty.append(uri)
        for start, stop, first_row, rows in ranges:
            shards.append(Shard(len(shards), uri, kind, start, stop, first_row, rows))
        rows = sum(r[3] for r in ranges)
        described.append({"path": uri, "rows": rows, "sha256": digest.hexdigest()})
    return shards, empty, described


def expand_patterns(inputs: list[str]) -> list[str]:
    """`inputs` with each one whose file name is a pattern (`*`, `?`, `[...]`) replaced by the
    files it matches, sorted by name. Only the file name may be a pattern, not a folder."""
    from pyarrow import fs as pafs

    expanded = []
    for uri in inputs:
        name = uri.rsplit("/", 1)[-1]
        if not _is_pattern(name):
            expanded.append(uri)
            continue
        filesystem, path = _filesystem(uri)
        if filesystem.get_file_info(path).type == pafs.FileType.File:
            expanded.append(uri)  # a file whose name holds such a character
            continue
        folder, pattern = path.rsplit("/", 1) if "/" in path else ("", path)
        found = filesystem.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
        names = sorted(
            info.base_name
            for info in found
            if info.type == pafs.FileType.File and fnmatch.fnmatchcase(info.base_name, pattern)
        )
        if not names:
            raise InputNotFoundError(f"no input file matches {uri} (a pattern may only be in the file name)")
        expanded += [uri[: len(uri) - len(name)] + match for match in names]
    return expanded


def _is_pattern(text: str) -> bool:
    return any(c in text for c in "*?[")


def _line_ranges(filesystem, path, uri, kind, text_field, id_field, rows_per_shard, seen_ids, digest):
    ranges, offset, shard_start, first_row, rows = [], 0, 0, 0, 0
    with filesystem.open_input_stream(path) as stream:
        for number, line in enumerate(_lines(stream, digest), start=1):
            _check_line(line, number, uri, kind, text_field, id_field, seen_ids)
            if kind == "text" or not id_field:
                _check_id(f"{uri}:{number}", f"{uri}:{number}", "(line number)", seen_ids)
            offset += len(line)
            rows += 1
            if rows == rows_per_shard:
                ranges.append((shard_start, offset, first_row, rows))
                shard_start, first_row, rows = offset, first_row + rows, 0
    if rows:
        ranges.append((shard_start, offset, first_row, rows))
    return ranges


def _lines(stream, digest, size: int = 1 << 20):
    """The raw lines of a binary stream, each with its b"\\n" (the last one maybe without); every
    byte read also goes into `digest`."""
    pending = b""
    while chunk := stream.read(size):
        digest.update(chunk)
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line + b"\n"
    if pending:
        yield pending


def _check_line(line: bytes, number: int, uri: str, kind: str, text_field: str, id_field, seen_ids: set) -> None:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidValueError(
            f"{uri}:{number} is not UTF-8 text; convert the file first (e.g. iconv -t utf-8)"
        ) from None
    if kind == "text":  # plain text has no fields: its ids are line numbers, whatever id_field says
        return
    if not text.strip():
        raise InvalidValueError(
            f"{uri}:{number} is blank; a JSONL file holds one JSON object a line, with no blank lines"
        )
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidValueError(f"{uri}:{number} is not valid JSON ({error.msg})") from None
    if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
        raise InvalidValueError(f"{uri}:{number} has no string field {text_field!r} (choose it with --text-field)")
    if id_field:
        _check_id(record.get(id_field), f"{uri}:{number}", id_field, seen_ids)


def _check_id(value, where: str, id_field: str, seen_ids: set) -> None:
    if value is None or isinstance(value, (dict, list, bool)):
        raise InvalidValueError(f"{where} has no usable id field {id_field!r} (a string or an integer)")
    key = str(value)
    if key in seen_ids:
        raise InvalidValueError(f"{where}: id {key!r} appears twice; ids must be unique across all inputs")
    seen_ids.add(key)


def _parquet_ranges(filesystem, path, uri, text_field, id_field, rows_per_shard, seen_ids, digest):
    import pyarrow as pa
    import pyarrow.parquet as pq

    with filesystem.open_input_stream(path) as stream:
        data = stream.read()
    digest.update(data)
    table = pq.read_table(pa.BufferReader(data), columns=[c for c in (text_field, id_field) if c])
    column = table.column(text_field)
    if column.null_count:
        raise InvalidValueError(f"{uri}: {column.null_count} row(s) have no {text_field!r}")
    n = table.num_rows
    for i, value in enumerate(table.column(id_field).to_pylist() if id_field else [f"{uri}:{i}" for i in range(n)]):
        _check_id(value, f"{uri} row {i}", id_field or "(row number)", seen_ids)
    return [(s, min(s + rows_per_shard, n), s, min(rows_per_shard, n - s)) for s in range(0, n, rows_per_shard)]


def read_shard(shard: Shard, text_field: str = "text", id_field: str | None = None) -> tuple[list[str], list[str]]:
    """The ids and texts of a shard's rows, in input order."""
    filesystem, path = _filesystem(shard.source)
    if shard.kind == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path, filesystem=filesystem).slice(shard.start, shard.stop - shard.start)
        texts = table.column(text_field).to_pylist()
        ids = (
            [str(v) for v in table.column(id_field).to_pylist()]
            if id_field
            else [f"{shard.source}:{shard.first_row + i}" for i in range(len(texts))]
        )
        return ids, texts
    with filesystem.open_input_file(path) as handle:
        handle.seek(shard.start)
        data = handle.read(shard.stop - shard.start)
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if shard.kind == "text":
        first_line = shard.first_row + 1
        texts = [line.decode("utf-8").removesuffix("\r") for line in lines]
        if shard.first_row == 0 and texts:
            texts[0] = texts[0].removeprefix("\ufeff")
        return [f"{shard.source}:{first_line + i}" for i in range(len(texts))], texts
    records = [json.loads(line) for line in lines]
    texts = [r[text_field] for r in records]
    ids = (
        [str(r[id_field]) for r in records]
        if id_field
        else [f"{shard.source}:{shard.first_row + 1 + i}" for i in range(len(records))]
    )
    return ids, texts


class EmbedShards:
    """The Ray Data UDF: one actor loads the model once and embeds whole shards."""

    def __init__(
        self,
        settings: dict,
        output: str,
        text_field: str,
        id_field,
        include_text: bool,
        threads: int,
        batch_size: int = 32,
        device: str | None = None,
        compile: bool | str = "auto",
    ):
        import torch

        from .encoder import CPEncoder
        from .spec import EncoderSpec

        torch.set_num_threads(max(1, threads))
        spec = EncoderSpec.from_dict({k: v for k, v in settings.items() if k != "cpembed"})
        self.encoder = CPEncoder.from_spec(spec, device=device, compile=compile)
        self.settings, self.output = settings, output
        self.text_field, self.id_field, self.include_text = text_field, id_field, include_text
        self.batch_size = batch_size
        self.worker = f"{os.uname().nodename}:{os.getpid()}"

    def __call__(self, batch: dict) -> dict:
        out = defaultdict(list)
        for spec in batch["shard"]:
            shard = Shard(**json.loads(spec))
            started = time.perf_counter()
            written = write_shard(
                self.encoder, shard, self.output, self.text_field, self.id_field, self.include_text, self.batch_size
            )
            out["index"].append(shard.index)
            out["rows"].append(shard.rows)
            out["written"].append(written)
            out["seconds"].append(time.perf_counter() - started)
            out["worker"].append(self.worker)
        return {key: np.array(values) for key, values in out.items()}


def write_shard(
    encoder, shard: Shard, output: str, text_field: str, id_field, include_text: bool, batch_size: int = 32
) -> bool:
    """Embed one shard into `<output>/<shard name>`, atomically; False if it was already there."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyarrow import fs as pafs

    filesystem, folder = _filesystem(output)
    target = f"{folder}/{shard.name}"
    if filesystem.get_file_info(target).type == pafs.FileType.File:
        return False  # written by an earlier run, or by this task before its actor died
    ids, texts = read_shard(shard, text_field, id_field)
    vectors = np.ascontiguousarray(
        encoder.encode(texts, batch_size=batch_size, show_progress_bar=False), dtype=np.float32
    )
    columns = {"id": pa.array(ids, pa.string())}
    if include_text:
        columns["text"] = pa.array(texts, pa.string())
    width = vectors.shape[1] if vectors.ndim == 2 else encoder.embedding_dimension
    columns["embedding"] = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), pa.float32()), width)
    partial = f"{folder}/.{shard.name}.{uuid.uuid4().hex}.partial"
    with filesystem.open_output_stream(partial) as stream:
        pq.write_table(pa.table(columns), stream)
    filesystem.move(partial, target)
    return True


def requested_spec(encoder_options: dict):
    """The spec a run asks for (a `spec=` file or EncoderSpec, or CPEncoder's keyword arguments),
    resolved and checked against the model's declared layers before any input is read."""
    from .spec import EncoderSpec, check_spec_layers, resolve

    options = {k: v for k, v in encoder_options.items() if k not in ("device", "compile")}
    if "spec" in options:
        if extra := sorted(k for k in options if k != "spec"):
            raise InvalidValueError(f"spec= sets the whole embedding: drop {', '.join(extra)}")
        spec = options["spec"]
        spec = spec if isinstance(spec, EncoderSpec) else EncoderSpec.load(spec)
        check_spec_layers(spec)
        return spec
    return resolve(**options)


def _differences(old: dict, new: dict) -> list[str]:
    """What differs between two manifests, in words: "encoder.cp.layer 5 -> 7", "lines.txt changed"."""
    found = []
    for key in ("format", "text_field", "id_field", "include_text", "rows_per_shard"):
        if old.get(key) != new.get(key):
            found.append(f"{key} {old.get(key)!r} -> {new.get(key)!r}")
    old_encoder, new_encoder = old.get("encoder") or {}, new.get("encoder") or {}
    for key in sorted(set(old_encoder) | set(new_encoder)):
        a, b = old_encoder.get(key), new_encoder.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found += [
                f"{key}.{k} {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)
            ]
        elif a != b:
            found.append(f"{key} {a!r} -> {b!r}")
    old_inputs, new_inputs = old.get("inputs") or [], new.get("inputs") or []
    if [i["path"] for i in old_inputs] != [i["path"] for i in new_inputs]:
        found.append("the list of inputs differs (paths are compared as given)")
    else:
        found += [
            f"{a['path']} changed since the first run" for a, b in zip(old_inputs, new_inputs, strict=True) if a != b
        ]
    return found


def _prepare_output(output: str, manifest: dict) -> set[str]:
    """Create the folder, or check that its manifest matches; the names of shards already complete."""
    from pyarrow import fs as pafs

    filesystem, folder = _filesystem(output)
    filesystem.create_dir(folder, recursive=True)
    path = f"{folder}/{MANIFEST}"
    if filesystem.get_file_info(path).type == pafs.FileType.File:
        with filesystem.open_input_stream(path) as stream:
            existing = json.loads(stream.read())
        different = _differences(existing, manifest)
        if different:
            raise ConfigurationMismatch(
                f"{output} holds embeddings made with another configuration ({'; '.join(different)}): "
                "use a new --output folder, or delete this one to start over"
            )
    else:
        partial = f"{folder}/.{MANIFEST}.partial"
        with filesystem.open_output_stream(partial) as stream:
            stream.write(json.dumps(manifest, indent=2).encode())
        filesystem.move(partial, path)
    found = filesystem.get_file_info(pafs.FileSelector(folder))
    for info in found:  # pieces of a run killed mid-write
        if info.base_name.endswith(".partial") and info.base_name != f".{MANIFEST}.partial":
            filesystem.delete_file(info.path)
    return {info.base_name for info in found if info.base_name.startswith("shard-")}


def embed_files(
    inputs: list[str],
    output: str,
    *,
    text_field: str = "text",
    id_field: str | None = None,
    include_text: bool = False,
    workers: int = 1,
    cpus_per_worker: float = 1,
    gpus_per_worker: float = 0,
    rows_per_shard: int = 10_000,
    batch_size: int = 32,
    address: str | None = None,
    **encoder_options,
) -> Summary:
    """Embed every row of `inputs` into Parquet shards under `output` on a Ray cluster.

    `encoder_options` are CPEncoder's (model, prompt, cp, output_layer, dtype, device,
    max_length, compile, ...), or `spec=` (an EncoderSpec or its file), `device=` and `compile=`; `batch_size` is the
    sentences per forward batch inside a worker. Without `address`, a local Ray cluster is started
    (or the running one is used).
    """
    import ray

    integer("workers", workers)
    if not cpus_per_worker > 0 or gpus_per_worker < 0:
        raise InvalidValueError("cpus_per_worker must be > 0 and gpus_per_worker >= 0")
    spec = requested_spec(encoder_options)
    if spec.postprocess and not _workers_can_load(spec.postprocess):
        raise InvalidValueError(
            f"post-processing {spec.postprocess!r} is not available on Ray yet (workers may not see the file): "
            "apply it to the shards; a recipe's packaged fit is"
        )
    if spec.dtype == "auto":
        # Decided here, once, so that every worker computes in the same dtype: workers' hardware
        # is not known to the driver, so "auto" means bfloat16 on GPU workers, float32 on CPUs
        # (a recipe whose fit fixes its dtype has it already).
        spec = dataclasses.replace(spec, dtype="bfloat16" if gpus_per_worker else "float32")
    from .config import VERSION

    settings = spec.to_dict() | {"cpembed": VERSION}
    shards, empty, described = plan(list(inputs), text_field, id_field, rows_per_shard)
    manifest = {
        "format": FORMAT_VERSION,
        "encoder": settings,
        "inputs": described,
        "text_field": text_field,
        "id_field": id_field,
        "include_text": include_text,
        "rows_per_shard": rows_per_shard,
        "shards": len(shards),
        "rows": sum(s.rows for s in shards),
        "empty_inputs": empty,
    }
    done = _prepare_output(output, manifest)
    pending = [s for s in shards if s.name not in done]
    started = time.perf_counter()
    results: list[dict] = []
    if pending:
        if not ray.is_initialized():
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
        _check_resources(ray.cluster_resources(), cpus_per_worker, gpus_per_worker)
        items = [{"shard": json.dumps(asdict(s))} for s in pending]
        dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            EmbedShards,
            fn_constructor_kwargs={
                "settings": settings,
                "output": output,
                "text_field": text_field,
                "id_field": id_field,
                "include_text": include_text,
                "threads": max(1, int(cpus_per_worker)),
                "batch_size": batch_size,
                "device": encoder_options.get("device"),
                "compile": encoder_options.get("compile", "auto"),
            },
            compute=ray.data.ActorPoolStrategy(size=workers),
            batch_size=1,
            num_cpus=cpus_per_worker,
            num_gpus=gpus_per_worker,
            # Ray Data restarts a dead actor and retries its task by default (max_restarts=-1,
            # max_task_retries=-1): write_shard is idempotent, so a retry never duplicates a row.
        )
        results = dataset.take_all()
    seconds = time.perf_counter() - started
    _check_complete(output, shards)
    per_worker: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for r in results:
        per_worker[str(r["worker"])][0] += int(r["rows"])
        per_worker[str(r["worker"])][1] += float(r["seconds"])
    written = sum(1 for r in results if r["written"])
    rows = sum(int(r["rows"]) for r in results if r["written"])
    return Summary(
        rows=manifest["rows"],
        shards=len(shards),
        shards_written=written,
        shards_skipped=len(shards) - written,
        seconds=seconds,
        rows_per_second=rows / seconds if seconds and rows else 0.0,
        per_worker_rows_per_second={w: n / s for w, (n, s) in per_worker.items() if s},
        empty_inputs=empty,
    )


def _workers_can_load(reference: str) -> bool:
    from .spec import CENTER, PACKAGED

    return reference == CENTER or reference.startswith(PACKAGED)


def _check_resources(available: dict, cpus: float, gpus: float) -> None:
    """Fail now, not hang: Ray waits forever for a worker the cluster can never place."""
    if available.get("CPU", 0) < cpus:
        raise InvalidValueError(f"a worker needs {cpus:g} CPU(s) but the cluster has {available.get('CPU', 0):g}")
    if gpus and available.get("GPU", 0) < gpus:
        raise InvalidValueError(
            f"a worker needs {gpus:g} GPU(s) but the cluster has {available.get('GPU', 0):g}: "
            "lower --gpus-per-worker, or run on a cluster with GPUs"
        )


def _check_complete(output: str, shards: list[Shard]) -> None:
    from pyarrow import fs as pafs

    filesystem, folder = _filesystem(output)
    missing = [s.name for s in shards if filesystem.get_file_info(f"{folder}/{s.name}").type != pafs.FileType.File]
    if missing:
        raise RuntimeError(f"{len(missing)} shard(s) were not written ({missing[0]}, ...): run the command again")


def read_embeddings(output: str):
    """All shards of an output folder as one pyarrow Table, in shard order."""
    import pyarrow.parquet as pq
    from pyarrow import fs as pafs

    filesystem, folder = _filesystem(output)
    infos = filesystem.get_file_info(pafs.FileSelector(folder))
    paths = sorted(i.path for i in infos if i.base_name.startswith("shard-") and i.base_name.endswith(".parquet"))
    import pyarrow as pa

    if not paths:  # an output of empty inputs: no shard, an empty table
        return pa.table({"id": pa.array([], pa.string()), "embedding": pa.array([], pa.list_(pa.float32()))})
    return pa.concat_tables([pq.read_table(p, filesystem=filesystem) for p in paths])
