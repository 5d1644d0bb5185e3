"""The `cpembed` command: parse flags, call the library, print."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import sys
from pathlib import Path

import click

from . import __version__
from .config import INTERVENTIONS, NORMS, PAPER_CP, default_cp
from .errors import CPEmbedError
from .models import BUILTIN_MODELS, DEFAULT_MODEL, _cache_entry, installed_parts
from .prompts import IRRELEVANT, PROMPTS, resolve_prompt
from .sites import SITES


class _Group(click.Group):
    """Turns cpembed's and argument errors into one clean line instead of a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (CPEmbedError, ValueError, TypeError, OSError) as error:
            raise click.ClickException(str(error)) from error


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="cpembed")
def main() -> None:
    """Sentence embeddings from decoder-only LLMs, with Contrastive Prompting."""
    logging.basicConfig(level=logging.WARNING, format="cpembed: %(message)s")
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # one bar per weight load is noise on a CLI


_MODEL_OPTIONS = [
    click.option(
        "--model",
        default=DEFAULT_MODEL,
        show_default=True,
        help="Built-in name (see `cpembed models`), a model folder, or a .gguf file.",
    ),
    click.option(
        "--prompt",
        default="prompteol",
        show_default=True,
        help=f"{', '.join(PROMPTS)}, or a template with one {{sentence}}.",
    ),
    click.option(
        "--output-layer", type=int, help="Index into hidden_states (-1 = final normed state); default per prompt."
    ),
    click.option(
        "--dtype",
        type=click.Choice(["auto", "float32", "bfloat16"]),
        default="auto",
        show_default=True,
        help="auto = bfloat16 on hardware that computes it natively (recent GPUs, AVX512-BF16/AMX CPUs), else float32.",
    ),
    click.option("--device", help="cpu, cuda, cuda:1, ... (default: CUDA if available)."),
    click.option(
        "--max-length",
        type=int,
        default=512,
        show_default=True,
        help="Token budget of one prompt; longer sentences are cut, never the template.",
    ),
    click.option(
        "--batch-size",
        type=int,
        default=32,
        show_default=True,
        help="Sentences per forward batch (serve: the most a gathered batch holds).",
    ),
]
_SITE_OPTIONS = [
    click.option("--site", type=click.Choice(SITES), help="Where CP reads and writes."),
    click.option("--aux-template", help="Auxiliary prompt with one {sentence}."),
]
_CP_OPTIONS = [
    click.option("--no-cp", is_flag=True, help="Plain prompt embeddings, without Contrastive Prompting."),
    click.option("--layer", type=int, help="CP intervention layer l, 1-based as in the paper."),
    click.option("--alpha", type=float, help="NS coefficient (ignored by --norm recover)."),
    click.option("--norm", type=click.Choice(NORMS), help="scale = NS, recover = NR."),
    click.option(
        "--intervention",
        type=click.Choice(INTERVENTIONS),
        help="contrast = CP (default); zero, scale, shuffle, mean = controls (see README).",
    ),
]


def _apply(options, command):
    return functools.reduce(lambda f, option: option(f), reversed(options), command)


def encoder_options(command):
    """The flags every command that encodes shares."""
    return _apply(_MODEL_OPTIONS + _CP_OPTIONS + _SITE_OPTIONS, command)


def search_options(command):
    """Encoder flags without the CP setting itself, which a search varies."""
    return _apply(_MODEL_OPTIONS + _SITE_OPTIONS, command)


def build_encoder(**options):
    """A CPEncoder from the encoder flags (CP flags override the defaults table's entry)."""
    from .encoder import CPEncoder  # imports torch: keep `cpembed --help` fast

    return CPEncoder(**_encoder_options(**{"intervention": None, **options}))


def _split(options: dict) -> tuple[dict, int]:
    batch_size = options.pop("batch_size")
    return options, batch_size


@main.command(short_help="Embed files of sentences to .npy/.jsonl, or to Parquet shards on a Ray cluster.")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "-o",
    "--output",
    default="-",
    show_default=True,
    help="An .npy file, a .jsonl file, or - for JSON lines on stdout; with --engine ray, a folder.",
)
@click.option("--normalize", is_flag=True, help="[local] L2-normalize the embeddings.")
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
def encode(inputs, output, normalize, engine, **options):
    """Embed INPUTS, one sentence a line (- for stdin); every line gets a row.

    Locally, one file is read and written in chunks, so memory stays flat however long it is;
    an output file appears only once it is complete. With --engine ray, text, JSONL or Parquet
    files (local paths or any filesystem URI pyarrow reads) become Parquet shards with id,
    embedding and optionally text, plus a manifest; a rerun resumes where a crash stopped.
    """
    ray_options = {k: options.pop(k) for k in list(options) if k in _RAY_FLAGS}
    if engine == "ray":
        _encode_on_ray(inputs, output, normalize, ray_options, options)
        return
    given = [f"--{k.replace('_', '-')}" for k, v in ray_options.items() if v != _RAY_FLAGS[k]]
    if given:
        raise click.UsageError(f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} only to --engine ray")
    if len(inputs) != 1:
        raise click.UsageError("the local engine embeds one input file; use --engine ray for several")
    if inputs[0].lower().endswith(".parquet"):
        raise click.UsageError("the local engine reads text, one sentence a line; read Parquet with --engine ray")
    if inputs[0].lower().endswith((".jsonl", ".json")):
        logging.getLogger("cpembed").warning(
            "%s: every line is embedded as it is, JSON and all; use --engine ray --text-field to embed a field",
            inputs[0],
        )
    from .streaming import count_checked_lines, encode_file, seekable_input

    options, batch_size = _split(options)
    _check_output(output)  # before minutes of work, not after
    _exit_cleanly_on_sigterm()
    with seekable_input(inputs[0]) as path:
        # Also before loading the model: a bad byte is found first.
        total = count_checked_lines(path, "stdin" if inputs[0] == "-" else inputs[0])
        encoder = build_encoder(**options)
        rows = encode_file(encoder, path, output, batch_size=batch_size, normalize=normalize, total=total)
    where = "stdout" if output == "-" else output
    click.echo(f"{rows} embedding(s) of dimension {encoder.embedding_dimension} -> {where}", err=True)


def _exit_cleanly_on_sigterm() -> None:
    """SIGTERM raises SystemExit like Ctrl-C raises KeyboardInterrupt, so partial outputs are removed."""
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


# Ray-only flags and their defaults.
_RAY_FLAGS = {
    "address": None,
    "workers": 1,
    "cpus_per_worker": 1,
    "gpus_per_worker": 0,
    "text_field": "text",
    "id_field": None,
    "include_text": False,
    "rows_per_shard": 10_000,
}


def _encode_on_ray(inputs, output, normalize, ray_options, options) -> None:
    if normalize:
        raise click.UsageError("--normalize is not available with --engine ray: normalize when you read the shards")
    if output == "-" or output.endswith((".npy", ".jsonl")):
        raise click.UsageError("with --engine ray, --output is a folder for Parquet shards")
    if "-" in inputs:
        raise click.UsageError("with --engine ray, inputs are files (stdin cannot be split across workers)")
    try:
        from .distributed import embed_files
    except ImportError:
        raise click.ClickException("the Ray engine needs Ray Data: pip install 'cpembed[ray]'") from None
    options.pop("batch_size")
    encoder_options = _encoder_options(**options)
    summary = embed_files(list(inputs), output, **ray_options, **encoder_options)
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


def _encoder_options(
    model, prompt, no_cp, layer, alpha, norm, site, aux_template, output_layer, dtype, device, max_length, intervention
) -> dict:
    """CPEncoder's keyword arguments from the encoder flags, without loading the model."""
    given = dict(layer=layer, alpha=alpha, norm=norm, site=site, aux_template=aux_template, intervention=intervention)
    overrides = {k: v for k, v in given.items() if v is not None}
    if no_cp and overrides:
        raise click.UsageError(f"--no-cp cannot be combined with --{', --'.join(overrides).replace('_', '-')}")
    cp = None
    if not no_cp:
        name = resolve_prompt(prompt).name
        base = default_cp(model, name) or (PAPER_CP[name] if overrides else None)
        cp = dataclasses.replace(base, **overrides) if base else None
    return dict(
        model=model, prompt=prompt, cp=cp, output_layer=output_layer, dtype=dtype, device=device, max_length=max_length
    )


def _check_output(output: str) -> None:
    if output == "-":
        return
    path = Path(output)
    if path.suffix not in (".npy", ".jsonl"):
        raise click.UsageError(f"--output must end in .npy or .jsonl (or be -), got {output!r}")
    if not path.parent.resolve().is_dir():
        raise click.UsageError(f"the folder of --output {output!r} does not exist: create it first")


@main.command(short_help="Cosine similarity of two or more sentences.")
@click.argument("sentences", nargs=-1, required=True)
@encoder_options
def similarity(sentences, **options):
    """Cosine similarity of two sentences, or the matrix of several."""
    if len(sentences) < 2:
        raise click.UsageError("give at least two sentences")
    options, batch_size = _split(options)
    encoder = build_encoder(**options)
    embeddings = encoder.encode(list(sentences), batch_size=batch_size)
    matrix = encoder.similarity(embeddings, embeddings)
    if len(sentences) == 2:
        click.echo(f"{matrix[0, 1]:.4f}")
        return
    for i, sentence in enumerate(sentences):
        click.echo(" ".join(f"{x:6.3f}" for x in matrix[i]) + f"  {sentence}")


@main.command(short_help="List the built-in models and how to install them.")
def models():
    """Built-in models: installed or not, size, layers, and the pip command to get each."""
    rows = [("name", "status", "size", "layers", "license")]
    for spec in BUILTIN_MODELS.values():
        if _cache_entry(spec.name, spec.sha256).is_dir():
            status = "ready (cached)"
        elif installed_parts(spec) is not None:
            status = "installed"
        else:
            status = "not installed"
        rows.append((spec.name, status, f"{spec.size_mb} MB", str(spec.num_layers), spec.license))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    click.echo("\nTo install a model:")
    for spec in BUILTIN_MODELS.values():
        click.echo(f"  {spec.name}: {spec.install}")


@main.group(name="eval")
def eval_group() -> None:
    """Evaluate an encoder on SentEval-format data."""


@eval_group.command(name="sts")
@click.option(
    "--tasks",
    default=",".join(("STS12", "STS13", "STS14", "STS15", "STS16", "STSBenchmark", "SICKRelatedness")),
    show_default=True,
    help="Comma-separated; STSBenchmark-raw adds the raw-text STS-B test split.",
)
@click.option(
    "--data", "data", type=click.Path(file_okay=False), help="SentEval 'downstream' folder (or CPEMBED_DATA)."
)
@click.option("--raw-data", type=click.Path(file_okay=False), help="Folder of the raw STS-B release (sts-test.csv).")
@click.option("--output", type=click.Path(file_okay=False), help="Write sts.json and sts.md here.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the embedding cache.")
@encoder_options
def eval_sts(tasks, data, raw_data, output, no_cache, **options):
    """Spearman x100 of cosine similarity on STS12-16, STS-B test and SICK-R test."""
    from .evaluation.data import find_data_dir
    from .evaluation.reports import sts_markdown, write_report
    from .evaluation.sts import evaluate_sts

    options, batch_size = _split(options)
    task_list = [t.strip() for t in tasks.split(",") if t.strip()]
    needs_senteval = any(not t.endswith("-raw") for t in task_list)
    data_dir = find_data_dir(data) if needs_senteval else None
    encoder = build_encoder(**options)
    embed = _embedder(encoder, batch_size, use_cache=not no_cache)
    results = evaluate_sts(embed, task_list, data_dir, Path(raw_data) if raw_data else None)
    report = {"settings": _settings(encoder, batch_size), **results}
    click.echo(sts_markdown(report))
    if output:
        for path in write_report(report, Path(output), "sts", sts_markdown):
            click.echo(f"wrote {path}", err=True)


@eval_group.command(name="transfer")
@click.option("--tasks", default="MR,CR,SUBJ,MPQA,SST2,TREC,MRPC", show_default=True, help="Comma-separated.")
@click.option(
    "--data", "data", type=click.Path(file_okay=False), help="SentEval 'downstream' folder (or CPEMBED_DATA)."
)
@click.option("--output", type=click.Path(file_okay=False), help="Write transfer.json and transfer.md here.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the embedding cache.")
@encoder_options
def eval_transfer(tasks, data, output, no_cache, **options):
    """Accuracy of a logistic-regression probe on MR, CR, SUBJ, MPQA, SST-2, TREC and MRPC."""
    from .evaluation.data import find_data_dir
    from .evaluation.reports import transfer_markdown, write_report
    from .evaluation.transfer import evaluate_transfer

    options, batch_size = _split(options)
    data_dir = find_data_dir(data)
    encoder = build_encoder(**options)
    embed = _embedder(encoder, batch_size, use_cache=not no_cache)
    results = evaluate_transfer(embed, [t.strip() for t in tasks.split(",") if t.strip()], data_dir)
    report = {"settings": _settings(encoder, batch_size), **results}
    click.echo(transfer_markdown(report))
    if output:
        for path in write_report(report, Path(output), "transfer", transfer_markdown):
            click.echo(f"wrote {path}", err=True)


def _embedder(encoder, batch_size: int, use_cache: bool):
    """A function sentences -> embeddings, through the on-disk cache unless disabled."""
    if use_cache:
        from .embedding_cache import CachedEncoder

        cached = CachedEncoder(encoder)
        return lambda sentences: cached.encode(sentences, batch_size=batch_size, show_progress_bar=True)
    return lambda sentences: encoder.encode(sentences, batch_size=batch_size, show_progress_bar=True)


def _settings(encoder, batch_size: int | None) -> dict:
    import platform

    import torch
    import transformers

    from .embedding_cache import encoder_settings

    return {
        **encoder_settings(encoder),
        "batch_size": batch_size,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        },
    }


@main.group()
def search() -> None:
    """Choose CP settings on STS-B dev (never a test split)."""


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _search_encoder(options: dict):
    site, aux = options.pop("site"), options.pop("aux_template")
    options, batch_size = _split(options)
    encoder = build_encoder(no_cp=True, layer=None, alpha=None, norm=None, site=None, aux_template=None, **options)
    return encoder, batch_size, site or "heads", aux or IRRELEVANT


def _apply_rank_options(command):
    return _apply(_RANK_OPTIONS, command)


def _search_data_dir(data, rank_by: str):
    """The SentEval folder; optional when ranking by raw dev alone."""
    from .evaluation.data import DataNotFoundError, find_data_dir

    try:
        return find_data_dir(data)
    except DataNotFoundError:
        if rank_by == "raw" and not data:
            return None
        raise


def _finish_search(result, encoder, output, stem: str, plot) -> None:
    from .evaluation.reports import search_markdown

    report = {
        "settings": _settings(encoder, None),
        "search": stem,
        "seconds": result.seconds,
        "ranked_by": result.split,
        "splits": list(result.splits) if len(result.splits) > 1 else [],
        "records": result.records(),
    }
    click.echo(search_markdown(report))
    if output:
        import csv

        folder = Path(output)
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / f"{stem}.csv").open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(report["records"][0]))
            writer.writeheader()
            writer.writerows(report["records"])
        (folder / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        written = [folder / f"{stem}.csv", folder / f"{stem}.json"]
        if plot is not None:
            title = f"{encoder.lm.name}, {encoder.prompt.name}, output layer {encoder.output_layer}"
            written.append(plot(result, folder / f"{stem}.png", title))
        click.echo("wrote " + ", ".join(str(p) for p in written), err=True)


_RANK_OPTIONS = [
    click.option(
        "--rank-by",
        type=click.Choice(["senteval", "raw", "mean"]),
        default="senteval",
        show_default=True,
        help="Rank by SentEval's STS-B dev, the raw release's dev split, or their mean (raw and mean score both).",
    ),
    click.option("--raw-data", type=click.Path(file_okay=False), help="Folder of the raw STS-B release."),
]


@search.command(name="grid")
@click.option("--layers", default="3,4,5,6,7", show_default=True, help="Intervention layers l (1-based).")
@click.option("--alphas", default="0.5,1,2,3,4", show_default=True, help="NS coefficients.")
@click.option("--norms", default="scale,recover", show_default=True)
@click.option("--data", type=click.Path(file_okay=False), help="SentEval 'downstream' folder (or CPEMBED_DATA).")
@click.option("--output", type=click.Path(file_okay=False), help="Write grid.csv, grid.json and grid.png here.")
@_apply_rank_options
@search_options
def search_grid_command(layers, alphas, norms, data, output, rank_by, raw_data, **options):
    """Spearman on STS-B dev over l x alpha x {NS, NR}, plus the baseline, in one pass."""
    from .plots import grid_heatmap
    from .search import search_grid

    data_dir = _search_data_dir(data, rank_by)
    encoder, batch_size, site, aux = _search_encoder(options)
    result = search_grid(
        encoder,
        data_dir,
        rank_by=rank_by,
        raw_dir=Path(raw_data) if raw_data else None,
        layers=_ints(layers),
        alphas=_floats(alphas),
        norms=[n.strip() for n in norms.split(",")],
        site=site,
        aux_template=aux,
        batch_size=batch_size,
    )
    _finish_search(result, encoder, output, "grid", grid_heatmap)


@search.command(name="layers")
@click.option("--alpha", type=float, default=2.0, show_default=True)
@click.option("--norm", type=click.Choice(NORMS), default="scale", show_default=True)
@click.option("--data", type=click.Path(file_okay=False), help="SentEval 'downstream' folder (or CPEMBED_DATA).")
@click.option("--output", type=click.Path(file_okay=False), help="Write layers.csv, layers.json and layers.png here.")
@search_options
def search_layers_command(alpha, norm, data, output, **options):
    """Spearman on STS-B dev for CP at every layer up to the output layer, at a fixed alpha."""
    from .evaluation.data import find_data_dir
    from .plots import layer_sweep_plot
    from .search import sweep_layers

    data_dir = find_data_dir(data)
    encoder, batch_size, site, _ = _search_encoder(options)
    result = sweep_layers(encoder, data_dir, alpha=alpha, norm=norm, site=site, batch_size=batch_size)
    _finish_search(result, encoder, output, "layers", layer_sweep_plot)


@search.command(name="aux")
@click.option("--layer", type=int, required=True, help="Intervention layer l (1-based).")
@click.option("--alpha", type=float, default=2.0, show_default=True)
@click.option("--norm", type=click.Choice(NORMS), default="scale", show_default=True)
@click.option("--template", "templates", multiple=True, help="NAME=TEMPLATE, an extra auxiliary wording (repeatable).")
@click.option("--data", type=click.Path(file_okay=False), help="SentEval 'downstream' folder (or CPEMBED_DATA).")
@click.option("--output", type=click.Path(file_okay=False), help="Write aux.csv and aux.json here.")
@search_options
def search_aux_command(layer, alpha, norm, templates, data, output, **options):
    """Spearman on STS-B dev for each auxiliary wording (irrelevant, redundant, background, ...)."""
    from .evaluation.data import find_data_dir
    from .search import ablate_aux_templates

    extra = {}
    for item in templates:
        name, sep, template = item.partition("=")
        if not sep:
            raise click.UsageError(f"--template takes NAME=TEMPLATE, got {item!r}")
        extra[name] = template
    data_dir = find_data_dir(data)
    encoder, batch_size, site, _ = _search_encoder(options)
    result = ablate_aux_templates(encoder, data_dir, layer, alpha, norm, extra, batch_size)
    _finish_search(result, encoder, output, "aux", None)


@search.command(name="controls")
@click.option("--layer", type=int, required=True, help="Intervention layer l (1-based).")
@click.option("--alpha", type=float, default=2.0, show_default=True)
@click.option("--data", type=click.Path(file_okay=False), help="SentEval 'downstream' folder (or CPEMBED_DATA).")
@click.option("--output", type=click.Path(file_okay=False), help="Write controls.csv and controls.json here.")
@_apply_rank_options
@search_options
def search_controls_command(layer, alpha, data, output, rank_by, raw_data, **options):
    """Spearman on STS-B dev for CP at (l, alpha) beside its controls: zero, scale, shuffle, mean."""
    from .search import compare_controls

    data_dir = _search_data_dir(data, rank_by)
    encoder, batch_size, site, aux = _search_encoder(options)
    raw_dir = Path(raw_data) if raw_data else None
    result = compare_controls(encoder, data_dir, layer, alpha, batch_size, site, aux, rank_by, raw_dir)
    _finish_search(result, encoder, output, "controls", None)


@main.command(short_help="Serve embeddings over HTTP in OpenAI's /v1/embeddings schema.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback by default; 0.0.0.0 to expose it.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--served-name", help="The model id clients send (default: the --model value).")
@click.option("--api-key", envvar="CPEMBED_API_KEY", help="Require 'Authorization: Bearer KEY' (or CPEMBED_API_KEY).")
@click.option("--max-wait-ms", type=float, default=5.0, show_default=True, help="How long a request waits for others.")
@click.option("--max-inputs", type=click.IntRange(min=1), default=2048, show_default=True, help="Strings per request.")
@click.option(
    "--max-chars", type=click.IntRange(min=1), default=20000, show_default=True, help="Characters per string."
)
@click.option(
    "--max-queue", type=click.IntRange(min=1), default=4096, show_default=True, help="Waiting sentences before 503."
)
@encoder_options
def serve(host, port, served_name, api_key, max_wait_ms, max_inputs, max_chars, max_queue, **options):
    """Serve POST /v1/embeddings, GET /v1/models and GET /health; concurrent requests share batches
    of up to --batch-size sentences. Embeddings are L2-normalized, as OpenAI's are."""
    try:
        from . import service
    except ImportError as error:
        raise click.ClickException(str(error)) from None

    if api_key is not None and not api_key.strip():
        raise click.UsageError("--api-key is empty: give a key, or leave it out to serve without one")
    _check_port_free(host, port)  # before the model loads, not after
    options, batch_size = _split(options)
    encoder = build_encoder(**options)
    limits = service.Limits(
        max_inputs=max_inputs,
        max_chars=max_chars,
        max_batch_size=batch_size,
        max_wait_ms=max_wait_ms,
        max_queue=max_queue,
    )
    app = service.create_app(encoder, served_name or options["model"], limits, api_key)
    click.echo(f"serving {served_name or options['model']} on http://{host}:{port}/v1", err=True)
    service.serve(app, host, port)


def _check_port_free(host: str, port: int) -> None:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            raise click.ClickException(
                f"cannot listen on {host}:{port} ({error.strerror}): choose another --port"
            ) from None


@main.command(short_help="Measure plain, fast CP and naive CP side by side; write docs/PERFORMANCE.md.")
@click.option("--model", default=DEFAULT_MODEL, show_default=True)
@click.option("--output", default="docs/PERFORMANCE.md", show_default=True, help="The Markdown report.")
@click.option("--rounds", type=int, default=2, show_default=True, help="Each configuration's best round counts.")
@click.option("--count", type=int, default=64, show_default=True, help="Sentences per measurement.")
@click.option("--quick", is_flag=True, help="A small run: one prompt, one length, one round.")
def bench(model, output, rounds, count, quick):
    """Throughput (sentences/s) and peak memory of plain, CP fast and CP naive for PromptEOL,
    Knowledge and CK, at several batch sizes and sentence lengths; the grid search against one
    plain pass; bfloat16 against float32; streaming memory. All in one process, interleaved."""
    from . import benchmark
    from .models import load_model

    lm = load_model(model, "float32", "cpu")
    options = {"rounds": rounds, "count": count}
    if quick:
        options |= dict(
            prompts=("prompteol",),
            lengths=(8,),
            batch_sizes=(16,),
            sweep_lengths=(8, 16),
            rounds=1,
            grid_count=16,
            memory_lines=(32, 64),
        )
    result = benchmark.run_benchmark(lm, **options)
    result["command"] = (
        "cpembed bench" + ("" if model == DEFAULT_MODEL else f" --model {model}") + (" --quick" if quick else "")
    )
    target = Path(output)
    folder = target.parent / "performance"
    benchmark.throughput_plot(result, folder / "throughput.png")
    (folder / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    benchmark.render_markdown(target)
    click.echo(target.read_text())
    click.echo(f"wrote {target}", err=True)


@main.command(short_help="Run the reproduction report and write docs/RESULTS.md.")
@click.option("--models", default="smollm2-135m,qwen2.5-coder-0.5b", show_default=True)
@click.option("--prompts", default="prompteol,cot,knowledge,ck", show_default=True)
@click.option("--data", type=click.Path(file_okay=False), help="SentEval 'downstream' folder (or CPEMBED_DATA).")
@click.option("--raw-data", type=click.Path(file_okay=False), help="Folder of the raw STS-B release.")
@click.option("--results", default="docs/results", show_default=True, help="Where each step's JSON is kept.")
@click.option("--markdown", default="docs/RESULTS.md", show_default=True)
@click.option("--batch-size", type=int, default=16, show_default=True)
@click.option("--only-markdown", is_flag=True, help="Rewrite the Markdown from the steps already run.")
def report(models, prompts, data, raw_data, results, markdown, batch_size, only_markdown):
    """Search each model and prompt on STS-B dev, evaluate the chosen settings, write the report.

    Steps already run (their JSON exists) are skipped, so the command resumes after a stop.
    """
    from .evaluation import report as reporting
    from .evaluation.data import find_data_dir, find_raw_stsb_dir

    model_list = [m.strip() for m in models.split(",") if m.strip()]
    prompt_list = [p.strip() for p in prompts.split(",") if p.strip()]
    out = Path(results)
    if not only_markdown:
        reporting.run(model_list, prompt_list, find_data_dir(data), find_raw_stsb_dir(raw_data), out, batch_size)
    reporting.write_markdown(out, Path(markdown), model_list, prompt_list, "make results")
    click.echo(f"wrote {markdown}", err=True)


if __name__ == "__main__":
    sys.exit(main())
