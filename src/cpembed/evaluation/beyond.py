"""Beyond STS: retrieval, reranking, pair classification, clustering and multilingual STS.

The jobs embeddings are used for, on small public sets read in place from the beyond-STS folder
(`--data DIR`, `CPEMBED_BEYOND_DATA`, or the usual places; see that folder's README.md):

- SciFact retrieval: nDCG@10 and recall@100 of cosine ranking over the whole corpus (as BEIR/MTEB).
- WikiQA reranking: MAP and MRR@10 of cosine ranking of each question's candidate sentences.
- TwitterURL pair classification: average precision of the cosine, and accuracy and F1 at their best thresholds.
- 20 Newsgroups subject clustering: V-measure of k-means, mean and spread over seeds.
- STS Benchmark machine-translated into 11 languages: Spearman x100 of the cosine.

Choose settings on the dev splits (SciFact train queries, WikiQA dev, stsb-multi-mt dev); TwitterURL
and 20NG have none, so they are scored with settings chosen elsewhere. Every summary score is x100.
Per-query scores (`per_query`) are fractions in [0, 1], as sklearn gives them; per-seed V-measures
(`per_seed`) are x100. Scale per-query scores by 100 before `paired_interval` to get points.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InvalidValueError, require_extra
from .data import DataNotFoundError, Pairs, _find
from .metrics import _stats, bootstrap_spearman_difference, paired_bootstrap, paired_cosine
from .sts import precomputed_embed, score_pairs

LANGUAGES = ("en", "de", "es", "fr", "it", "nl", "pl", "pt", "ru", "zh", "ja")
BEYOND_PATHS = ("data/beyond-sts", "../shared/data/beyond-sts")


@dataclass(frozen=True)
class TaskData:
    """What one task reads from the beyond-STS folder, and where a public copy of it is."""

    folder: str
    layout: str
    source: str

    def describe(self) -> str:
        return f"{self.folder}/ holding {self.layout}; public source: {self.source}"


# Public sources by name (no download happens here: cpembed runs offline).
TASK_DATA = {
    "retrieval": TaskData(
        "retrieval/scifact",
        "corpus.jsonl (_id, title, text), queries-{train,test}.jsonl (_id, text) and qrels-{train,test}.tsv "
        "(query-id, corpus-id, score): BEIR's layout",
        "SciFact as BEIR ships it (BEIR's scifact.zip, or the mteb/scifact dataset)",
    ),
    "rerank": TaskData(
        "reranking/wikiqa",
        "{dev,test}.jsonl, one question a line: query, positive (a list of sentences), negative (a list)",
        "WikiQA (Microsoft Research's WikiQACorpus), questions with at least one answer",
    ),
    "pairs": TaskData(
        "pair-classification/twitter-url",
        "test.tsv with the columns label, sentence1, sentence2 (label 1 = paraphrase)",
        "TwitterURLCorpus (lanwuwei/Twitter-URL-Corpus on GitHub), its test split",
    ),
    "cluster": TaskData(
        "clustering/20ng-subjects",
        "{train,test}.tsv with the columns label, text (one subject line a row, a leading 'Re:' removed)",
        "20 Newsgroups 'bydate' (scikit-learn's fetch_20newsgroups), the Subject lines",
    ),
    "sts-multilingual": TaskData(
        "multilingual/stsb-multi-mt",
        "{lang}-{dev,test}.tsv with the columns score (0-5), sentence1, sentence2, for each language",
        "stsb_multi_mt (PhilipMay/stsb_multi_mt on the Hugging Face hub)",
    ),
    "pit2015": TaskData(
        "pair-classification/pit2015",
        "dev.tsv with the columns label, sentence1, sentence2 (label 1 = paraphrase)",
        "SemEval-2015 Task 1 PIT (cocoxu/SemEval-PIT2015 on GitHub), its dev split",
    ),
}
TASK_FOLDERS = tuple(task.folder for name, task in TASK_DATA.items() if name != "pit2015")
MRR_CUTOFF = 10  # MRR@10, as MTEB reports it for reranking

Embed = Callable[[list[str]], np.ndarray]


def find_beyond_dir(data: str | os.PathLike | None = None, task: str | None = None) -> Path:
    """The beyond-STS folder: `data`, else `CPEMBED_BEYOND_DATA`, else the usual places; with a
    `task` (a key of TASK_DATA), one that holds that task's folder, else an error naming its layout
    and source."""
    if task is not None:
        needed = TASK_DATA[task]
        return _find(
            data,
            "CPEMBED_BEYOND_DATA",
            BEYOND_PATHS,
            lambda c: (c / needed.folder).is_dir(),
            f"no {task} data at {{}}: expected a folder with {needed.describe()}. "
            "Pass --data DIR or set CPEMBED_BEYOND_DATA.",
        )
    return _find(
        data,
        "CPEMBED_BEYOND_DATA",
        BEYOND_PATHS,  # read at call time, so tests can point the search elsewhere
        lambda c: any((c / folder).is_dir() for folder in TASK_FOLDERS),
        "no beyond-STS data at {}: expected a folder holding "
        + "; ".join(task.describe() for task in TASK_DATA.values())
        + ". Pass --data DIR or set CPEMBED_BEYOND_DATA.",
    )


# ---------------------------------------------------------------------------------------------
# Loaders


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DataNotFoundError(f"missing data file {path}")
    # Split on "\n" only: str.splitlines() also splits on U+2028, U+0085 and other characters that
    # can sit inside a tweet, an abstract or a JSON string.
    return [line for line in path.read_text(encoding="utf-8").split("\n") if line]


def _table(path: Path, columns: tuple[str, ...]) -> list[list[str]]:
    """The rows of a headed TSV file without quoting, checked against the columns expected."""
    header, *rows = _lines(path) or [""]
    if tuple(header.split("\t")) != columns:
        raise InvalidValueError(f"{path}: header {header!r}, expected the columns {' '.join(columns)} (tab-separated)")
    fields = [row.split("\t") for row in rows]
    for number, row in enumerate(fields, start=2):
        if len(row) != len(columns):
            raise InvalidValueError(f"{path}, line {number}: {len(row)} fields, expected {len(columns)}")
    return fields


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in _lines(path)]


def _check_split(task: str, split: str, splits: tuple[str, ...], note: str = "") -> None:
    if split not in splits:
        raise InvalidValueError(f"{task} split must be {' or '.join(splits)}, got {split!r}{note}")


@dataclass(frozen=True)
class Retrieval:
    """A retrieval set: every query has at least one judged document, every judged document is in the corpus."""

    queries: dict[str, str]  # query id -> text
    corpus: dict[str, str]  # doc id -> title + " " + text
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: relevance}; unjudged documents count as 0

    def __post_init__(self) -> None:
        if set(self.qrels) != set(self.queries):
            raise InvalidValueError(
                f"queries and qrels name different queries: {len(set(self.queries) - set(self.qrels))} without "
                f"qrels, {len(set(self.qrels) - set(self.queries))} qrels without a query"
            )
        unknown = {doc for judged in self.qrels.values() for doc in judged} - set(self.corpus)
        if unknown:
            raise InvalidValueError(f"qrels name {len(unknown)} documents the corpus lacks, e.g. {min(unknown)!r}")


def load_scifact(root: Path, split: str) -> Retrieval:
    """SciFact queries of `split` ("train" to choose settings, "test" to report) and the whole corpus."""
    _check_split("SciFact", split, ("train", "test"), " (train is the split to choose settings on)")
    folder = Path(root) / "retrieval" / "scifact"
    corpus = {d["_id"]: f"{d['title']} {d['text']}".strip() for d in _jsonl(folder / "corpus.jsonl")}
    qrels: dict[str, dict[str, int]] = {}
    for query, doc, score in _table(folder / f"qrels-{split}.tsv", ("query-id", "corpus-id", "score")):
        qrels.setdefault(query, {})[doc] = int(score)
    queries = {q["_id"]: q["text"] for q in _jsonl(folder / f"queries-{split}.jsonl") if q["_id"] in qrels}
    return Retrieval(queries, corpus, qrels)


@dataclass(frozen=True)
class Rerank:
    """One question and its candidate sentences, some of which answer it."""

    query: str
    positives: list[str]
    negatives: list[str]


def load_wikiqa(root: Path, split: str) -> list[Rerank]:
    """WikiQA questions with at least one answer: "dev" to choose settings, "test" to report."""
    _check_split("WikiQA", split, ("dev", "test"))
    path = Path(root) / "reranking" / "wikiqa" / f"{split}.jsonl"
    return [Rerank(item["query"], item["positive"], item["negative"]) for item in _jsonl(path)]


def load_twitter_url(root: Path) -> tuple[list[str], list[str], np.ndarray]:
    """TwitterURL test pairs: first sentences, second sentences, labels (1 = paraphrase)."""
    rows = _table(Path(root) / "pair-classification" / "twitter-url" / "test.tsv", ("label", "sentence1", "sentence2"))
    return [r[1] for r in rows], [r[2] for r in rows], np.array([int(r[0]) for r in rows], dtype=np.int64)


def load_20ng(root: Path) -> tuple[list[str], np.ndarray]:
    """20 Newsgroups test subject lines and their newsgroups, numbered in the newsgroups' sorted order."""
    rows = _table(Path(root) / "clustering" / "20ng-subjects" / "test.tsv", ("label", "text"))
    _, labels = np.unique([r[0] for r in rows], return_inverse=True)
    return [r[1] for r in rows], labels.astype(np.int64)


def load_stsb_multi(root: Path, language: str, split: str) -> Pairs:
    """Machine-translated STS Benchmark in `language`: "dev" to choose settings, "test" to report."""
    if language not in LANGUAGES:
        raise InvalidValueError(f"stsb-multi-mt has no language {language!r}: choose from {', '.join(LANGUAGES)}")
    _check_split("stsb-multi-mt", split, ("dev", "test"))
    path = Path(root) / "multilingual" / "stsb-multi-mt" / f"{language}-{split}.tsv"
    rows = _table(path, ("score", "sentence1", "sentence2"))
    return Pairs([r[1] for r in rows], [r[2] for r in rows], np.array([float(r[0]) for r in rows]))


# ---------------------------------------------------------------------------------------------
# Scoring


def _sklearn_metrics():
    require_extra("eval", "sklearn")
    from sklearn import metrics

    return metrics


def embed_rows(embed: Embed, texts: list[str], unit: bool = True) -> np.ndarray:
    """The float64 rows of `embed(texts)`, unit length if `unit`; each distinct text embedded once, in one call."""
    require_extra("eval", "sklearn")
    from sklearn.preprocessing import normalize

    unique = list(dict.fromkeys(texts))
    vectors = np.asarray(embed(unique), dtype=np.float64)
    if vectors.ndim != 2 or len(vectors) != len(unique):
        raise InvalidValueError(f"embed returned shape {vectors.shape} for {len(unique)} texts, expected (n, d)")
    row = {text: i for i, text in enumerate(unique)}
    if unit:
        vectors = normalize(vectors)  # a zero vector stays zero: cosine 0 with everything
    return vectors[[row[t] for t in texts]]


SCORE_DECIMALS = 12  # cosines are rounded so that a pair scores the same in any product's shape: ties stay ties


def _cosines(queries: np.ndarray, documents: np.ndarray) -> np.ndarray:
    return np.round(queries @ documents.T, SCORE_DECIMALS)


@dataclass
class RetrievalTally:
    """Where each relevant document ranks for its query, counted over the corpus a slice at a time.

    For every (query, relevant document) pair it keeps the pair's cosine and how many of the
    documents counted so far score above it and tie with it. Those counts are all that nDCG and
    recall need, so a corpus can be ranked in slices, the tally saved between them (`to_json`) and a
    stopped evaluation resumed (`from_json`) on another day. Slices must not overlap; `metrics`
    needs every document of the corpus counted once.
    """

    queries: list[str]  # query ids, in the order of the query rows `count` is given
    corpus_size: int
    pairs: list[tuple[str, str]]  # (query id, relevant document id)
    gains: np.ndarray  # each pair's relevance, > 0
    scores: np.ndarray  # its cosine
    above: np.ndarray  # documents counted so far that score higher for the pair's query
    tied: np.ndarray  # documents counted so far that score the same, the pair's own not included
    counted: int = 0

    @classmethod
    def start(cls, data: Retrieval, queries: np.ndarray, relevant: dict[str, np.ndarray]) -> RetrievalTally:
        """A tally with nothing counted: `queries` are unit rows in `data.queries` order, `relevant`
        holds the unit vector of (at least) every document judged relevant."""
        query_ids = list(data.queries)
        pairs = [(q, d) for q in query_ids for d, relevance in data.qrels[q].items() if relevance > 0]
        row = {q: i for i, q in enumerate(query_ids)}
        column = {d: i for i, d in enumerate(dict.fromkeys(d for _, d in pairs))}
        # Scored by a matrix product, as `count` scores, so that a copy of a relevant document ties with it.
        cosines = _cosines(queries, np.stack([relevant[d] for d in column])) if pairs else np.zeros((0, 0))
        scores = np.array([cosines[row[q], column[d]] for q, d in pairs], dtype=np.float64)
        gains = np.array([data.qrels[q][d] for q, d in pairs], dtype=np.float64)
        zeros = np.zeros(len(pairs), dtype=np.int64)
        return cls(query_ids, len(data.corpus), pairs, gains, scores, zeros, zeros.copy())

    def count(self, queries: np.ndarray, doc_ids: Sequence[str], documents: np.ndarray) -> None:
        """Count one slice of the corpus: its ids and unit rows, with the query rows of `start`."""
        if self.counted + len(doc_ids) > self.corpus_size:
            total = self.counted + len(doc_ids)
            raise InvalidValueError(f"{total} documents counted, the corpus has {self.corpus_size}: a slice came twice")
        row = {q: i for i, q in enumerate(self.queries)}
        cosines = _cosines(queries, documents)[[row[q] for q, _ in self.pairs]]  # (pairs, slice)
        higher, same = cosines > self.scores[:, None], cosines == self.scores[:, None]
        column = {doc: i for i, doc in enumerate(doc_ids)}
        for p, (_, doc) in enumerate(self.pairs):  # a document is not ranked against itself
            if doc in column:
                higher[p, column[doc]] = same[p, column[doc]] = False
        self.above += higher.sum(axis=1)
        self.tied += same.sum(axis=1)
        self.counted += len(doc_ids)

    def metrics(self, k: int = 10, recall_k: int = 100) -> dict:
        """nDCG@k and recall@recall_k, as `evaluate_retrieval` reports them.

        A pair tied with t other documents spans the t + 1 ranks after the documents above it; as in
        sklearn's nDCG, its gain is spread evenly over them, and recall counts the share of them
        under the cut-off (the expected value under a random order of the tie).
        """
        if self.counted != self.corpus_size:
            raise InvalidValueError(f"{self.counted} of {self.corpus_size} documents counted: count the rest first")
        discount = 1 / np.log2(np.arange(k) + 2)
        before = np.concatenate([[0.0], np.cumsum(discount)])  # before[j]: the discounts of ranks 0..j-1
        span = self.tied + 1
        first, last = np.minimum(self.above, k), np.minimum(self.above + span, k)
        dcg = self.gains / span * (before[last] - before[first])
        found = np.clip((recall_k - self.above) / span, 0, 1)
        row = {q: i for i, q in enumerate(self.queries)}
        query = np.array([row[q] for q, _ in self.pairs], dtype=np.int64)
        ndcg, recall = np.zeros(len(self.queries)), np.zeros(len(self.queries))
        for i in range(len(self.queries)):
            mine = query == i
            if mine.any():
                ideal = np.sort(self.gains[mine])[::-1][:k] @ discount[: min(k, mine.sum())]
                ndcg[i] = dcg[mine].sum() / ideal
                recall[i] = found[mine].mean()
        return {
            f"ndcg@{k}": 100 * float(ndcg.mean()),
            f"recall@{recall_k}": 100 * float(recall.mean()),
            "per_query": {f"ndcg@{k}": ndcg, f"recall@{recall_k}": recall},  # fractions, not x100
            "queries": len(self.queries),
        }

    def to_json(self) -> dict:
        return {
            "queries": self.queries,
            "corpus_size": self.corpus_size,
            "pairs": [
                [q, d, float(g), float(s), int(a), int(t)]
                for (q, d), g, s, a, t in zip(self.pairs, self.gains, self.scores, self.above, self.tied, strict=True)
            ],
            "counted": self.counted,
        }

    @classmethod
    def from_json(cls, saved: dict) -> RetrievalTally:
        columns = list(zip(*saved["pairs"], strict=True)) or [()] * 6
        q, d, gains, scores, above, tied = columns
        return cls(
            list(saved["queries"]),
            int(saved["corpus_size"]),
            list(zip(q, d, strict=True)),
            np.array(gains, dtype=np.float64),
            np.array(scores, dtype=np.float64),
            np.array(above, dtype=np.int64),
            np.array(tied, dtype=np.int64),
            int(saved["counted"]),
        )


def relevant_documents(data: Retrieval) -> list[str]:
    """The ids of the documents judged relevant to some query, once each: the first slice to count
    when a tally is saved between slices, since `RetrievalTally.start` needs their vectors."""
    return list(dict.fromkeys(d for q in data.queries for d, relevance in data.qrels[q].items() if relevance > 0))


def evaluate_retrieval(
    embed_query: Embed, embed_document: Embed, data: Retrieval, k: int = 10, recall_k: int = 100
) -> dict:
    """nDCG@k and recall@recall_k (x100, mean over queries) of exact cosine ranking over the whole corpus.

    nDCG as sklearn computes it: linear gain (the qrels' relevance; unjudged documents 0), log2 discount, and
    tied scores averaged over their orders. Recall counts documents with relevance > 0. The ranking
    goes through `RetrievalTally`, a slice of the corpus at a time.
    """
    if min(k, recall_k) < 1 or len(data.corpus) < 2:
        raise InvalidValueError(f"need k, recall_k >= 1 and two documents, got {k}, {recall_k}, {len(data.corpus)}")
    doc_ids = list(data.corpus)
    documents = embed_rows(embed_document, list(data.corpus.values()))  # (docs, d)
    queries = embed_rows(embed_query, list(data.queries.values()))  # (queries, d)
    tally = RetrievalTally.start(data, queries, dict(zip(doc_ids, documents, strict=True)))
    block = 4096  # documents per product: queries x block cosines in memory at a time
    for start in range(0, len(doc_ids), block):
        tally.count(queries, doc_ids[start : start + block], documents[start : start + block])
    return tally.metrics(k, recall_k)


def evaluate_rerank(embed_query: Embed, embed_document: Embed, items: list[Rerank]) -> dict:
    """MAP and MRR@10 (x100, mean over questions) of the cosine ranking of each question's candidates.

    Ties: sklearn's average precision takes tied scores as one threshold, so a relevant candidate
    tied with others counts as ranked after all of them; the reciprocal rank breaks ties the same
    way (rank = candidates scoring at least as high), so a constant embedding cannot score well by ties.
    """
    metrics = _sklearn_metrics()
    if not items:
        raise InvalidValueError("no reranking items to score")
    for item in items:
        if not item.positives:
            raise InvalidValueError(f"question {item.query!r} has no positive candidate: AP is undefined")
    queries = embed_rows(embed_query, [item.query for item in items])
    candidates = embed_rows(embed_document, [c for item in items for c in item.positives + item.negatives])
    ap, rr = np.zeros(len(items)), np.zeros(len(items))
    start = 0
    for i, item in enumerate(items):
        count = len(item.positives) + len(item.negatives)
        scores = candidates[start : start + count] @ queries[i]
        start += count
        relevant = np.arange(count) < len(item.positives)
        ap[i] = metrics.average_precision_score(relevant, scores)
        rank = int((scores >= scores[relevant].max()).sum())
        rr[i] = 1 / rank if rank <= MRR_CUTOFF else 0.0
    return {
        "map": 100 * float(ap.mean()),
        f"mrr@{MRR_CUTOFF}": 100 * float(rr.mean()),
        "per_query": {"ap": ap, "rr": rr},  # fractions, not x100
        "queries": len(items),
    }


def evaluate_pairs(embed: Embed, first: list[str], second: list[str], labels: np.ndarray) -> dict:
    """Pair classification by cosine: average precision, and accuracy and F1 at their best thresholds (x100).

    As in MTEB, accuracy and F1 each take the threshold best for them (a pair is positive when its
    cosine is at least the threshold), so they describe the embedding, not one classifier. The
    thresholds come back in `thresholds`; accuracy's may be inf (calling every pair negative).
    """
    metrics = _sklearn_metrics()
    labels = np.asarray(labels)
    if not len(first) == len(second) == len(labels):
        raise InvalidValueError(f"pairs and labels differ in length: {len(first)}, {len(second)}, {len(labels)}")
    if set(np.unique(labels)) != {0, 1}:
        raise InvalidValueError(f"labels must hold both 0 and 1, got {sorted(set(np.unique(labels).tolist()))}")
    rows = embed_rows(embed, list(first) + list(second))
    scores = paired_cosine(rows[: len(first)], rows[len(first) :])
    positives = labels.sum()
    fpr, tpr, roc_thresholds = metrics.roc_curve(labels, scores, drop_intermediate=False)
    accuracy = (tpr * positives + (1 - fpr) * (len(labels) - positives)) / len(labels)
    precision, recall, pr_thresholds = metrics.precision_recall_curve(labels, scores)
    precision, recall = precision[:-1], recall[:-1]  # the last point (recall 0) has no threshold
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(precision), where=recall > 0)
    return {
        "ap": 100 * float(metrics.average_precision_score(labels, scores)),
        "accuracy": 100 * float(accuracy.max()),
        "f1": 100 * float(f1.max()),
        "thresholds": {"accuracy": float(roc_thresholds[accuracy.argmax()]), "f1": float(pr_thresholds[f1.argmax()])},
        "pairs": len(labels),
        "scores": scores,
    }


def evaluate_clustering(
    embed: Embed, texts: list[str], labels: np.ndarray, seeds: int = 10, normalize: bool = True
) -> dict:
    """V-measure (x100) of k-means with k = the number of labels: mean, standard deviation and per seed.

    sklearn's KMeans (Lloyd, k-means++ start, one start per seed `0 .. seeds - 1`). With `normalize`
    (the default) it clusters unit-length embeddings: squared distance between unit vectors is
    2 - 2 cosine, so clusters follow the similarity every other task here scores, and not the norm,
    which varies much among LLM hidden states. MTEB clusters raw embeddings (with MiniBatchKMeans),
    so this is "MTEB-style", not MTEB's number; `normalize=False` clusters the raw embeddings.
    """
    require_extra("eval", "sklearn")
    from sklearn.cluster import KMeans
    from sklearn.metrics import v_measure_score

    labels = np.asarray(labels)
    if len(texts) != len(labels):
        raise InvalidValueError(f"{len(texts)} texts but {len(labels)} labels")
    if seeds < 1:
        raise InvalidValueError(f"seeds must be at least 1, got {seeds}")
    clusters = len(np.unique(labels))
    x = embed_rows(embed, list(texts), unit=normalize)
    distinct = len(np.unique(x, axis=0))
    if distinct < clusters:  # KMeans would warn and return fewer clusters than asked for
        raise InvalidValueError(f"only {distinct} distinct embeddings for {clusters} clusters: the embedding collapsed")
    per_seed = np.array(
        [
            v_measure_score(labels, KMeans(n_clusters=clusters, n_init=1, random_state=seed).fit_predict(x))
            for seed in range(seeds)
        ]
    )
    return {
        "v_measure": 100 * float(per_seed.mean()),
        "std": 100 * float(per_seed.std()),  # population standard deviation over the seeds
        "per_seed": 100 * per_seed,
        "texts": len(texts),
    }


def evaluate_sts_multilingual(
    embed: Embed, root: Path, languages: Sequence[str] = LANGUAGES, split: str = "test"
) -> dict:
    """Spearman x100 of cosine similarity for each language of stsb-multi-mt, and their mean."""
    if not languages:
        raise InvalidValueError("no languages to score")
    results = {}
    for language in languages:
        pairs = load_stsb_multi(root, language, split)
        unique = list(dict.fromkeys(pairs.sentences1 + pairs.sentences2))
        scored = score_pairs(precomputed_embed(unique, np.asarray(embed(unique))), pairs)
        results[language] = {"spearman": scored["spearman"], "pairs": scored["n"]}
    return {"languages": results, "mean": float(np.mean([r["spearman"] for r in results.values()]))}


# ---------------------------------------------------------------------------------------------
# Intervals


def paired_interval(
    statistic: Callable[[np.ndarray], float],
    baseline: np.ndarray,
    other: np.ndarray,
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """A paired-bootstrap interval for statistic(other) - statistic(baseline) on aligned per-item scores.

    `baseline[i]` and `other[i]` score the same item (query, question; or seed, for V-measure, where
    the pairing is only by seed number), so each resample draws items with replacement and applies
    `statistic` (e.g. `np.mean`) to both on that draw. Percentile interval at `level`, in the units
    of the scores (scale `per_query` fractions by 100 first, to get points); `seed` fixes the draws.
    """
    baseline, other = (np.asarray(x, dtype=np.float64) for x in (baseline, other))
    if len(baseline) != len(other) or len(baseline) < 2:
        raise InvalidValueError(f"need two equal lists of at least 2 items, got {len(baseline)} and {len(other)}")
    return paired_bootstrap((baseline, other), lambda b, o: statistic(o) - statistic(b), resamples, level, seed)


def multilingual_intervals(
    gold: np.ndarray,
    baseline: dict[str, np.ndarray],
    other: dict[str, np.ndarray],
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Paired-bootstrap intervals of 100 * (Spearman(other) - Spearman(baseline)) for each language
    and for the mean over languages, from each language's cosine similarities of the same pairs.

    stsb-multi-mt translates the same English pairs, in the same order, with the same gold scores,
    so a resample draws source pairs, the same ones in every language: the mean's interval says how
    much the mean difference depends on which pairs the split holds. Keys: the languages, "mean".
    """
    languages = list(baseline)
    if not languages or set(other) != set(languages):
        raise InvalidValueError("need the same languages for the baseline and the other setting")
    found = {
        lang: bootstrap_spearman_difference(gold, baseline[lang], other[lang], resamples, level, seed)
        for lang in languages
    }
    stats = _stats()

    def mean_difference(gold, *similarities, axis):
        gold = stats.rankdata(gold, axis=axis)
        ranked = [stats.rankdata(x, axis=axis) for x in similarities]
        differences = [
            stats.pearsonr(o, gold, axis=axis).statistic - stats.pearsonr(b, gold, axis=axis).statistic
            for b, o in zip(ranked[::2], ranked[1::2], strict=True)
        ]
        return 100 * np.mean(differences, axis=0)

    samples = (gold, *(x for lang in languages for x in (baseline[lang], other[lang])))
    if len({len(x) for x in samples}) != 1:
        raise InvalidValueError("every language must score the same pairs as the gold scores")
    found["mean"] = paired_bootstrap(
        tuple(np.asarray(x, dtype=np.float64) for x in samples),
        mean_difference,
        resamples,
        level,
        seed,
        vectorized=True,
        batch=50,  # draws per call: 50 x (2 x languages + 1) x pairs ranks in memory
        quiet=(stats.ConstantInputWarning,),
    )
    return found


def pairs_ap_interval(
    labels: np.ndarray,
    baseline_scores: np.ndarray,
    other_scores: np.ndarray,
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """A paired-bootstrap interval for 100 * (AP(other) - AP(baseline)) of pair classification.

    Average precision is not a mean over pairs, so each resample draws pairs with replacement and
    recomputes both APs on that draw. Draws without a positive pair (AP undefined; rare unless
    positives are very few) are left out. Percentile interval at `level`; `seed` fixes the draws.
    """
    metrics = _sklearn_metrics()
    labels, baseline_scores, other_scores = (np.asarray(x) for x in (labels, baseline_scores, other_scores))
    if not len(labels) == len(baseline_scores) == len(other_scores):
        raise InvalidValueError(
            f"labels and scores differ in length: {len(labels)}, {len(baseline_scores)}, {len(other_scores)}"
        )
    if set(np.unique(labels)) != {0, 1}:
        raise InvalidValueError("labels must hold both 0 and 1")

    def difference(labels, baseline, other):
        if not labels.any():
            return np.nan
        ap = metrics.average_precision_score
        return 100 * (ap(labels, other) - ap(labels, baseline))

    return paired_bootstrap((labels, baseline_scores, other_scores), difference, resamples, level, seed)
