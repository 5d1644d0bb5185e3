"""Cosine similarity and rank correlation, as SentEval computes them (no scipy needed)."""

from __future__ import annotations

import numpy as np


def paired_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of row i of `a` with row i of `b`."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)).clip(min=1e-12)


def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing their average rank (scipy.stats.rankdata's default)."""
    x = np.asarray(x)
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    # Each run of equal values gets the mean of the ranks it spans.
    starts = np.r_[True, sorted_x[1:] != sorted_x[:-1]]
    run_id = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    last = np.r_[first[1:], len(x)] - 1
    ranks = np.empty(len(x))
    ranks[order] = (first[run_id] + last[run_id]) / 2 + 1
    return ranks


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    x, y = x - x.mean(), y - y.mean()
    return float((x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum()))


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    return pearson(rankdata(x), rankdata(y))


def bootstrap_spearman_difference(
    gold: np.ndarray,
    baseline: np.ndarray,
    other: np.ndarray,
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """A paired bootstrap interval for 100 * (Spearman(other, gold) - Spearman(baseline, gold)).

    Both similarity lists score the same pairs, so each resample draws pairs (with replacement)
    and scores both on that draw: the interval reflects how much the *difference* depends on
    which pairs the split happens to hold, which is far less than either score alone does.
    Percentile interval at `level`; `seed` makes it the same on every run.
    """
    gold, baseline, other = (np.asarray(x, dtype=np.float64) for x in (gold, baseline, other))
    if not len(gold) == len(baseline) == len(other):
        raise ValueError(f"gold and similarities differ in length: {len(gold)}, {len(baseline)}, {len(other)}")
    draws = np.random.default_rng(seed).integers(0, len(gold), size=(resamples, len(gold)))
    with np.errstate(invalid="ignore", divide="ignore"):  # a draw of one repeated pair has no correlation
        differences = np.array([100 * (spearman(other[d], gold[d]) - spearman(baseline[d], gold[d])) for d in draws])
    differences = differences[np.isfinite(differences)]
    if not len(differences):
        raise ValueError(f"no resample of these {len(gold)} pairs has a defined Spearman: too few distinct pairs")
    return _percentile_interval(differences, level)


def bootstrap_accuracy_difference(
    baseline_correct: np.ndarray,
    other_correct: np.ndarray,
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """A paired bootstrap interval for 100 * (accuracy(other) - accuracy(baseline)) on the same items.

    `*_correct` say, item by item, whether each classifier got it right. The classifiers are held
    fixed: the interval reflects which items the test data holds, not how training would vary.
    A resample changes the difference only through how many items of each discordant kind it
    draws (other right and baseline wrong, or the reverse), so those counts are drawn directly
    from their multinomial, the same distribution as drawing items with replacement.
    """
    baseline_correct, other_correct = (np.asarray(x, dtype=bool) for x in (baseline_correct, other_correct))
    if len(baseline_correct) != len(other_correct) or not len(baseline_correct):
        raise ValueError(f"need two equal, non-empty item lists, got {len(baseline_correct)} and {len(other_correct)}")
    n = len(baseline_correct)
    gains, losses = np.sum(other_correct & ~baseline_correct), np.sum(baseline_correct & ~other_correct)
    shares = [gains / n, losses / n, (n - gains - losses) / n]
    counts = np.random.default_rng(seed).multinomial(n, shares, size=resamples)
    return _percentile_interval(100 * (counts[:, 0] - counts[:, 1]) / n, level)


def _percentile_interval(differences: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1 - level) / 2
    low, high = np.quantile(differences, [tail, 1 - tail])
    return float(low), float(high)
