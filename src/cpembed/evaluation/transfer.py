"""Transfer tasks: a logistic-regression probe on frozen embeddings, as SentEval runs it.

MR, CR, SUBJ, MPQA: 10-fold cross-validation. SST-2: train, regularisation chosen on dev,
tested on test. TREC and MRPC: train -> test, regularisation chosen by 10-fold CV on the train
split only. MRPC uses the pair features [u, v, |u - v|, u * v] and reports accuracy and F1.
The regularisation grid is SentEval's (C = 2^-2 .. 2^3); nothing is tuned on a test fold.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..errors import InvalidValueError, require_extra
from .data import BINARY_TASKS, load_binary, load_mrpc, load_sst2, load_trec

TRANSFER_TASKS = ("MR", "CR", "SUBJ", "MPQA", "SST2", "TREC", "MRPC")
C_GRID = tuple(2.0**t for t in range(-2, 4))
SEED = 1111  # SentEval's
MAX_ITERATIONS = 2000

Embed = Callable[[list[str]], np.ndarray]


def _sklearn():
    require_extra("eval", "sklearn")
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold

    return LogisticRegression, StratifiedKFold, f1_score


def _fit(x: np.ndarray, y: np.ndarray, c: float):
    LogisticRegression, _, _ = _sklearn()
    # Newton steps reach the regularised optimum in a handful of iterations. lbfgs stopped at its
    # default tolerance short of it on LLM features (up to 0.4 points of accuracy on an MR fold), and
    # took about twice as long for it. Where the float32 Hessian is too ill-conditioned to solve
    # (MRPC's 4 x d pair features of a 896-dimensional model), sklearn falls back to lbfgs for the iterations left:
    # the limit leaves it enough to converge, and a Newton fit never comes near it.
    return LogisticRegression(C=c, solver="newton-cholesky", max_iter=MAX_ITERATIONS).fit(x, y)


def choose_c(x: np.ndarray, y: np.ndarray, folds: int = 10) -> float:
    """The C with the best mean accuracy over stratified folds of the training data."""
    _, StratifiedKFold, _ = _sklearn()
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=SEED)
    scores = {c: [] for c in C_GRID}
    for train, held_out in splitter.split(x, y):
        for c in C_GRID:
            scores[c].append(_fit(x[train], y[train], c).score(x[held_out], y[held_out]))
    return max(C_GRID, key=lambda c: np.mean(scores[c]))


def cross_validate(x: np.ndarray, y: np.ndarray, folds: int = 10, inner_folds: int = 10) -> tuple[float, np.ndarray]:
    """Accuracy x100 of 10-fold CV (the mean of the folds', as SentEval reports it), each outer fold
    scaling and picking C on its training part only; and whether each item was classified right by
    the fold that held it out."""
    _, StratifiedKFold, _ = _sklearn()
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=SEED)
    accuracies, correct = [], np.zeros(len(y), dtype=bool)
    for train, test in splitter.split(x, y):
        x_train, x_test = _standardize(x[train], x[test])
        c = choose_c(x_train, y[train], inner_folds)
        correct[test] = _fit(x_train, y[train], c).predict(x_test) == y[test]
        accuracies.append(correct[test].mean())
    return 100 * float(np.mean(accuracies)), correct


def _standardize(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    # Raw LLM states have a few huge dimensions; scaling (fit on train only) keeps the solver well-conditioned.
    mean, std = train.mean(0), train.std(0) + 1e-8
    return [(a - mean) / std for a in (train, *others)]


def evaluate_task(embed: Embed, task: str, data_dir: Path, inner_folds: int = 10) -> dict:
    return _evaluate_task(embed, task, data_dir, inner_folds)[0]


def _evaluate_task(embed: Embed, task: str, data_dir: Path, inner_folds: int) -> tuple[dict, np.ndarray]:
    """`evaluate_task`'s result, and whether each test item (each item, under CV) was classified right."""
    started = time.perf_counter()
    if task in BINARY_TASKS:
        data = load_binary(data_dir, task)
        accuracy, correct = cross_validate(embed(data.sentences), data.labels, 10, inner_folds)
        result = {"accuracy": accuracy, "n": len(data.labels)}
    elif task == "SST2":
        train, dev, test = (load_sst2(data_dir, s) for s in ("train", "dev", "test"))
        x_train, x_dev, x_test = _standardize(embed(train.sentences), embed(dev.sentences), embed(test.sentences))
        c = max(C_GRID, key=lambda c: _fit(x_train, train.labels, c).score(x_dev, dev.labels))
        correct = _fit(x_train, train.labels, c).predict(x_test) == test.labels
        result = {"accuracy": 100 * correct.mean(), "C": c, "n": [len(train.labels), len(dev.labels), len(test.labels)]}
    elif task in ("TREC", "MRPC"):
        load = load_trec if task == "TREC" else load_mrpc
        train, test = load(data_dir, "train"), load(data_dir, "test")
        x_train, x_test = _standardize(features_of(embed, train, task), features_of(embed, test, task))
        c = choose_c(x_train, train.labels, inner_folds)
        predicted = _fit(x_train, train.labels, c).predict(x_test)
        correct = predicted == test.labels
        result = {"accuracy": 100 * correct.mean(), "C": c, "n": [len(train.labels), len(test.labels)]}
        if task == "MRPC":
            _, _, f1_score = _sklearn()
            result["f1"] = 100 * f1_score(test.labels, predicted)
    else:
        raise InvalidValueError(f"unknown transfer task {task!r}: choose from {', '.join(TRANSFER_TASKS)}")
    result["seconds"] = time.perf_counter() - started
    return result, correct


def task_sentences(task: str, data_dir: Path) -> list[str]:
    """Every distinct sentence `evaluate_task` embeds for `task`, in first-seen order."""
    if task in BINARY_TASKS:
        parts = [load_binary(data_dir, task).sentences]
    elif task == "SST2":
        parts = [load_sst2(data_dir, split).sentences for split in ("train", "dev", "test")]
    elif task in ("TREC", "MRPC"):
        load = load_trec if task == "TREC" else load_mrpc
        splits = [load(data_dir, split) for split in ("train", "test")]
        parts = [s.sentences for s in splits] + ([s.second for s in splits] if task == "MRPC" else [])
    else:
        raise InvalidValueError(f"unknown transfer task {task!r}: choose from {', '.join(TRANSFER_TASKS)}")
    return list(dict.fromkeys(sentence for part in parts for sentence in part))


def features_of(embed: Embed, data, task: str) -> np.ndarray:
    if task != "MRPC":
        return embed(data.sentences)
    u, v = embed(data.sentences), embed(data.second)
    return np.concatenate([u, v, np.abs(u - v), u * v], axis=1)


def evaluate_transfer(
    embed: Embed, tasks: Sequence[str] = TRANSFER_TASKS, data_dir: Path | None = None, inner_folds: int = 10
) -> dict:
    return summarize_transfer({task: evaluate_task(embed, task, data_dir, inner_folds) for task in tasks})


def evaluate_transfer_settings(
    encoder,
    settings: Sequence,
    tasks: Sequence[str] = TRANSFER_TASKS,
    data_dir: Path | None = None,
    inner_folds: int = 10,
    batch_size: int = 16,
    show_progress_bar: bool | None = None,
    cache=None,
) -> list[dict]:
    """`evaluate_transfer` for several CP settings (None = baseline) of one encoder.

    A task's sentences are embedded once for all settings (one prompt pass, one last token per
    setting), so a baseline-vs-CP comparison costs little more than the baseline alone. Each
    setting's result equals `evaluate_transfer` with its own encoder, except under `shuffle`,
    whose partners are drawn from all of a task's sentences at once. With `cache` (an
    `EmbeddingCache`), an interrupted pass resumes where it stopped.

    When the first setting is the baseline (None), every other setting's task result also holds
    `interval_vs_baseline`: a 95% paired-bootstrap interval of its accuracy minus the baseline's
    over the test items (under CV, every item; `bootstrap_accuracy_difference`).
    """
    from .controls import encode_with_controls
    from .metrics import bootstrap_accuracy_difference
    from .sts import precomputed_embed

    results: list[dict] = [{} for _ in settings]
    for task in tasks:
        started = time.perf_counter()
        sentences = task_sentences(task, data_dir)
        embeddings = encode_with_controls(encoder, sentences, settings, batch_size, show_progress_bar, cache)
        shared_seconds = time.perf_counter() - started  # the one encoding pass all settings share
        correct = []
        for result, vectors in zip(results, embeddings, strict=True):
            result[task], right = _evaluate_task(precomputed_embed(sentences, vectors), task, data_dir, inner_folds)
            result[task]["encoding_seconds"] = shared_seconds
            correct.append(right)
        if settings[0] is None:
            for result, right in zip(results[1:], correct[1:], strict=True):
                result[task]["interval_vs_baseline"] = list(bootstrap_accuracy_difference(correct[0], right))
    return [summarize_transfer(result) for result in results]


def summarize_transfer(results: dict[str, dict]) -> dict:
    """Per-task results with their mean accuracy."""
    return {"tasks": results, "average": float(np.mean([r["accuracy"] for r in results.values()]))}
