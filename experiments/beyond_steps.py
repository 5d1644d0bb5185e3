"""The report's beyond-STS section: retrieval, reranking, pair classification, clustering and STS
in 11 languages, for the plain prompt embedding and the shipped default CP of each (model, prompt).

Baseline and CP come from one encoding pass per task (one copy of the last token per setting), so
CP minus baseline is measured on the same sentences, with a 95% paired-bootstrap interval over
queries, pairs or seeds. No setting is chosen here: the defaults come from the STS rule
(`DEFAULT_CP`), and only the test splits the data README names are read. Each task's result is a
JSON file under <results>/<model>/<prompt>/beyond/, skipped when it exists; every encoding goes
through the embedding cache, so a stopped run resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np

from cpembed.cache import EmbeddingCache
from cpembed.config import default_cp
from cpembed.encoder import CPEncoder
from cpembed.evaluation import beyond
from cpembed.evaluation.controls import encode_with_controls
from cpembed.evaluation.metrics import bootstrap_spearman_difference, paired_cosine, spearman
from cpembed.evaluation.search import label
from cpembed.evaluation.sts import precomputed_embed
from cpembed.io import atomic_write

logger = logging.getLogger(__name__)

TASKS = ("rerank", "pairs", "cluster", "sts-multilingual", "retrieval")  # the cheapest first
INTERVAL_RESAMPLES = 2000


def run_beyond(model_name: str, lm, prompt: str, root: Path, out: Path, batch_size: int = 16, tasks=TASKS) -> None:
    """Every task of `tasks` not yet run for this model and prompt: baseline and default CP."""
    encoder = CPEncoder(lm, prompt, cp=None)
    default = default_cp(model_name, prompt)
    settings = [None] + ([default] if default is not None else [])
    for task in tasks:
        path = out / model_name / prompt / "beyond" / f"{task}.json"
        if path.is_file():
            continue
        started = time.perf_counter()
        result = TASK_RUNS[task](encoder, settings, root, batch_size, EmbeddingCache())
        result |= {"model": model_name, "prompt": prompt, "seconds": round(time.perf_counter() - started, 1)}
        dtype = str(lm.dtype).removeprefix("torch.")
        if dtype != "float32":  # the section's rule; a step in another dtype says so in its row
            result["dtype"] = dtype
        _write(path, result)


def run_minilm(minilm, root: Path, out: Path, tasks=TASKS) -> None:
    """all-MiniLM-L6-v2 on the same tasks, the trained encoder users compare against."""
    for task in tasks:
        path = out / "all-MiniLM-L6-v2" / "beyond" / f"{task}.json"
        if path.is_file():
            continue
        started = time.perf_counter()
        result = TASK_RUNS[task](_Fixed(minilm), [None], root, 64, None)
        _write(path, result | {"model": minilm.name, "seconds": round(time.perf_counter() - started, 1)})


class _Fixed:
    """A plain encoder (MiniLM) in the shape the task runs take: one setting, no CP."""

    def __init__(self, encoder) -> None:
        self.encoder = encoder


def _embeddings(encoder, sentences: list[str], settings, batch_size: int, cache) -> list:
    """One embed function per setting, from one pass over the unique sentences."""
    unique = list(dict.fromkeys(sentences))
    if isinstance(encoder, _Fixed):
        return [precomputed_embed(unique, encoder.encoder.encode(unique))]
    vectors = encode_with_controls(encoder, unique, settings, batch_size, True, cache)
    return [precomputed_embed(unique, v) for v in vectors]


def _rows(settings, results: list[dict], metrics: dict[str, str], per_item: dict[str, str], interval) -> dict:
    """Each setting's metrics (x100), and for CP its difference from the baseline with an interval."""
    rows = []
    for setting, result in zip(settings, results, strict=True):
        row = {"setting": label(setting), **{name: result[key] for name, key in metrics.items()}}
        if setting is not None:
            for name in metrics:
                row[f"{name} vs baseline"] = row[name] - rows[0][name]
                if name in per_item:
                    low, high = interval(name, results[0], result)
                    row[f"{name} low"], row[f"{name} high"] = low, high
        rows.append(row)
    return {"rows": rows, "resamples": INTERVAL_RESAMPLES, "level": 0.95}


def _per_item_interval(per_item: dict[str, str]):
    def interval(name: str, base: dict, other: dict) -> tuple[float, float]:
        key = per_item[name]
        a, b = np.asarray(base["per_query"][key]), np.asarray(other["per_query"][key])
        return beyond.paired_interval(np.mean, 100 * a, 100 * b, INTERVAL_RESAMPLES)

    return interval


def _retrieval(encoder, settings, root: Path, batch_size: int, cache) -> dict:
    data = beyond.load_scifact(root, "test")
    embeds = _embeddings(encoder, [*data.queries.values(), *data.corpus.values()], settings, batch_size, cache)
    results = [beyond.evaluate_retrieval(e, e, data) for e in embeds]
    per_item = {"nDCG@10": "ndcg@10", "recall@100": "recall@100"}
    metrics = {"nDCG@10": "ndcg@10", "recall@100": "recall@100"}
    return {"task": "retrieval", "data": "SciFact test"} | _rows(
        settings, results, metrics, per_item, _per_item_interval(per_item)
    )


def _rerank(encoder, settings, root: Path, batch_size: int, cache) -> dict:
    items = beyond.load_wikiqa(root, "test")
    sentences = [text for item in items for text in (item.query, *item.positives, *item.negatives)]
    results = [
        beyond.evaluate_rerank(e, e, items) for e in _embeddings(encoder, sentences, settings, batch_size, cache)
    ]
    per_item = {"MAP": "ap", "MRR@10": "rr"}
    metrics = {"MAP": "map", "MRR@10": "mrr@10"}
    return {"task": "rerank", "data": "WikiQA test"} | _rows(
        settings, results, metrics, per_item, _per_item_interval(per_item)
    )


def _pairs(encoder, settings, root: Path, batch_size: int, cache) -> dict:
    first, second, labels = beyond.load_twitter_url(root)
    embeds = _embeddings(encoder, [*first, *second], settings, batch_size, cache)
    results = [beyond.evaluate_pairs(e, first, second, labels) for e in embeds]

    def interval(_name: str, base: dict, other: dict) -> tuple[float, float]:
        return beyond.pairs_ap_interval(labels, base["scores"], other["scores"], INTERVAL_RESAMPLES)

    metrics = {"AP": "ap", "accuracy": "accuracy", "F1": "f1"}
    return {"task": "pairs", "data": "TwitterURLCorpus test"} | _rows(
        settings, results, metrics, {"AP": "ap"}, interval
    )


def _cluster(encoder, settings, root: Path, batch_size: int, cache) -> dict:
    texts, labels = beyond.load_20ng(root)
    results = [
        beyond.evaluate_clustering(e, texts, labels) for e in _embeddings(encoder, texts, settings, batch_size, cache)
    ]

    def interval(_name: str, base: dict, other: dict) -> tuple[float, float]:  # over seeds, paired by seed
        return beyond.paired_interval(np.mean, base["per_seed"], other["per_seed"], INTERVAL_RESAMPLES)

    rows = _rows(settings, results, {"V-measure": "v_measure", "std": "std"}, {"V-measure": "per_seed"}, interval)
    return {"task": "cluster", "data": "20 Newsgroups subject lines, test"} | rows


def _sts_multilingual(encoder, settings, root: Path, batch_size: int, cache) -> dict:
    pairs = {lang: beyond.load_stsb_multi(root, lang, "test") for lang in beyond.LANGUAGES}
    sentences = [s for p in pairs.values() for s in (*p.sentences1, *p.sentences2)]
    embeds = _embeddings(encoder, sentences, settings, batch_size, cache)
    similarities = [
        {lang: paired_cosine(embed(p.sentences1), embed(p.sentences2)) for lang, p in pairs.items()} for embed in embeds
    ]
    gold = pairs["en"].scores
    # The same English pairs and gold scores in every language: one draw of pairs serves all.
    aligned = all(np.array_equal(p.scores, gold) for p in pairs.values())
    rows = []
    for setting, found in zip(settings, similarities, strict=True):
        row = {"setting": label(setting)} | {lang: 100 * spearman(found[lang], pairs[lang].scores) for lang in pairs}
        row["mean"] = float(np.mean([row[lang] for lang in pairs]))
        if setting is not None and aligned:
            intervals = beyond.multilingual_intervals(gold, similarities[0], found, INTERVAL_RESAMPLES)
            row |= {f"{key} low": low for key, (low, _) in intervals.items()}
            row |= {f"{key} high": high for key, (_, high) in intervals.items()}
        rows.append(row)
    result = {"task": "sts-multilingual", "data": "stsb-multi-mt test, English templates", "rows": rows}
    if not isinstance(encoder, _Fixed) and encoder.prompt.name == "prompteol":
        result["translated"] = _translated_rows(encoder, settings, pairs, batch_size, cache)
    return result


# PromptEOL and CP's auxiliary prompt in German and Chinese, translated by the developers (not
# native speakers; no machine translation), keeping the English frame: the quotes, the colon and
# the open quote at the end that asks for one word.
TRANSLATED = {
    "de": (
        'Dieser Satz : "{sentence}" bedeutet in einem Wort:"',
        'Die irrelevante Information dieses Satzes : "{sentence}" bedeutet in einem Wort:"',
    ),
    "zh": ('这个句子 : "{sentence}" 用一个词来说就是:"', '这个句子的无关信息 : "{sentence}" 用一个词来说就是:"'),
}


def _translated_rows(encoder, settings, pairs, batch_size: int, cache) -> list[dict]:
    """German and Chinese STS with the templates in that language, baseline and the same CP setting."""
    rows = []
    for lang, (template, aux) in TRANSLATED.items():
        local = CPEncoder(
            encoder.lm, template, cp=None, output_layer=encoder.output_layer, max_length=encoder.max_length
        )
        translated = [s if s is None else dataclasses.replace(s, aux_template=aux) for s in settings]
        split = pairs[lang]
        embeds = _embeddings(local, [*split.sentences1, *split.sentences2], translated, batch_size, cache)
        similarities = [paired_cosine(embed(split.sentences1), embed(split.sentences2)) for embed in embeds]
        for setting, similarity in zip(settings, similarities, strict=True):
            row = {"language": lang, "setting": label(setting), "spearman": 100 * spearman(similarity, split.scores)}
            if setting is not None:
                row["low"], row["high"] = bootstrap_spearman_difference(
                    split.scores, similarities[0], similarity, INTERVAL_RESAMPLES
                )
            rows.append(row)
    return rows


TASK_RUNS = {
    "retrieval": _retrieval,
    "rerank": _rerank,
    "pairs": _pairs,
    "cluster": _cluster,
    "sts-multilingual": _sts_multilingual,
}


def _write(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda stream: stream.write((json.dumps(result, indent=2, default=float) + "\n").encode()))
    logger.warning("wrote %s (%.0f s)", path, result["seconds"])
