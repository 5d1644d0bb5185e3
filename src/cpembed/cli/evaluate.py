"""`cpembed eval`: measuring on SentEval-format data, and CP beside its controls."""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import click

from ..prompts import IRRELEVANT
from .options import (
    DATA_OPTION,
    CommaList,
    apply_options,
    build_encoder,
    encoder_options,
    search_options,
    split_batch_size,
)


@click.group(name="eval")
def eval_group() -> None:
    """Score an encoder on public evaluation sets: STS and transfer (SentEval's data), retrieval,
    reranking, pairs, clustering and multilingual STS (the beyond-STS folder). Each command's help
    names the files it reads and where to get them."""


@eval_group.command(name="sts")
@click.option(
    "--tasks",
    type=CommaList(),
    default=",".join(("STS12", "STS13", "STS14", "STS15", "STS16", "STSBenchmark", "SICKRelatedness")),
    show_default=True,
    help="Comma-separated; STSBenchmark-raw adds the raw-text STS-B test split.",
)
@DATA_OPTION
@click.option("--raw-data", type=click.Path(file_okay=False), help="Folder of the raw STS-B release (sts-test.csv).")
@click.option("--output", type=click.Path(file_okay=False), help="Write sts.json and sts.md here.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the embedding cache.")
@encoder_options
def eval_sts(tasks, data, raw_data, output, no_cache, **options):
    """Spearman x100 of cosine similarity on STS12-16, STS-B test and SICK-R test.

    Data (--data DIR, or CPEMBED_DATA): SentEval's downstream/ folder (STS/STS12-en-test/ ...,
    STS/STSBenchmark/sts-test.csv, SICK/SICK_test_annotated.txt), made by SentEval's
    data/downstream/get_transfer_data.bash; STSBenchmark-raw reads sts-test.csv of the STS Benchmark
    release (--raw-data DIR, or CPEMBED_RAW_DATA)."""
    from ..evaluation.data import find_data_dir
    from ..evaluation.sts import evaluate_sts
    from ..evaluation.tables import sts_markdown, write_report

    options, batch_size = split_batch_size(options)
    task_list = tasks
    needs_senteval = any(not t.endswith("-raw") for t in task_list)
    data_dir = find_data_dir(data) if needs_senteval else None
    encoder = build_encoder(**options)
    embed = embedder(encoder, batch_size, use_cache=not no_cache)
    results = evaluate_sts(embed, task_list, data_dir, Path(raw_data) if raw_data else None)
    report = {"settings": run_settings(encoder, batch_size), **results}
    click.echo(sts_markdown(report))
    if output:
        for path in write_report(report, Path(output), "sts", sts_markdown):
            click.echo(f"wrote {path}", err=True)


@eval_group.command(name="transfer")
@click.option("--tasks", type=CommaList(), default="MR,CR,SUBJ,MPQA,SST2,TREC,MRPC", show_default=True)
@DATA_OPTION
@click.option("--output", type=click.Path(file_okay=False), help="Write transfer.json and transfer.md here.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the embedding cache.")
@encoder_options
def eval_transfer(tasks, data, output, no_cache, **options):
    """Accuracy of a logistic-regression probe on MR, CR, SUBJ, MPQA, SST-2, TREC and MRPC.

    Data (--data DIR, or CPEMBED_DATA): SentEval's downstream/ folder (MR/, CR/, SUBJ/, MPQA/,
    SST/binary/, TREC/, MRPC/), made by SentEval's data/downstream/get_transfer_data.bash."""
    from ..evaluation.data import find_data_dir
    from ..evaluation.tables import transfer_markdown, write_report
    from ..evaluation.transfer import evaluate_transfer

    options, batch_size = split_batch_size(options)
    data_dir = find_data_dir(data)
    encoder = build_encoder(**options)
    embed = embedder(encoder, batch_size, use_cache=not no_cache)
    results = evaluate_transfer(embed, tasks, data_dir)
    report = {"settings": run_settings(encoder, batch_size), **results}
    click.echo(transfer_markdown(report))
    if output:
        for path in write_report(report, Path(output), "transfer", transfer_markdown):
            click.echo(f"wrote {path}", err=True)


def embedder(encoder, batch_size: int, use_cache: bool):
    """A function sentences -> embeddings, through the on-disk cache unless disabled."""
    from ..cache import EmbeddingCache

    cache = EmbeddingCache() if use_cache else None

    def embed(sentences):
        # The cache keeps the engine's rows; a fitted post-processing is applied to them as `encode` does.
        rows = encoder.encode_settings(
            sentences, [encoder.cp], batch_size=batch_size, show_progress_bar=True, cache=cache
        )[0]
        return encoder.postprocess.apply(rows) if encoder.postprocess else rows

    return embed


def run_settings(encoder, batch_size: int | None) -> dict:
    import platform

    import torch
    import transformers

    return {
        **encoder.settings().as_dict(),
        "prompt": encoder.prompt.name,
        "cp": dataclasses.asdict(encoder.cp) if encoder.cp else None,
        "recipe": encoder.recipe_name,
        "postprocess": encoder.postprocess.describe() if encoder.postprocess else None,
        "batch_size": batch_size,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        },
    }


_RANK_OPTIONS = [
    click.option(
        "--rank-by",
        type=click.Choice(["senteval", "raw", "mean"]),
        default="senteval",
        show_default=True,
        help="Rank by SentEval's STS-B dev, the raw release's dev split, or their mean (raw and mean score both).",
    ),
    click.option("--raw-data", type=click.Path(file_okay=False), help="Folder of the raw STS-B release."),
    click.option(
        "--intervals",
        is_flag=True,
        help="Add each setting's 95% paired-bootstrap interval of its difference from the baseline on each "
        "split (2,000 resamples; a few seconds per setting).",
    ),
]


@eval_group.command(name="controls")
@click.option("--layer", type=int, required=True, help="Intervention layer l (1-based).")
@click.option("--alpha", type=float, default=2.0, show_default=True)
@DATA_OPTION
@click.option("--output", type=click.Path(file_okay=False), help="Write controls.csv and controls.json here.")
@functools.partial(apply_options, _RANK_OPTIONS)
@search_options
def eval_controls(layer, alpha, data, output, rank_by, raw_data, intervals, **options):
    """Spearman on STS-B dev for CP at (l, alpha) beside its controls: zero, scale, shuffle, mean.

    The controls ask whether CP's gain needs the contrast of the two prompts; docs/guide/recipes.md
    has what each one keeps and removes. No test split is read."""
    from ..evaluation.data import DataNotFoundError, find_data_dir
    from ..evaluation.search import compare_controls
    from ..evaluation.tables import search_markdown

    try:
        data_dir = find_data_dir(data)
    except DataNotFoundError:
        if rank_by != "raw" or data:
            raise
        data_dir = None  # ranking by raw dev alone needs no SentEval folder
    site, aux = options.pop("site") or "heads", options.pop("aux_template") or IRRELEVANT
    options, batch_size = split_batch_size(options)
    encoder = build_encoder(no_cp=True, layer=None, alpha=None, norm=None, site=None, aux_template=None, **options)
    raw_dir = Path(raw_data) if raw_data else None
    result = compare_controls(encoder, data_dir, layer, alpha, batch_size, site, aux, rank_by, raw_dir)
    report = {
        "settings": run_settings(encoder, None),
        "search": "controls",
        "seconds": result.seconds,
        "ranked_by": result.split,
        "splits": list(result.splits) if len(result.splits) > 1 else [],
        "records": result.records(),
    }
    if intervals:
        report["interval_splits"] = list(result.splits)
        for name in result.splits:
            for record, bounds in zip(report["records"], result.intervals(name), strict=True):
                record |= {f"{name} low": round(bounds[0], 4), f"{name} high": round(bounds[1], 4)} if bounds else {}
    click.echo(search_markdown(report))
    if output:
        import csv

        folder = Path(output)
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "controls.csv").open("w", newline="", encoding="utf-8") as f:
            # Every record's keys: the baseline's row has no interval columns.
            fields = dict.fromkeys(key for record in report["records"] for key in record)
            writer = csv.DictWriter(f, fieldnames=list(fields))
            writer.writeheader()
            writer.writerows(report["records"])
        (folder / "controls.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        click.echo(f"wrote {folder / 'controls.csv'}, {folder / 'controls.json'}", err=True)


@click.command(hidden=True, context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def search(args) -> None:
    """The searches of earlier versions, now `tune` and `eval controls`: says so instead of guessing."""
    raise click.UsageError(
        "`cpembed search` is gone: `cpembed tune MODEL --job sts` chooses a setting (prompts, CP layer, alpha "
        "and norm, post-processing; --demonstrations N and --aux-prompts N add in-context examples and auxiliary "
        "wordings), and `cpembed eval controls --layer L` scores CP beside its controls"
    )
