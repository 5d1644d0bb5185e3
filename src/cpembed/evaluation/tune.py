"""`cpembed tune`: a setting for one model and one job, chosen on tuning data within a time budget.

The search space: each prompt (the four built-in ones, or the templates given), plain and with CP
(NS at several alphas and NR, at layers spread over the whole depth), each with no post-processing,
centering, or whitening to k dimensions fitted on the texts it embeds (no labels). On request it
grows by in-context examples (each prompt with one tuning sentence and the model's own one-word
answer before it: another prompt) and by auxiliary wordings (`aux_search.aux_candidates`, each with
NR at every layer searched). Every CP setting of a prompt shares one pass over the texts
(`encode_settings`), so a round costs about one pass per prompt still in the race, plus a short
auxiliary pass per wording, whatever the number of settings.

Successive halving: round 0 scores every candidate on a small subsample of the job's units (pairs,
questions, queries, texts to cluster); each later round triples the units (the earlier ones stay,
so the embedding cache reuses their rows) and keeps the best third of the (prompt, CP setting)
pairs, each with every post-processing, until the whole tuning set is scored or the next round
would not fit the budget. Rounds are timed, so the next round's cost is estimated from the last
one's sentences per second; within a round, a prompt starts only if the pace of the prompts before
it says it will end within the budget (on Qwen2.5-Coder-1.5B on 2 cores, a second prompt started
before the budget was spent took the first round to 829 s of a 600 s budget).

The last round's best candidate is compared with plain PromptEOL (no CP, no post-processing) on
the same units with a 95% paired-bootstrap interval; it is chosen only if the interval lies above
0, otherwise plain PromptEOL is, and the report says that no setting beat it by more than noise.
No test split is read: a data path or split named "test" is refused.
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import CPConfig
from ..errors import InvalidValueError
from ..postprocess import fit as fit_arrays
from ..prompts import IRRELEVANT
from .beyond import (
    Rerank,
    Retrieval,
    embed_rows,
    evaluate_clustering,
    evaluate_rerank,
    evaluate_retrieval,
    paired_interval,
    pairs_ap_interval,
)
from .metrics import bootstrap_mean_spearman_difference, paired_cosine, spearman

JOBS = ("sts", "retrieval", "reranking", "pairs", "clustering")
METRICS = {"sts": "Spearman", "retrieval": "nDCG@10", "reranking": "MAP", "pairs": "AP", "clustering": "V-measure"}
PROMPTS = ("prompteol", "cot", "knowledge", "ck")
ALPHAS = (0.5, 1.0, 2.0, 4.0)
LAYER_COUNT = 6  # CP layers tried, spread over the depth
DIMENSIONS = (64, 128, 256)
START_UNITS = 64
GROWTH = 3  # each round scores this many times the units of the last
KEEP = 1 / 3  # the share of (prompt, CP setting) pairs each round keeps
BASELINE = ("prompteol", None, "none")


@dataclass
class Scored:
    """A candidate's score on a task (x100), and what an interval against another candidate resamples."""

    value: float
    items: tuple = ()


class PairTask:
    """Sentence pairs with gold scores (STS: Spearman of cosine) or 0/1 labels (pairs: average precision)."""

    def __init__(self, name: str, first: Sequence[str], second: Sequence[str], gold, metric: str) -> None:
        self.name, self.metric = name, metric
        self.first, self.second, self.gold = list(first), list(second), np.asarray(gold, dtype=np.float64)
        if not len(self.first) == len(self.second) == len(self.gold) or len(self.gold) < 10:
            raise InvalidValueError(f"{name}: need at least 10 pairs, each with a score, got {len(self.gold)}")
        if metric == "ap" and set(np.unique(self.gold)) != {0, 1}:
            raise InvalidValueError(f"{name}: pair labels must be 0 and 1, both present")
        self.order = np.random.default_rng(0).permutation(len(self.gold))

    @property
    def units(self) -> int:
        return len(self.gold)

    def texts(self, n: int) -> list[str]:
        rows = self.order[:n]
        return [self.first[i] for i in rows] + [self.second[i] for i in rows]

    def evaluate(self, embed, n: int) -> Scored:
        rows = self.order[:n]
        vectors = embed_rows(embed, self.texts(n))
        cosines = paired_cosine(vectors[: len(rows)], vectors[len(rows) :])
        gold = self.gold[rows]
        if self.metric == "spearman":
            return Scored(100 * spearman(cosines, gold), (gold, cosines))
        from sklearn.metrics import average_precision_score

        return Scored(100 * float(average_precision_score(gold, cosines)), (gold, cosines))

    def interval(self, base: Scored, other: Scored) -> tuple[float, float]:
        (gold, b), (_, o) = base.items, other.items
        if self.metric == "spearman":
            return bootstrap_mean_spearman_difference([(gold, b, o)])
        return pairs_ap_interval(gold.astype(np.int64), b, o)


class RerankTask:
    """Questions with candidate answers: MAP of the cosine ranking."""

    def __init__(self, name: str, items: list[Rerank]) -> None:
        self.name, self.items = name, [item for item in items if item.positives and item.negatives]
        if len(self.items) < 10:
            raise InvalidValueError(f"{name}: need at least 10 questions with a positive and a negative answer")
        self.order = np.random.default_rng(0).permutation(len(self.items))

    @property
    def units(self) -> int:
        return len(self.items)

    def _items(self, n: int) -> list[Rerank]:
        return [self.items[i] for i in self.order[:n]]

    def texts(self, n: int) -> list[str]:
        return [t for item in self._items(n) for t in [item.query, *item.positives, *item.negatives]]

    def evaluate(self, embed, n: int) -> Scored:
        result = evaluate_rerank(embed, embed, self._items(n))
        return Scored(result["map"], (100 * result["per_query"]["ap"],))

    def interval(self, base: Scored, other: Scored) -> tuple[float, float]:
        return paired_interval(np.mean, base.items[0], other.items[0])


class ClusterTask:
    """Texts with topic labels: V-measure of k-means (k = the labels' count), mean over seeds."""

    SEEDS = 5

    def __init__(self, name: str, texts: Sequence[str], labels) -> None:
        self.name, self.all_texts = name, list(texts)
        _, self.labels = np.unique(np.asarray(labels), return_inverse=True)
        if len(self.all_texts) != len(self.labels) or len(np.unique(self.labels)) < 2:
            raise InvalidValueError(f"{name}: need texts with at least two distinct labels")
        self.order = np.random.default_rng(0).permutation(len(self.all_texts))

    @property
    def units(self) -> int:
        return len(self.all_texts)

    def texts(self, n: int) -> list[str]:
        return [self.all_texts[i] for i in self.order[:n]]

    def evaluate(self, embed, n: int) -> Scored:
        result = evaluate_clustering(embed, self.texts(n), self.labels[self.order[:n]], seeds=self.SEEDS)
        return Scored(result["v_measure"], (np.asarray(result["per_seed"]),))

    def interval(self, base: Scored, other: Scored) -> tuple[float, float]:
        return paired_interval(np.mean, base.items[0], other.items[0])  # paired by k-means seed


class RetrievalTask:
    """Queries ranked over a fixed sample of the corpus (every judged document, then random others
    up to `corpus_size`): nDCG@10. The sample keeps tuning affordable; the ranking is of the sample.
    A round with a share of the queries ranks them over their own judged documents and the same
    share of the others: with every query over all 1,000 documents, the first round alone (64
    queries) took 809 s of a 10-minute budget on the default model on 2 cores."""

    def __init__(self, name: str, data: Retrieval, corpus_size: int = 1000) -> None:
        self.name, self.data = name, data
        judged = list(dict.fromkeys(d for q in data.qrels.values() for d in q))
        others = [d for d in data.corpus if d not in set(judged)]
        rng = np.random.default_rng(0)
        self.others = [others[i] for i in rng.permutation(len(others))[: max(0, corpus_size - len(judged))]]
        self.queries = list(data.queries)
        self.order = rng.permutation(len(self.queries))

    @property
    def units(self) -> int:
        return len(self.queries)

    def _subset(self, n: int) -> Retrieval:
        ids = [self.queries[i] for i in self.order[:n]]
        judged = list(dict.fromkeys(d for q in ids for d in self.data.qrels[q]))
        others = self.others[: round(len(self.others) * min(n, self.units) / self.units)]
        corpus = {d: self.data.corpus[d] for d in judged + others}
        return Retrieval({q: self.data.queries[q] for q in ids}, corpus, {q: self.data.qrels[q] for q in ids})

    def texts(self, n: int) -> list[str]:
        subset = self._subset(n)
        return list(subset.queries.values()) + list(subset.corpus.values())

    def evaluate(self, embed, n: int) -> Scored:
        result = evaluate_retrieval(embed, embed, self._subset(n))
        return Scored(result["ndcg@10"], (100 * result["per_query"]["ndcg@10"],))

    def interval(self, base: Scored, other: Scored) -> tuple[float, float]:
        return paired_interval(np.mean, base.items[0], other.items[0])


Task = PairTask | RerankTask | ClusterTask | RetrievalTask


def job_interval(tasks: Sequence[Task], base: list[Scored], other: list[Scored]) -> tuple[float, float]:
    """A 95% paired-bootstrap interval of `other` minus `base` on the job's score (the tasks' mean)."""
    if len(tasks) > 1:
        if not all(isinstance(t, PairTask) and t.metric == "spearman" for t in tasks):
            raise InvalidValueError("several tasks in one job must all be STS pairs")
        return bootstrap_mean_spearman_difference(
            [(b.items[0], b.items[1], o.items[1]) for b, o in zip(base, other, strict=True)]
        )
    return tasks[0].interval(base[0], other[0])


Example = tuple[str, str] | None  # an in-context (sentence, answer word) before the prompt, or none


@dataclass(frozen=True)
class Candidate:
    prompt: str
    cp: CPConfig | None
    post: str  # "none", "center", "whiten-128", ...
    example: Example = None

    def label(self) -> str:
        cp = (
            "plain"
            if self.cp is None
            else (f"NR l={self.cp.layer}" if self.cp.norm == "recover" else f"NS l={self.cp.layer} a={self.cp.alpha:g}")
        )
        if self.cp is not None and self.cp.aux_template != IRRELEVANT:
            cp += f" aux '{_aux_name(self.cp.aux_template)}'"
        example = "" if self.example is None else f" with example '{self.example[0][:30]}' -> {self.example[1]}"
        return f"{self.prompt}{example} {cp}" + ("" if self.post == "none" else f" + {self.post}")


def _aux_name(template: str) -> str:
    return _aux_names().get(template, template)


@functools.cache
def _aux_names() -> dict[str, str]:
    """The grammar's wordings by template: built once, labels are made for every candidate."""
    from .aux_search import aux_candidates

    return {text: name for name, text in aux_candidates().items()}


@dataclass
class Round:
    units: int  # per task
    candidates: int
    seconds: float
    best: str
    best_score: float
    baseline_score: float


@dataclass
class TuneResult:
    job: str
    chosen: Candidate
    score: float  # the chosen candidate's dev score, last round
    baseline: float  # plain PromptEOL's, same units
    interval: tuple[float, float]  # chosen - baseline, 95%
    best: Candidate  # the best candidate, chosen or not
    best_score: float
    rounds: list[Round] = field(default_factory=list)
    seconds: float = 0.0
    complete: bool = True  # the last round scored every unit
    post: object = None  # the chosen PostProcess fit, if any
    beat_noise: bool = True
    scores: dict[str, float] = field(default_factory=dict)  # every candidate of the last round, by label


def cp_settings(
    num_layers: int, layers: Sequence[int] | None = None, alphas=ALPHAS, aux_templates: Sequence[str] = ()
) -> list[CPConfig | None]:
    """None (plain), then NS at each alpha and NR at each layer, then NR at each layer for each other
    auxiliary wording (NR has no alpha to tune: the aux-prompt search's screen); layers spread over
    1..L-1 unless given."""
    if layers is None:  # from the first layer to two thirds of the depth: later ones have little left to change
        layers = sorted({round(x) for x in np.linspace(1, max(1, 2 * num_layers // 3), LAYER_COUNT)})
    settings: list[CPConfig | None] = [None]
    for layer in layers:
        settings += [CPConfig(layer, alpha) for alpha in alphas] + [CPConfig(layer, norm="recover")]
    for aux in dict.fromkeys(aux_templates):
        if aux != IRRELEVANT:
            settings += [CPConfig(layer, norm="recover", aux_template=aux) for layer in layers]
    return settings


def example_sentences(tasks: Sequence[Task], count: int, seed: int = 0) -> list[str]:
    """`count` sentences of the tuning texts to try as in-context examples: short ones (a claim or a
    question rather than an abstract), drawn with a fixed seed."""
    texts = list(dict.fromkeys(s for t in tasks for s in t.texts(t.units) if 15 <= len(s.strip()) <= 160))
    rows = np.random.default_rng(seed).permutation(len(texts))[:count]
    return [texts[i].strip() for i in rows]


def posts(width: int) -> list[str]:
    return ["none", "center"] + [f"whiten-{k}" for k in DIMENSIONS if k < width]


def parse_budget(text: str) -> float:
    """Seconds from "90s", "10m", "1.5h" or a number of seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(text))
    if not match or float(match.group(1)) <= 0:
        raise InvalidValueError(f"budget must look like 90s, 10m or 1h, got {text!r}")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def tune(
    lm,
    job: str,
    tasks: Sequence[Task],
    budget: float,
    prompts: Sequence[str] = PROMPTS,
    layers: Sequence[int] | None = None,
    alphas: Sequence[float] = ALPHAS,
    examples: Sequence[str | tuple[str, str]] = (),
    aux_templates: Sequence[str] = (),
    start_units: int = START_UNITS,
    max_length: int = 512,
    batch_size: int = 32,
    cache=None,
    report: Callable[[str], None] = lambda line: None,
) -> TuneResult:
    """Successive halving over prompts x CP settings x post-processing (module docstring). Each prompt
    is also tried with each in-context example of `examples` (a sentence the model answers in one
    word, or a given (sentence, answer) pair), and CP with each auxiliary wording of `aux_templates`
    besides the paper's."""
    from ..encoder import CPEncoder
    from .demonstrations import answer_word

    if job not in JOBS:
        raise InvalidValueError(f"job must be one of {', '.join(JOBS)}, got {job!r}")
    started = time.perf_counter()
    settings = cp_settings(lm.num_layers, layers, alphas, aux_templates)
    baseline_key = ("prompteol", None)
    encoders = {
        (p, None): CPEncoder(lm, p, cp=None, max_length=max_length, postprocess=None)
        for p in dict.fromkeys([*prompts, "prompteol"])
    }
    for p in prompts:
        for example in examples:  # a sentence the model answers, or a (sentence, answer word) pair
            sentence, word = (example, answer_word(encoders[p, None], example)) if isinstance(example, str) else example
            if word is not None:
                shown = encoders[p, None].prompt.with_demonstrations([(sentence, word)])
                encoders[p, (sentence, word)] = CPEncoder(lm, shown, cp=None, max_length=max_length, postprocess=None)
    # PromptEOL first: the baseline is scored every round, and before the budget can stop one.
    alive: dict[tuple[str, Example], list[CPConfig | None]] = {baseline_key: [None]} | {
        key: [s for s in settings if s is None or s.layer <= encoder.output_layer]
        for key, encoder in encoders.items()
        if key[0] in prompts
    }
    largest = max(t.units for t in tasks)
    units = min(start_units, largest)
    rounds: list[Round] = []
    embedded: set[str] = set()  # texts of earlier rounds: in the cache, nothing to compute again
    while True:
        round_started = time.perf_counter()
        n = {id(t): min(units, t.units) for t in tasks}
        texts = list(dict.fromkeys(s for t in tasks for s in t.texts(n[id(t)])))
        table = {text: i for i, text in enumerate(texts)}
        scored: dict[Candidate, list[Scored]] = {}
        cut_short = False
        per_pass = None  # seconds per pass of the slowest prompt scored so far this round
        for (prompt, example), prompt_settings in alive.items():
            # A prompt runs whole or not at all: it starts only if it should end within the budget.
            passes = _passes({(prompt, example): prompt_settings}) * len(encoders[prompt, example].prompt.templates)
            ends = time.perf_counter() - started + (0 if per_pass is None else per_pass * passes)
            if len(scored) > 1 and ends > budget:
                expected = "" if per_pass is None else f" (it would take about {per_pass * passes:.0f} s)"
                report(f"the budget ended round {len(rounds) + 1} before {prompt} was scored{expected}")
                cut_short = True
                break
            prompt_started = time.perf_counter()
            vectors = encoders[prompt, example].encode_settings(
                texts, prompt_settings, batch_size=batch_size, show_progress_bar=None, cache=cache
            )
            done = (time.perf_counter() - prompt_started) / passes
            per_pass = done if per_pass is None else max(per_pass, done)
            for setting, rows in zip(prompt_settings, vectors, strict=True):
                kinds = posts(rows.shape[1]) if prompt in prompts else ["none"]
                for post, processed in _processed(rows, kinds).items():
                    embed = _lookup(processed, table)
                    candidate = Candidate(prompt, setting, post, example)
                    scored[candidate] = [t.evaluate(embed, n[id(t)]) for t in tasks]
        mean = {c: float(np.mean([s.value for s in v])) for c, v in scored.items()}
        ranked = sorted((c for c in mean if c.prompt in prompts), key=lambda c: -mean[c])
        baseline = Candidate(*BASELINE)
        if not ranked:  # only the baseline was scored (prompteol is not among the prompts searched)
            raise InvalidValueError(f"the budget ({budget:.0f} s) ended the first round before any prompt was scored")
        seconds = time.perf_counter() - round_started
        rounds.append(Round(units, len(ranked), seconds, ranked[0].label(), mean[ranked[0]], mean[baseline]))
        report(
            f"round {len(rounds)}: {units} units per task, {len(ranked)} candidates, {seconds:.0f} s; best "
            f"{ranked[0].label()} {mean[ranked[0]]:.2f} (plain PromptEOL {mean[baseline]:.2f})"
        )
        # A round's cost: its new texts through each prompt's pass, a pass growing with its settings.
        rate = seconds / max(1.0, len(set(texts) - embedded) * _passes(alive))
        embedded |= set(texts)
        if units >= largest or cut_short:
            complete = not cut_short
            break
        # Keep the best third of the (prompt, CP setting) pairs, each ranked by its best post-processing.
        pairs = list(dict.fromkeys(((c.prompt, c.example), c.cp) for c in ranked))
        next_units = min(units * GROWTH, largest)
        next_alive: dict[tuple[str, Example], list] = {baseline_key: [None]}  # the baseline, scored every round
        for key, setting in pairs[: max(2, math.ceil(len(pairs) * KEEP))]:
            next_alive.setdefault(key, [])
            if setting not in next_alive[key]:
                next_alive[key].append(setting)
        next_texts = {s for t in tasks for s in t.texts(min(next_units, t.units))} - embedded
        estimate = rate * len(next_texts) * _passes(next_alive)
        if time.perf_counter() - started + estimate > budget:
            report(f"stopping: the next round ({next_units} units) would take about {estimate:.0f} s, past the budget")
            complete = False
            break
        alive, units = next_alive, next_units
    best = ranked[0]
    low, high = job_interval(tasks, scored[baseline], scored[best])
    beat = low > 0 and mean[best] > mean[baseline]
    chosen = best if beat else baseline
    post = None
    if chosen.post != "none":
        encoder = encoders[chosen.prompt, chosen.example]
        rows = encoder.encode_settings(texts, [chosen.cp], batch_size=batch_size, show_progress_bar=False, cache=cache)[
            0
        ]
        kind, _, k = chosen.post.partition("-")
        digest = encoder.settings(chosen.cp).digest()
        post = fit_arrays(rows, kind, digest, int(k) if k else None, source=f"tune {job}")
    return TuneResult(
        job=job,
        chosen=chosen,
        score=mean[chosen],
        baseline=mean[baseline],
        interval=(low, high),
        best=best,
        best_score=mean[best],
        rounds=rounds,
        seconds=time.perf_counter() - started,
        complete=complete,
        post=post,
        beat_noise=beat,
        scores={c.label(): mean[c] for c in ranked},
    )


def _passes(alive: dict[tuple[str, Example], list]) -> float:
    """Plain passes a round runs per text: one per prompt, about a tenth of one per CP setting (each
    adds a last-token copy through the layers after its own), and half of one per auxiliary wording
    beyond the first (the first one's pass is inside the tenths, as they were measured)."""
    return sum(
        1
        + 0.1 * sum(s is not None for s in settings)
        + 0.5 * max(0, len({s.aux_template for s in settings if s is not None}) - 1)
        for settings in alive.values()
    )


def _processed(rows: np.ndarray, kinds: list[str]) -> dict[str, np.ndarray]:
    """Each post-processing of `rows`, fitted on them; whitening to k keeps the first k columns of
    one full whitening (its components come by decreasing variance), so it is fitted once."""
    out = {}
    whitened = None
    for post in kinds:
        kind, _, k = post.partition("-")
        if kind == "none":
            out[post] = rows
        elif kind == "center":
            out[post] = fit_arrays(rows, "center", "").apply(rows)
        else:
            if whitened is None:
                whitened = fit_arrays(rows, "whiten", "").apply(rows)
            out[post] = whitened[:, : int(k)] if k else whitened
    return out


def _lookup(rows: np.ndarray, table: dict[str, int]):
    return lambda texts: rows[[table[t] for t in texts]]


# -- data -------------------------------------------------------------------------------------------

DATA_HELP = {
    "sts": "a TSV with a header naming sentence1, sentence2 and score (any scale), one pair per line "
    "(public: the STS Benchmark, stsbenchmark.tar.gz; its dev split is the shared default)",
    "pairs": "a TSV with a header naming sentence1, sentence2 and label (1 = same meaning, 0 = not) "
    "(public: SemEval-2015 PIT dev, the shared default; Quora Question Pairs)",
    "reranking": 'a JSONL file, one {"query": ..., "positive": [...], "negative": [...]} per line '
    "(public: WikiQA dev, the shared default; MS MARCO)",
    "clustering": "a TSV with a header naming label and text, one text per line "
    "(public: 20 Newsgroups train subject lines, the shared default)",
    "retrieval": "a folder with corpus.jsonl ({_id, title, text}), queries.jsonl ({_id, text}) and "
    "qrels.tsv (query-id, corpus-id, score), BEIR's layout (public: SciFact train, the shared default)",
}


def refuse_test_split(path: str | Path) -> None:
    if re.search(r"(^|[^a-z])test([^a-z]|$)", Path(path).name.lower()):
        raise InvalidValueError(
            f"{path} looks like a test split: tune chooses on tuning data only (a dev or train split, or "
            "your own labelled pairs), so that the test split can measure the choice once"
        )


def user_tasks(job: str, path: str | Path) -> list[Task]:
    """The job's tuning task from the user's own labelled file (`DATA_HELP` gives each format)."""
    from .beyond import _jsonl

    refuse_test_split(path)
    path = Path(path)
    if not path.exists():
        raise InvalidValueError(f"no data at {path}; the {job} job takes {DATA_HELP[job]}")
    try:
        if job in ("sts", "pairs"):
            column = "score" if job == "sts" else "label"
            rows = _columns(path, ("sentence1", "sentence2", column))
            gold = [float(r[2]) for r in rows]
            return [PairTask(path.name, [r[0] for r in rows], [r[1] for r in rows], gold, _metric(job))]
        if job == "reranking":
            items = [Rerank(d["query"], list(d["positive"]), list(d["negative"])) for d in _jsonl(path)]
            return [RerankTask(path.name, items)]
        if job == "clustering":
            rows = _columns(path, ("label", "text"))
            return [ClusterTask(path.name, [r[1] for r in rows], [r[0] for r in rows])]
        corpus = {d["_id"]: f"{d.get('title', '')} {d['text']}".strip() for d in _jsonl(path / "corpus.jsonl")}
        qrels: dict[str, dict[str, int]] = {}
        for query, doc, score in _columns(path / "qrels.tsv", ("query-id", "corpus-id", "score")):
            qrels.setdefault(query, {})[doc] = int(score)
        queries = {q["_id"]: q["text"] for q in _jsonl(path / "queries.jsonl") if q["_id"] in qrels}
        return [RetrievalTask(path.name, Retrieval(queries, corpus, qrels))]
    except (KeyError, ValueError, TypeError) as error:
        raise InvalidValueError(f"{path} is not {DATA_HELP[job]}: {error}") from None


def _columns(path: Path, names: tuple[str, ...]) -> list[list[str]]:
    """The named columns of a headed TSV file (any order, other columns ignored), row by row."""
    from .beyond import _lines

    header, *rows = _lines(path) or [""]
    fields = header.split("\t")
    if missing := [name for name in names if name not in fields]:
        raise InvalidValueError(f"{path}: the header lacks {', '.join(missing)} (tab-separated), it has {header!r}")
    where = [fields.index(name) for name in names]
    out = []
    for number, row in enumerate(rows, start=2):
        values = row.split("\t")
        if len(values) != len(fields):
            raise InvalidValueError(f"{path}, line {number}: {len(values)} fields, expected {len(fields)}")
        out.append([values[i] for i in where])
    return out


def _metric(job: str) -> str:
    return "spearman" if job == "sts" else "ap"


def shared_tasks(job: str, data_dir=None, raw_dir=None, beyond_dir=None) -> list[Task]:
    """The job's shared tuning splits (docs/guide/evaluation.md, "Evaluation and search": the data)."""
    from .beyond import _table, find_beyond_dir, load_scifact, load_wikiqa
    from .data import find_data_dir, find_raw_stsb_dir, load_raw_stsb, load_stsb

    if job == "sts":
        senteval, raw = load_stsb(find_data_dir(data_dir), "dev"), load_raw_stsb(find_raw_stsb_dir(raw_dir), "dev")
        return [
            PairTask("SentEval STS-B dev", senteval.sentences1, senteval.sentences2, senteval.scores, "spearman"),
            PairTask("raw STS-B dev", raw.sentences1, raw.sentences2, raw.scores, "spearman"),
        ]
    root = find_beyond_dir(beyond_dir)
    if job == "pairs":
        rows = _table(root / "pair-classification" / "pit2015" / "dev.tsv", ("label", "sentence1", "sentence2"))
        return [PairTask("PIT2015 dev", [r[1] for r in rows], [r[2] for r in rows], [int(r[0]) for r in rows], "ap")]
    if job == "reranking":
        return [RerankTask("WikiQA dev", load_wikiqa(root, "dev"))]
    if job == "clustering":
        rows = _table(root / "clustering" / "20ng-subjects" / "train.tsv", ("label", "text"))
        return [ClusterTask("20NG train subjects", [r[1] for r in rows], [r[0] for r in rows])]
    return [RetrievalTask("SciFact train", load_scifact(root, "train"))]
