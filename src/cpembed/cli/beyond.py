"""`cpembed eval retrieval | rerank | pairs | cluster | sts-multilingual`: the jobs embeddings are used for.

The data is the beyond-STS folder (`--data DIR`, `CPEMBED_BEYOND_DATA`, or beside the repo); its
README says which splits are for choosing settings (dev) and which for reporting (test).
"""

from __future__ import annotations

from pathlib import Path

import click

from ..evaluation.beyond import TASK_DATA
from .evaluate import embedder, run_settings
from .options import CommaList, apply_options, build_encoder, encoder_options, split_batch_size

_DATA = click.option("--data", type=click.Path(file_okay=False), help="The beyond-STS folder (or CPEMBED_BEYOND_DATA).")
_OUTPUT = click.option("--output", type=click.Path(file_okay=False), help="Write <task>.json and <task>.md here.")
_NO_CACHE = click.option("--no-cache", is_flag=True, help="Do not read or write the embedding cache.")
_ROLE_PROMPTS = [
    click.option("--query-prompt", help="Prompt (name or template) for queries; default: --prompt."),
    click.option("--document-prompt", help="Prompt (name or template) for documents; default: --prompt."),
]


def _role_prompts(command):
    return apply_options(_ROLE_PROMPTS, command)


def _encoder(options: dict, query_prompt=None, document_prompt=None):
    options, batch_size = split_batch_size(options)
    encoder = build_encoder(**options, query_prompt=query_prompt, document_prompt=document_prompt)
    return encoder, batch_size


def _finish(task: str, encoder, batch_size: int, result: dict, rows: list[tuple[str, float]], output) -> None:
    """Print the task's table and, with --output, keep it as JSON and Markdown."""
    from ..evaluation.tables import write_report

    s = encoder.settings()
    report = {"task": task, "settings": run_settings(encoder, batch_size), **_scalars(result)}

    def markdown(_report: dict) -> str:
        lines = [f"{task} — {s.model}, {encoder.prompt.name}, CP {encoder.cp!r}", "", "| metric | value |", "|---|---|"]
        return "\n".join(lines + [f"| {name} | {value:.2f} |" for name, value in rows])

    click.echo(markdown(report))
    if output:
        for path in write_report(report, Path(output), task, markdown):
            click.echo(f"wrote {path}", err=True)


def _scalars(result: dict) -> dict:
    """The result without its per-item arrays (they are for intervals, not for the report file)."""
    kept = {}
    for key, value in result.items():
        if isinstance(value, dict):
            kept[key] = _scalars(value)
        elif isinstance(value, (int, float, str)) or value is None:
            kept[key] = value
    return kept


@click.command(name="retrieval")
@click.option(
    "--split",
    type=click.Choice(["train", "test"]),
    default="test",
    show_default=True,
    help="SciFact queries: train to choose settings, test to report.",
)
@_DATA
@_OUTPUT
@_NO_CACHE
@_role_prompts
@encoder_options
def retrieval(split, data, output, no_cache, query_prompt, document_prompt, **options):
    """SciFact: claims against 5,183 abstracts (title + text), exact cosine over the whole corpus;
    nDCG@10 and recall@100."""
    from ..evaluation.beyond import evaluate_retrieval, find_beyond_dir, load_scifact

    root = find_beyond_dir(data, "retrieval")
    encoder, batch_size = _encoder(options, query_prompt, document_prompt)
    queries = embedder(encoder.for_role("query"), batch_size, use_cache=not no_cache)
    documents = embedder(encoder.for_role("document"), batch_size, use_cache=not no_cache)
    result = evaluate_retrieval(queries, documents, load_scifact(root, split))
    rows = [("nDCG@10", result["ndcg@10"]), ("recall@100", result["recall@100"])]
    _finish("retrieval", encoder, batch_size, result, rows, output)


@click.command(name="rerank")
@click.option("--split", type=click.Choice(["dev", "test"]), default="test", show_default=True)
@_DATA
@_OUTPUT
@_NO_CACHE
@_role_prompts
@encoder_options
def rerank(split, data, output, no_cache, query_prompt, document_prompt, **options):
    """WikiQA: each question's candidate sentences ranked by cosine; MAP and MRR@10."""
    from ..evaluation.beyond import evaluate_rerank, find_beyond_dir, load_wikiqa

    root = find_beyond_dir(data, "rerank")
    encoder, batch_size = _encoder(options, query_prompt, document_prompt)
    queries = embedder(encoder.for_role("query"), batch_size, use_cache=not no_cache)
    documents = embedder(encoder.for_role("document"), batch_size, use_cache=not no_cache)
    result = evaluate_rerank(queries, documents, load_wikiqa(root, split))
    _finish("rerank", encoder, batch_size, result, [("MAP", result["map"]), ("MRR@10", result["mrr@10"])], output)


@click.command(name="pairs")
@_DATA
@_OUTPUT
@_NO_CACHE
@encoder_options
def pairs(data, output, no_cache, **options):
    """TwitterURLCorpus: paraphrase or not, scored by cosine; average precision, and accuracy and F1
    at their best thresholds (test only: never choose settings on it)."""
    from ..evaluation.beyond import evaluate_pairs, find_beyond_dir, load_twitter_url

    root = find_beyond_dir(data, "pairs")
    encoder, batch_size = _encoder(options)
    first, second, labels = load_twitter_url(root)
    result = evaluate_pairs(embedder(encoder, batch_size, use_cache=not no_cache), first, second, labels)
    rows = [("AP", result["ap"]), ("accuracy", result["accuracy"]), ("F1", result["f1"])]
    _finish("pairs", encoder, batch_size, result, rows, output)


@click.command(name="cluster")
@click.option("--seeds", type=click.IntRange(min=1), default=10, show_default=True, help="k-means runs.")
@_DATA
@_OUTPUT
@_NO_CACHE
@encoder_options
def cluster(seeds, data, output, no_cache, **options):
    """20 Newsgroups subject lines: k-means with k = 20; V-measure, mean and spread over the seeds."""
    from ..evaluation.beyond import evaluate_clustering, find_beyond_dir, load_20ng

    root = find_beyond_dir(data, "cluster")
    encoder, batch_size = _encoder(options)
    texts, labels = load_20ng(root)
    result = evaluate_clustering(embedder(encoder, batch_size, use_cache=not no_cache), texts, labels, seeds)
    _finish(
        "cluster", encoder, batch_size, result, [("V-measure", result["v_measure"]), ("std", result["std"])], output
    )


@click.command(name="sts-multilingual")
@click.option("--split", type=click.Choice(["dev", "test"]), default="test", show_default=True)
@click.option("--languages", type=CommaList(), default="en,de,es,fr,it,nl,pl,pt,ru,zh,ja", show_default=True)
@_DATA
@_OUTPUT
@_NO_CACHE
@encoder_options
def sts_multilingual(split, languages, data, output, no_cache, **options):
    """stsb-multi-mt: STS Benchmark in 11 languages; Spearman x100 per language and the mean."""
    from ..evaluation.beyond import LANGUAGES, evaluate_sts_multilingual, find_beyond_dir

    unknown = sorted(set(languages) - set(LANGUAGES))
    if unknown:
        raise click.UsageError(f"unknown language(s) {', '.join(unknown)}: choose from {', '.join(LANGUAGES)}")
    root = find_beyond_dir(data, "sts-multilingual")
    encoder, batch_size = _encoder(options)
    embed = embedder(encoder, batch_size, use_cache=not no_cache)
    result = evaluate_sts_multilingual(embed, root, languages, split)
    rows = [(lang, found["spearman"]) for lang, found in result["languages"].items()] + [("mean", result["mean"])]
    _finish("sts-multilingual", encoder, batch_size, result, rows, output)


COMMANDS = (retrieval, rerank, pairs, cluster, sts_multilingual)

for _command in COMMANDS:  # every command's help says what it reads, its layout and where to get it
    _command.help += f"\n\nData (--data DIR, or CPEMBED_BEYOND_DATA): {TASK_DATA[_command.name].describe()}."
