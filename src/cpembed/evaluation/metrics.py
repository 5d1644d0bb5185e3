"""Cosine similarity, and rank correlation with paired-bootstrap intervals from scipy (the `eval` extra)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from ..errors import InvalidValueError, require_extra


def _stats():
    require_extra("eval", "scipy")
    from scipy import stats

    return stats


def paired_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of row i of `a` with row i of `b`."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)).clip(min=1e-12)


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    return float(_stats().pearsonr(x, y).statistic)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Ties share their average rank, as in SentEval."""
    return float(_stats().spearmanr(x, y).statistic)


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
    Percentile interval at `level`; `seed` makes it the same on every run. Draws in which a list
    repeats one value (no correlation defined; common only with a handful of pairs) are left out.
    """
    stats = _stats()
    gold, baseline, other = (np.asarray(x, dtype=np.float64) for x in (gold, baseline, other))
    if not len(gold) == len(baseline) == len(other):
        raise InvalidValueError(f"gold and similarities differ in length: {len(gold)}, {len(baseline)}, {len(other)}")
    if min(len(np.unique(x)) for x in (gold, baseline, other)) < 2:
        raise InvalidValueError(f"a list holds one value over these {len(gold)} pairs: too few distinct pairs")

    return paired_bootstrap(
        (gold, baseline, other),
        _spearman_difference,
        resamples,
        level,
        seed,
        vectorized=True,
        batch=200,  # draws per call: faster than all at once, and 200 x pairs ranks in memory
        quiet=(stats.ConstantInputWarning,),  # a draw repeating one value has no correlation
    )


def _spearman_difference(gold, baseline, other, axis):
    # Spearman is Pearson on average ranks (what spearmanr computes), here for a batch of draws at once.
    stats = _stats()
    gold, baseline, other = (stats.rankdata(x, axis=axis) for x in (gold, baseline, other))
    correlation = stats.pearsonr
    return 100 * (correlation(other, gold, axis=axis).statistic - correlation(baseline, gold, axis=axis).statistic)


def bootstrap_mean_spearman_difference(
    tasks: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """A paired bootstrap interval for the difference of an average of Spearman over tasks.

    `tasks` holds (gold, baseline, other) per task. Each resample draws pairs with replacement
    within every task, independently, and averages the tasks' differences: the interval of a
    seven-task STS average, where the tasks differ in size and are not one pool.
    """
    quiet = (_stats().ConstantInputWarning,)  # a draw repeating one value: nan, left out below
    draws = [
        _bootstrap(
            tuple(np.asarray(x, dtype=np.float64) for x in task),
            _spearman_difference,
            resamples,
            level,
            seed + i,  # each task draws its own pairs
            vectorized=True,
            batch=200,
            quiet=quiet,
        ).bootstrap_distribution
        for i, task in enumerate(tasks)
    ]
    mean = np.nanmean(np.stack(draws), axis=0)
    low, high = np.nanquantile(mean, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


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
    Each resample draws items (with replacement) and scores both classifiers on that draw.
    Percentile interval at `level`; `seed` makes it the same on every run.
    """
    baseline_correct, other_correct = (np.asarray(x, dtype=np.float64) for x in (baseline_correct, other_correct))
    if len(baseline_correct) != len(other_correct) or not len(baseline_correct):
        raise InvalidValueError(
            f"need two equal, non-empty item lists, got {len(baseline_correct)} and {len(other_correct)}"
        )
    return paired_bootstrap(
        (baseline_correct, other_correct),
        lambda baseline, other, axis: 100 * np.mean(other - baseline, axis=axis),
        resamples,
        level,
        seed,
        vectorized=True,
        batch=100,  # draws per call: 100 x items indices in memory, not 2000 x items
    )


def paired_bootstrap(
    samples: tuple[np.ndarray, ...],
    difference,
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    vectorized: bool = False,
    batch: int | None = None,
    quiet: tuple[type[Warning], ...] = (),
) -> tuple[float, float]:
    """The percentile interval at `level` of `difference(*draw)` over resamples that draw the same
    items from every array of `samples` (scipy.stats.bootstrap, paired). Draws on which the
    difference is undefined (nan: a correlation of a constant, an AP without positives) are left
    out; `quiet` names the warnings those draws raise. `seed` makes the interval the same every run."""
    result = _bootstrap(samples, difference, resamples, level, seed, vectorized, batch, quiet)
    low, high = result.confidence_interval
    if np.isnan(low):
        defined = result.bootstrap_distribution[~np.isnan(result.bootstrap_distribution)]
        if not len(defined):
            raise InvalidValueError("no resample has a defined difference: too few distinct items")
        low, high = np.quantile(defined, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def _bootstrap(samples, difference, resamples, level, seed, vectorized=False, batch=None, quiet=()):
    """scipy.stats.bootstrap, paired, percentile, with the warnings of undefined draws silenced."""
    stats = _stats()
    with warnings.catch_warnings():
        for warning in (stats.DegenerateDataWarning, *quiet):  # scipy's interval is nan then: callers redo it
            warnings.simplefilter("ignore", warning)
        return stats.bootstrap(
            samples,
            difference,
            paired=True,
            vectorized=vectorized,
            n_resamples=resamples,
            batch=batch,
            confidence_level=level,
            method="percentile",
            rng=seed,
        )
