"""Semantic textual similarity: cosine of the two embeddings, Spearman x100 against gold scores.

STS12-16 report the Spearman of all of a year's scored pairs pooled (SentEval's "all"), with
each subset's value beside it; STS-B and SICK-R use their test splits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..errors import InvalidValueError
from .data import STS_YEARS, Pairs, find_raw_stsb_dir, load_raw_stsb, load_sick, load_sts_year, load_stsb
from .metrics import paired_cosine, pearson, spearman

Embed = Callable[[list[str]], np.ndarray]

# The seven tasks of the field's standard table, in its order.
STS_TASKS = ("STS12", "STS13", "STS14", "STS15", "STS16", "STSBenchmark", "SICKRelatedness")
# Extra tasks: raw (untokenized, cased) STS-B, read from the raw release's folder.
RAW_TASKS = ("STSBenchmark-raw",)


def load_task(task: str, data_dir: Path | None, raw_dir: Path | None = None) -> dict[str, Pairs]:
    """The scored pairs of a task, by subset (one subset, "test", for STS-B and SICK-R)."""
    if task in STS_YEARS:
        return load_sts_year(data_dir, task)
    if task == "STSBenchmark":
        return {"test": load_stsb(data_dir, "test")}
    if task == "SICKRelatedness":
        return {"test": load_sick(data_dir, "test")}
    if task == "STSBenchmark-raw":
        return {"test": load_raw_stsb(find_raw_stsb_dir(raw_dir), "test")}
    raise InvalidValueError(f"unknown STS task {task!r}: choose from {', '.join(STS_TASKS + RAW_TASKS)}")


def score_pairs(embed: Embed, pairs: Pairs) -> dict[str, float]:
    """Spearman and Pearson (x100) of cosine similarities against the gold scores."""
    cos = paired_cosine(embed(pairs.sentences1), embed(pairs.sentences2))
    return {"spearman": 100 * spearman(cos, pairs.scores), "pearson": 100 * pearson(cos, pairs.scores), "n": len(pairs)}


def precomputed_embed(sentences: list[str], vectors: np.ndarray) -> Embed:
    """An embed function that serves already computed rows."""
    row = {sentence: i for i, sentence in enumerate(sentences)}
    return lambda wanted: vectors[[row[s] for s in wanted]]


def evaluate_sts(
    embed: Embed,
    tasks: Sequence[str] = STS_TASKS,
    data_dir: Path | None = None,
    raw_dir: Path | None = None,
) -> dict:
    """Score `embed` on STS tasks; returns per-task results and the average Spearman.

    `embed` is any function from a list of sentences to an `(n, d)` array, so a baseline
    encoder can be scored exactly like cpembed. Each task's sentences are embedded in one
    call (unique sentences only), which lets a cache and length-sorted batching do their work.
    """
    results = {}
    for task in tasks:
        started = time.perf_counter()
        subsets = load_task(task, data_dir, raw_dir)
        pooled = Pairs.concatenate(list(subsets.values()))
        unique = list(dict.fromkeys(pooled.sentences1 + pooled.sentences2))
        lookup = precomputed_embed(unique, embed(unique))
        result = score_pairs(lookup, pooled)
        if len(subsets) > 1:
            result["subsets"] = {name: score_pairs(lookup, pairs)["spearman"] for name, pairs in subsets.items()}
        result["seconds"] = time.perf_counter() - started
        results[task] = result
    return summarize_sts(results)


def summarize_sts(results: dict[str, dict]) -> dict:
    """Per-task results with the average over the standard tasks among them."""
    standard = [t for t in STS_TASKS if t in results]
    average = float(np.mean([results[t]["spearman"] for t in standard])) if standard else None
    return {"tasks": results, "average": average, "average_over": standard}


def evaluate_sts_settings(
    encoder,
    settings: Sequence,
    tasks: Sequence[str] = STS_TASKS,
    data_dir: Path | None = None,
    raw_dir: Path | None = None,
    batch_size: int = 16,
    show_progress_bar: bool | None = None,
    cache=None,
) -> list[dict]:
    """`evaluate_sts` for several CP settings (None = baseline) from one pass over the sentences.

    Every setting shares the model, prompt and output layer of `encoder`, so the baseline row is
    always at the same output layer and dtype as the CP rows. With `cache` (an `EmbeddingCache`), an
    interrupted pass resumes where it stopped.
    """
    from .controls import encode_with_controls

    unique: dict[str, None] = {}
    for task in tasks:
        for pairs in load_task(task, data_dir, raw_dir).values():
            unique.update(dict.fromkeys(pairs.sentences1 + pairs.sentences2))
    sentences = list(unique)
    embeddings = encode_with_controls(encoder, sentences, settings, batch_size, show_progress_bar, cache)
    return [evaluate_sts(precomputed_embed(sentences, e), tasks, data_dir, raw_dir) for e in embeddings]
