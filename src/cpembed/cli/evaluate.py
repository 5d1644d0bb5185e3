"""`cpembed eval`, `search` and `report`: measuring on SentEval-format data."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import click

from ..config import NORMS
from ..prompts import IRRELEVANT
from .options import (
    DATA_OPTION,
    CommaList,
    apply_options,
    build_encoder,
    embedding_options,
    encoder_options,
    search_options,
    split_batch_size,
    wording_search_options,
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


@click.group()
def search() -> None:
    """Choose CP settings on STS-B dev (never a test split)."""


def _search_encoder(options: dict):
    site, aux = options.pop("site"), options.pop("aux_template")
    options, batch_size = split_batch_size(options)
    encoder = build_encoder(no_cp=True, layer=None, alpha=None, norm=None, site=None, aux_template=None, **options)
    return encoder, batch_size, site or "heads", aux or IRRELEVANT


def _apply_rank_options(command):
    return apply_options(_RANK_OPTIONS, command)


def _search_data_dir(data, rank_by: str):
    """The SentEval folder; optional when ranking by raw dev alone."""
    from ..evaluation.data import DataNotFoundError, find_data_dir

    try:
        return find_data_dir(data)
    except DataNotFoundError:
        if rank_by == "raw" and not data:
            return None
        raise


def _finish_search(result, encoder, output, stem: str, plot, intervals: bool = False) -> None:
    from ..evaluation.tables import search_markdown

    report = {
        "settings": run_settings(encoder, None),
        "search": stem,
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
        with (folder / f"{stem}.csv").open("w", newline="", encoding="utf-8") as f:
            # Every record's keys: the baseline's row has no interval columns.
            fields = dict.fromkeys(key for record in report["records"] for key in record)
            writer = csv.DictWriter(f, fieldnames=list(fields))
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
    click.option(
        "--intervals",
        is_flag=True,
        help="Add each setting's 95% paired-bootstrap interval of its difference from the baseline on each "
        "split (2,000 resamples; a few seconds per setting).",
    ),
]


@search.command(name="grid")
@click.option("--layers", type=CommaList(click.INT), default="3,4,5,6,7", show_default=True, help="Layers l (1-based).")
@click.option(
    "--alphas", type=CommaList(click.FLOAT), default="0.5,1,2,3,4", show_default=True, help="NS coefficients."
)
@click.option("--norms", type=CommaList(click.Choice(NORMS)), default="scale,recover", show_default=True)
@DATA_OPTION
@click.option("--output", type=click.Path(file_okay=False), help="Write grid.csv, grid.json and grid.png here.")
@_apply_rank_options
@search_options
def search_grid_command(layers, alphas, norms, data, output, rank_by, raw_data, intervals, **options):
    """Spearman on STS-B dev over l x alpha x {NS, NR}, plus the baseline, in one pass."""
    from ..evaluation.plots import grid_heatmap
    from ..evaluation.search import search_grid

    data_dir = _search_data_dir(data, rank_by)
    encoder, batch_size, site, aux = _search_encoder(options)
    result = search_grid(
        encoder,
        data_dir,
        rank_by=rank_by,
        raw_dir=Path(raw_data) if raw_data else None,
        layers=layers,
        alphas=alphas,
        norms=norms,
        site=site,
        aux_template=aux,
        batch_size=batch_size,
    )
    _finish_search(result, encoder, output, "grid", grid_heatmap, intervals)


@search.command(name="layers")
@click.option("--alpha", type=float, default=2.0, show_default=True)
@click.option("--norm", type=click.Choice(NORMS), default="scale", show_default=True)
@DATA_OPTION
@click.option("--output", type=click.Path(file_okay=False), help="Write layers.csv, layers.json and layers.png here.")
@search_options
def search_layers_command(alpha, norm, data, output, **options):
    """Spearman on STS-B dev for CP at every layer up to the output layer, at a fixed alpha."""
    from ..evaluation.data import find_data_dir
    from ..evaluation.plots import layer_sweep_plot
    from ..evaluation.search import sweep_layers

    data_dir = find_data_dir(data)
    encoder, batch_size, site, aux = _search_encoder(options)
    result = sweep_layers(encoder, data_dir, alpha=alpha, norm=norm, site=site, batch_size=batch_size, aux_template=aux)
    _finish_search(result, encoder, output, "layers", layer_sweep_plot)


@search.command(name="aux")
@click.option("--layer", type=int, required=True, help="Intervention layer l (1-based).")
@click.option("--alpha", type=float, default=2.0, show_default=True)
@click.option("--norm", type=click.Choice(NORMS), default="scale", show_default=True)
@click.option("--template", "templates", multiple=True, help="NAME=TEMPLATE, an extra auxiliary wording (repeatable).")
@DATA_OPTION
@click.option("--output", type=click.Path(file_okay=False), help="Write aux.csv and aux.json here.")
@wording_search_options
def search_aux_command(layer, alpha, norm, templates, data, output, **options):
    """Spearman on STS-B dev for each auxiliary wording (irrelevant, redundant, background, ...)."""
    from ..evaluation.data import find_data_dir
    from ..evaluation.search import ablate_aux_templates

    extra = {}
    for item in templates:
        name, sep, template = item.partition("=")
        if not sep:
            raise click.UsageError(f"--template takes NAME=TEMPLATE, got {item!r}")
        extra[name] = template
    if options.get("aux_template"):  # the wordings are what this search varies
        raise click.UsageError(
            "search aux compares wordings: give yours as --template NAME=TEMPLATE, not --aux-template"
        )
    data_dir = find_data_dir(data)
    encoder, batch_size, site, _ = _search_encoder(options)
    result = ablate_aux_templates(encoder, data_dir, layer, alpha, norm, extra, batch_size, site=site)
    _finish_search(result, encoder, output, "aux", None)


@search.command(name="aux-prompt")
@click.option("--layers", type=CommaList(click.INT), default="3,4,5,6,7", show_default=True, help="Layers l (1-based).")
@click.option(
    "--alphas", type=CommaList(click.FLOAT), default="0.5,1,2,3,4", show_default=True, help="NS coefficients."
)
@click.option("--top", type=int, default=3, show_default=True, help="Candidates of the screen that get the grid.")
@DATA_OPTION
@click.option("--raw-data", type=click.Path(file_okay=False), help="Folder of the raw STS-B release.")
@click.option("--output", type=click.Path(file_okay=False), help="Write aux_prompt.json here.")
@click.option(
    "--beyond-data",
    type=click.Path(file_okay=False),
    help="Then check the winner on the beyond-STS dev splits (SciFact train, stsb-multi-mt dev) in this folder.",
)
@click.option("--beyond", "beyond_check", is_flag=True, help="The same check, with the beyond-STS data found as usual.")
@wording_search_options
def search_aux_prompt_command(layers, alphas, top, data, raw_data, output, beyond_data, beyond_check, **options):
    """Search auxiliary prompts (a grammar of wordings) on both STS-B dev splits: NR screen, then the grid."""
    from ..cache import EmbeddingCache
    from ..evaluation.aux_search import check_on_beyond_dev, search_aux_prompts
    from ..evaluation.beyond import find_beyond_dir
    from ..evaluation.data import find_data_dir
    from ..evaluation.search import label

    if options.get("aux_template"):
        raise click.UsageError("search aux-prompt generates the wordings itself: leave out --aux-template")
    beyond_root = find_beyond_dir(beyond_data) if beyond_data or beyond_check else None  # before hours of search
    encoder, batch_size, site, _ = _search_encoder(options)
    found = search_aux_prompts(
        encoder,
        find_data_dir(data),
        Path(raw_data) if raw_data else None,
        layers=layers,
        alphas=alphas,
        top=top,
        site=site,
        batch_size=batch_size,
        cache=EmbeddingCache(),
    )
    grid = found.grid
    ranked = sorted(zip(grid.scores, grid.labels, strict=True), reverse=True)
    click.echo(f"baseline {grid.baseline:.2f} (mean of STS-B dev and raw dev); the ten best of the grid:")
    for score, name in ranked[:10]:
        click.echo(f"  {score:6.2f}  {name}")
    low, high = found.interval
    click.echo(
        f"best: {found.best_name}, {label(found.best)}; against the paper's prompt at its best "
        f"({label(found.paper_best)}), raw STS-B dev 95% interval [{low:+.2f}, {high:+.2f}]"
    )
    report = {"settings": run_settings(encoder, None)} | found.records()
    if beyond_root is not None:
        check = check_on_beyond_dev(encoder, beyond_root, found.paper_best, found.best, batch_size, EmbeddingCache())
        report["beyond_dev"] = check.records()
        for task, row in check.tasks.items():
            low, high = row["interval"]
            click.echo(
                f"{task}: baseline {row['baseline']:.2f}, paper's prompt {row['paper']:.2f}, best {row['best']:.2f} "
                f"({row['best - paper']:+.2f}, 95% interval [{low:+.2f}, {high:+.2f}])"
            )
    if output:
        _write_json(Path(output) / "aux_prompt.json", report)


@search.command(name="controls")
@click.option("--layer", type=int, required=True, help="Intervention layer l (1-based).")
@click.option("--alpha", type=float, default=2.0, show_default=True)
@DATA_OPTION
@click.option("--output", type=click.Path(file_okay=False), help="Write controls.csv and controls.json here.")
@_apply_rank_options
@search_options
def search_controls_command(layer, alpha, data, output, rank_by, raw_data, intervals, **options):
    """Spearman on STS-B dev for CP at (l, alpha) beside its controls: zero, scale, shuffle, mean."""
    from ..evaluation.search import compare_controls

    data_dir = _search_data_dir(data, rank_by)
    encoder, batch_size, site, aux = _search_encoder(options)
    raw_dir = Path(raw_data) if raw_data else None
    result = compare_controls(encoder, data_dir, layer, alpha, batch_size, site, aux, rank_by, raw_dir)
    _finish_search(result, encoder, output, "controls", None, intervals)


@search.command(name="demonstrations")
@click.option("--candidates", type=int, default=8, show_default=True, help="Tuning sentences to try as the example.")
@click.option("--seed", type=int, default=0, show_default=True, help="Which tuning sentences are drawn.")
@DATA_OPTION
@click.option("--raw-data", type=click.Path(file_okay=False), help="Folder of the raw STS-B release.")
@click.option(
    "--beyond-data", type=click.Path(file_okay=False), help="The beyond-STS folder, for its tuning splits' sentences."
)
@click.option(
    "--max-pairs", type=int, help="Score on this many pairs of each dev split (a fixed draw), to screen fast."
)
@click.option("--output", type=click.Path(file_okay=False), help="Write demonstrations.json here.")
@embedding_options
def search_demonstrations_command(candidates, seed, data, raw_data, beyond_data, max_pairs, output, **options):
    """One in-context example for the prompt, tried on both STS-B dev splits against none.

    Each candidate is a tuning sentence (STS-B train, 20NG train, PIT2015 dev, SciFact train
    claims) with the model's own one-word answer; the spread over candidates says whether
    searching pays. No test split is read.
    """
    from ..cache import EmbeddingCache
    from ..evaluation.beyond import find_beyond_dir
    from ..evaluation.corpus import tuning_corpus
    from ..evaluation.data import find_data_dir
    from ..evaluation.demonstrations import answer_word, search_demonstrations
    from ..evaluation.search import dev_splits

    if candidates < 1:
        raise click.UsageError("--candidates must be at least 1")
    data_dir, root = find_data_dir(data), find_beyond_dir(beyond_data)
    splits = dev_splits(data_dir, "mean", Path(raw_data) if raw_data else None)
    if max_pairs is not None:
        if max_pairs < 3:
            raise click.UsageError("--max-pairs must be at least 3")
        splits = {name: pairs.sample(max_pairs) for name, pairs in splits.items()}
    options, batch_size = split_batch_size(options)
    encoder = build_encoder(**options)
    pool = tuning_corpus(data_dir, root, per_source=candidates, seed=seed)
    random.Random(seed).shuffle(pool)  # candidates from every source, not the first source's alone
    pairs = []
    for sentence in pool:
        if len(pairs) == candidates:
            break
        if (word := answer_word(encoder, sentence)) is not None:
            pairs.append((sentence, word))
    found = search_demonstrations(encoder, splits, pairs, batch_size, EmbeddingCache())
    records = found.records()
    click.echo(f"no example: {records['none']['score']:.2f} (mean of STS-B dev and raw dev)")
    for candidate in sorted(records["candidates"], key=lambda c: -c["score"]):
        click.echo(f"  {candidate['score']:6.2f}  {candidate['sentence']!r} -> {candidate['answer']}")
    spread = records["spread"]
    click.echo(
        f"spread over {len(pairs)} candidates: {spread['min']:.2f} .. {spread['median']:.2f} (median) .. "
        f"{spread['max']:.2f}; {spread['share_above_none']:.0%} beat no example"
    )
    if output:
        _write_json(Path(output) / "demonstrations.json", {"settings": run_settings(encoder, batch_size)} | records)


def _write_json(path: Path, report: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=float) + "\n", encoding="utf-8")
    click.echo(f"wrote {path}", err=True)
