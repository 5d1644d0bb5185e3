"""The report's beyond-STS section: retrieval, reranking, pair classification, clustering and STS
in 11 languages, for the plain prompt embedding and the shipped default CP of each (model, prompt).

Each task scores a list of `Row`s, the first of them the baseline the others are measured against.
Rows that share an encoder come from one encoding pass (one copy of the last token per setting), so
CP minus baseline is measured on the same sentences, with a 95% paired-bootstrap interval over
queries, pairs or seeds. No setting is chosen here: the defaults come from the STS rule
(`DEFAULT_CP`), and only the test splits the data README names are read. Each task's result is a
JSON file under <results>/<model>/<prompt>/beyond/, skipped when it exists; every encoding goes
through the embedding cache, so a stopped run resumes where it stopped. SciFact also saves its
ranking after each slice of the corpus (`retrieval.partial.json` beside the step), so that it resumes
on a machine whose cache is empty.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cpembed.cache import EmbeddingCache
from cpembed.config import CPConfig, default_cp
from cpembed.encoder import CPEncoder
from cpembed.evaluation import beyond
from cpembed.evaluation.controls import encode_with_controls
from cpembed.evaluation.metrics import bootstrap_spearman_difference, paired_cosine, spearman
from cpembed.evaluation.search import label
from cpembed.evaluation.sts import precomputed_embed
from cpembed.io import atomic_write

logger = logging.getLogger(__name__)

TASKS = ("rerank", "pairs", "cluster", "sts-multilingual", "retrieval")  # the cheapest first
# The task that scores each `cpembed tune --job` job (and its job recipe) on a test split.
JOB_TASKS = {
    "reranking": "rerank",
    "pairs": "pairs",
    "clustering": "cluster",
    "retrieval": "retrieval",
}  # cheapest first
INTERVAL_RESAMPLES = 2000
RETRIEVAL_SLICE = 256  # SciFact documents ranked between saves of the tallies: one embedding-cache chunk


@dataclasses.dataclass(frozen=True)
class Row:
    """One embedding a task scores: its name in the table, its encoder, its CP setting (None: plain)
    and a fitted post-processing applied to its rows (None: none). Rows with the same encoder
    object share one encoding pass."""

    name: str
    encoder: Any
    setting: CPConfig | None = None
    post: Any = None


def run_beyond(model_name: str, lm, prompt: str, root: Path, out: Path, batch_size: int = 16, tasks=TASKS) -> None:
    """Every task of `tasks` not yet run for this model and prompt: baseline and default CP."""
    encoder = CPEncoder(lm, prompt, cp=None)
    default = default_cp(model_name, prompt)
    rows = [Row(label(None), encoder)] + ([Row(label(default), encoder, default)] if default is not None else [])
    for task in tasks:
        path = out / model_name / prompt / "beyond" / f"{task}.json"
        if path.is_file():
            continue
        started, cache = time.perf_counter(), EmbeddingCache()
        result = run_task(task, rows, root, batch_size, cache, path)
        if task == "sts-multilingual" and prompt == "prompteol":
            result["translated"] = _translated_rows(encoder, [r.setting for r in rows], root, batch_size, cache)
        _write(path, result | {"model": model_name, "prompt": prompt} | timed(started, lm))


def timed(started: float, lm) -> dict:
    """A step's wall time, and its dtype where it is not the section's float32."""
    dtype = str(lm.dtype).removeprefix("torch.")
    return {"seconds": round(time.perf_counter() - started, 1)} | ({"dtype": dtype} if dtype != "float32" else {})


def run_minilm(minilm, root: Path, out: Path, tasks=TASKS) -> None:
    """all-MiniLM-L6-v2 on the same tasks, the trained encoder users compare against."""
    for task in tasks:
        path = out / "all-MiniLM-L6-v2" / "beyond" / f"{task}.json"
        if path.is_file():
            continue
        started = time.perf_counter()
        result = TASK_RUNS[task]([Row(label(None), _Fixed(minilm))], root, 64, None)
        _write(path, result | {"model": minilm.name, "seconds": round(time.perf_counter() - started, 1)})


class _Fixed:
    """A plain encoder (MiniLM) in the shape the task runs take: one setting, no CP."""

    def __init__(self, encoder) -> None:
        self.encoder = encoder


def _embeddings(rows: Sequence[Row], sentences: list[str], batch_size: int, cache) -> list:
    """One embed function per row, from one pass per encoder over the unique sentences."""
    unique = list(dict.fromkeys(sentences))
    return [precomputed_embed(unique, embed(unique)) for embed in _slice_embeddings(rows, batch_size, cache)]


def _rows(rows: Sequence[Row], results: list[dict], metrics: dict[str, str], per_item: dict[str, str], interval):
    """Each row's metrics (x100), and for each after the first its difference from the first with an interval."""
    table = []
    for index, (row, result) in enumerate(zip(rows, results, strict=True)):
        found = {"setting": row.name, **{name: result[key] for name, key in metrics.items()}}
        if index > 0:
            for name in metrics:
                found[f"{name} vs baseline"] = found[name] - table[0][name]
                if name in per_item:
                    found[f"{name} low"], found[f"{name} high"] = interval(name, results[0], result)
        table.append(found)
    return {"rows": table, "resamples": INTERVAL_RESAMPLES, "level": 0.95}


def _per_item_interval(per_item: dict[str, str]):
    def interval(name: str, base: dict, other: dict) -> tuple[float, float]:
        key = per_item[name]
        a, b = np.asarray(base["per_query"][key]), np.asarray(other["per_query"][key])
        return beyond.paired_interval(np.mean, 100 * a, 100 * b, INTERVAL_RESAMPLES)

    return interval


def _retrieval(rows: Sequence[Row], root: Path, batch_size: int, cache, progress: Path | None = None) -> dict:
    """SciFact test. The corpus is ranked a slice at a time, relevant documents first, and with
    `progress` each row's tally is saved there after every slice, under its settings digest: the
    largest model needs longer than a machine may run, and a run resumed elsewhere, with an empty
    embedding cache, goes on from the last slice saved. Rows whose tallies are complete are not
    encoded again (the recipe's second comparison). The caller removes the file once the step is written."""
    data = beyond.load_scifact(root, "test")
    relevant = beyond.relevant_documents(data)
    order = relevant + [d for d in data.corpus if d not in set(relevant)]
    key = hashlib.sha1(json.dumps([order, data.qrels], sort_keys=True).encode()).hexdigest()
    digests = [_digest(r) for r in rows]
    saved = _read_progress(progress)
    kept = saved["tallies"] if saved.get("data") == key else {}  # else they were counted on other data
    tallies = [beyond.RetrievalTally.from_json(kept[d]) for d in digests] if all(d in kept for d in digests) else []
    done = min((t.counted for t in tallies), default=0)
    if len({t.counted for t in tallies}) > 1:  # saved apart: start these rows again
        tallies, done = [], 0
    if done < len(order):
        embeds = _slice_embeddings(rows, batch_size, cache)
        queries = [beyond.embed_rows(e, list(data.queries.values())) for e in embeds]
    while done < len(order):
        end = min(len(order), max(done + RETRIEVAL_SLICE, len(relevant)))  # the first slice: every relevant one
        ids = order[done:end]
        documents = [beyond.embed_rows(e, [data.corpus[d] for d in ids]) for e in embeds]
        if not tallies:
            tallies = [
                beyond.RetrievalTally.start(data, q, dict(zip(ids, d, strict=True)))
                for q, d in zip(queries, documents, strict=True)
            ]
        for tally, q, d in zip(tallies, queries, documents, strict=True):
            tally.count(q, ids, d)
        done = end
        if progress is not None:
            state = {"data": key, "tallies": kept | {d: t.to_json() for d, t in zip(digests, tallies, strict=True)}}
            _save_progress(progress, state)
            logger.warning("SciFact: %d of %d documents ranked, saved to %s", done, len(order), progress)
    results = [t.metrics() for t in tallies]
    per_item = {"nDCG@10": "ndcg@10", "recall@100": "recall@100"}
    metrics = {"nDCG@10": "ndcg@10", "recall@100": "recall@100"}
    return {"task": "retrieval", "data": "SciFact test"} | _rows(
        rows, results, metrics, per_item, _per_item_interval(per_item)
    )


def _read_progress(progress: Path | None) -> dict:
    """What a stopped run saved, or nothing: a file cut short by a crash is a run to start again."""
    if progress is None or not progress.is_file():
        return {}
    try:
        return json.loads(progress.read_text())
    except json.JSONDecodeError:
        logger.warning("%s is not whole JSON: starting the ranking again", progress)
        return {}


def _save_progress(progress: Path, state: dict) -> None:
    progress.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(progress, lambda stream: stream.write(json.dumps(state).encode()))


def _digest(row: Row) -> str:
    """What decides a row's embeddings: its encoder's settings digest, or a plain encoder's name."""
    if isinstance(row.encoder, _Fixed):
        return row.encoder.encoder.name
    digest = row.encoder.settings(row.setting).digest()
    return digest if row.post is None else f"{digest}+{row.post.describe()['arrays']}"


def _slice_embeddings(rows: Sequence[Row], batch_size: int, cache) -> list:
    """One embed function per row that encodes what it is given; rows that share an encoder share
    its pass, which is kept until the next call with other texts."""
    last: dict[int, tuple[list[str], list]] = {}

    def embed(index: int, texts: list[str]) -> np.ndarray:
        encoder = rows[index].encoder
        together = [i for i, r in enumerate(rows) if r.encoder is encoder]
        if id(encoder) not in last or last[id(encoder)][0] != texts:
            if isinstance(encoder, _Fixed):
                vectors = [encoder.encoder.encode(texts)] * len(together)
            else:
                settings = [rows[i].setting for i in together]
                vectors = encode_with_controls(encoder, texts, settings, batch_size, True, cache)
            last[id(encoder)] = (texts, vectors)
        vectors = last[id(encoder)][1][together.index(index)]
        return vectors if rows[index].post is None else rows[index].post.apply(vectors)

    return [lambda texts, i=i: embed(i, list(texts)) for i in range(len(rows))]


def _rerank(rows: Sequence[Row], root: Path, batch_size: int, cache) -> dict:
    items = beyond.load_wikiqa(root, "test")
    sentences = [text for item in items for text in (item.query, *item.positives, *item.negatives)]
    results = [beyond.evaluate_rerank(e, e, items) for e in _embeddings(rows, sentences, batch_size, cache)]
    per_item = {"MAP": "ap", "MRR@10": "rr"}
    metrics = {"MAP": "map", "MRR@10": "mrr@10"}
    return {"task": "rerank", "data": "WikiQA test"} | _rows(
        rows, results, metrics, per_item, _per_item_interval(per_item)
    )


def _pairs(rows: Sequence[Row], root: Path, batch_size: int, cache) -> dict:
    first, second, labels = beyond.load_twitter_url(root)
    embeds = _embeddings(rows, [*first, *second], batch_size, cache)
    results = [beyond.evaluate_pairs(e, first, second, labels) for e in embeds]

    def interval(_name: str, base: dict, other: dict) -> tuple[float, float]:
        return beyond.pairs_ap_interval(labels, base["scores"], other["scores"], INTERVAL_RESAMPLES)

    metrics = {"AP": "ap", "accuracy": "accuracy", "F1": "f1"}
    return {"task": "pairs", "data": "TwitterURLCorpus test"} | _rows(rows, results, metrics, {"AP": "ap"}, interval)


def _cluster(rows: Sequence[Row], root: Path, batch_size: int, cache) -> dict:
    texts, labels = beyond.load_20ng(root)
    results = [beyond.evaluate_clustering(e, texts, labels) for e in _embeddings(rows, texts, batch_size, cache)]

    def interval(_name: str, base: dict, other: dict) -> tuple[float, float]:  # over seeds, paired by seed
        return beyond.paired_interval(np.mean, base["per_seed"], other["per_seed"], INTERVAL_RESAMPLES)

    table = _rows(rows, results, {"V-measure": "v_measure", "std": "std"}, {"V-measure": "per_seed"}, interval)
    return {"task": "cluster", "data": "20 Newsgroups subject lines, test"} | table


def _sts_multilingual(rows: Sequence[Row], root: Path, batch_size: int, cache) -> dict:
    pairs = {lang: beyond.load_stsb_multi(root, lang, "test") for lang in beyond.LANGUAGES}
    sentences = [s for p in pairs.values() for s in (*p.sentences1, *p.sentences2)]
    embeds = _embeddings(rows, sentences, batch_size, cache)
    similarities = [
        {lang: paired_cosine(embed(p.sentences1), embed(p.sentences2)) for lang, p in pairs.items()} for embed in embeds
    ]
    gold = pairs["en"].scores
    # The same English pairs and gold scores in every language: one draw of pairs serves all.
    aligned = all(np.array_equal(p.scores, gold) for p in pairs.values())
    table = []
    for index, (row, found) in enumerate(zip(rows, similarities, strict=True)):
        scored = {"setting": row.name} | {lang: 100 * spearman(found[lang], pairs[lang].scores) for lang in pairs}
        scored["mean"] = float(np.mean([scored[lang] for lang in pairs]))
        if index > 0 and aligned:
            intervals = beyond.multilingual_intervals(gold, similarities[0], found, INTERVAL_RESAMPLES)
            scored |= {f"{key} low": low for key, (low, _) in intervals.items()}
            scored |= {f"{key} high": high for key, (_, high) in intervals.items()}
        table.append(scored)
    return {"task": "sts-multilingual", "data": "stsb-multi-mt test, English templates", "rows": table}


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


def _translated_rows(encoder, settings, root: Path, batch_size: int, cache) -> list[dict]:
    """German and Chinese STS with the templates in that language, baseline and the same CP setting."""
    rows = []
    for lang, (template, aux) in TRANSLATED.items():
        local = CPEncoder(
            encoder.lm, template, cp=None, output_layer=encoder.output_layer, max_length=encoder.max_length
        )
        translated = [s if s is None else dataclasses.replace(s, aux_template=aux) for s in settings]
        split = beyond.load_stsb_multi(root, lang, "test")
        translated_rows = [Row(label(s), local, s) for s in translated]
        embeds = _embeddings(translated_rows, [*split.sentences1, *split.sentences2], batch_size, cache)
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


def run_task(task: str, rows: Sequence[Row], root: Path, batch_size: int, cache, path: Path) -> dict:
    """One task's result, for the step file `path`; retrieval saves its progress beside it."""
    if task == "retrieval":
        return _retrieval(rows, root, batch_size, cache, progress_path(path))
    return TASK_RUNS[task](rows, root, batch_size, cache)


def progress_path(path: Path) -> Path:
    return path.with_suffix(".partial.json")


def _write(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda stream: stream.write((json.dumps(result, indent=2, default=float) + "\n").encode()))
    progress_path(path).unlink(missing_ok=True)  # the step is whole: what its run saved on the way is spent
    logger.warning("wrote %s (%.0f s)", path, result["seconds"])
