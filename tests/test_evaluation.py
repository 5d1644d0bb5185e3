"""Loaders, metrics and the STS evaluation, on fixtures and (when present) the real data."""

from __future__ import annotations

import numpy as np
import pytest

from cpembed.evaluation import data as senteval
from cpembed.evaluation.metrics import (
    bootstrap_accuracy_difference,
    bootstrap_mean_spearman_difference,
    bootstrap_spearman_difference,
    paired_cosine,
    pearson,
    spearman,
)
from cpembed.evaluation.sts import STS_TASKS, evaluate_sts
from senteval_fixture import write_raw_stsb, write_senteval


@pytest.fixture
def data_dir(tmp_path):
    return write_senteval(tmp_path / "downstream")


def test_spearman_and_pearson_by_hand():
    # ranks x: 1 2 3 4, ranks y: 1 3 2 4 -> d^2 = 0+1+1+0 = 2 -> 1 - 6*2/(4*15) = 0.8
    assert spearman([1, 2, 3, 4], [10, 30, 20, 40]) == pytest.approx(0.8)
    # tied x share rank 2.5: ranks 1 2.5 2.5 4 against 1 2 3 4 -> Pearson of ranks 4.5 / sqrt(4.5 * 5)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(3 / np.sqrt(10))
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4], [1, 4, 9, 100]) == pytest.approx(1.0)  # monotone, not linear
    assert pearson([1, 2, 3, 4], [1, 4, 9, 100]) == pytest.approx(151 / np.sqrt(5 * 6849))  # which Pearson sees


def test_bootstrap_interval_of_a_spearman_difference():
    rng = np.random.default_rng(0)
    gold = rng.random(400)
    noisy = gold + rng.normal(0, 0.3, 400)
    better = gold + rng.normal(0, 0.1, 400)  # clearly closer to gold
    assert bootstrap_spearman_difference(gold, noisy, noisy) == (0.0, 0.0)  # the same system
    low, high = bootstrap_spearman_difference(gold, noisy, better, resamples=300)
    point = 100 * (spearman(better, gold) - spearman(noisy, gold))
    assert 0 < low < point < high  # a real gain: the interval excludes 0 and holds the point estimate
    assert bootstrap_spearman_difference(gold, noisy, better, resamples=300) == (low, high)  # seeded
    flipped = bootstrap_spearman_difference(gold, better, noisy, resamples=300)
    assert flipped == pytest.approx((-high, -low))  # the same draws, the difference negated
    wider = bootstrap_spearman_difference(gold, noisy, better, resamples=300, level=0.99)
    assert wider[0] < low and wider[1] > high
    with pytest.raises(ValueError, match="differ in length"):
        bootstrap_spearman_difference(gold, noisy[:10], better)
    with pytest.raises(ValueError, match="too few distinct pairs"):  # one pair: every draw repeats it
        bootstrap_spearman_difference(gold[:1], noisy[:1], better[:1])


def test_bootstrap_interval_of_an_average_over_tasks():
    rng = np.random.default_rng(2)
    tasks = []
    for size, gain in ((300, 0.3), (800, 0.0)):  # one task gains, the other does not move
        gold = rng.random(size)
        baseline = gold + rng.normal(0, 0.4, size)
        tasks.append((gold, baseline, gold + rng.normal(0, 0.4 - gain, size)))
    mean = np.mean([100 * (spearman(o, g) - spearman(b, g)) for g, b, o in tasks])
    low, high = bootstrap_mean_spearman_difference(tasks, resamples=300)
    assert low < mean < high
    alone = bootstrap_spearman_difference(*tasks[0], resamples=300)
    assert high - low < alone[1] - alone[0]  # averaging with a task that holds still narrows it
    assert bootstrap_mean_spearman_difference([(g, b, b) for g, b, _ in tasks], resamples=100) == (0.0, 0.0)


def test_bootstrap_spearman_interval_is_paired_and_narrows_with_more_pairs():
    rng = np.random.default_rng(1)
    gold = rng.random(1600)
    baseline = gold + rng.normal(0, 0.5, 1600)
    other = baseline + rng.normal(0, 0.05, 1600)  # nearly the baseline: the pairs barely move their difference
    widths = []
    for n in (400, 1600):
        low, high = bootstrap_spearman_difference(gold[:n], baseline[:n], other[:n], resamples=500)
        assert low < 100 * (spearman(other[:n], gold[:n]) - spearman(baseline[:n], gold[:n])) < high
        widths.append(high - low)
    # Either score alone has an interval about 14 points wide at 400 pairs; their paired difference, under 2.
    assert widths[0] < 2
    assert widths[1] == pytest.approx(widths[0] / 2, rel=0.25)  # 4x the pairs, half the width


def test_bootstrap_spearman_leaves_out_draws_without_a_correlation():
    # Three pairs: a ninth of the draws repeat one pair and have no Spearman; the rest still give an interval.
    gold, baseline, other = np.array([1.0, 2.0, 3.0]), np.array([0.2, 0.9, 0.5]), np.array([0.1, 0.4, 0.8])
    low, high = bootstrap_spearman_difference(gold, baseline, other)
    assert -200 <= low < 100 * (spearman(other, gold) - spearman(baseline, gold)) < high <= 200
    with pytest.raises(ValueError, match="too few distinct pairs"):  # a constant list: no draw has one
        bootstrap_spearman_difference(gold, np.ones(3), other)


def test_bootstrap_interval_of_an_accuracy_difference():
    rng = np.random.default_rng(0)
    baseline = rng.random(1000) < 0.8
    other = baseline.copy()
    other[rng.choice(np.flatnonzero(~baseline), 60, replace=False)] = True  # 60 gains
    other[rng.choice(np.flatnonzero(baseline), 20, replace=False)] = False  # 20 losses: +4 points
    low, high = bootstrap_accuracy_difference(baseline, other)
    assert 0 < low < 4 < high  # 80 discordant items out of 1000: the gain is real but its size is not sharp
    # Paired, the spread comes from the 80 discordant items only: sd of (other - baseline) per item is
    # sqrt(0.08 - 0.04^2), so about 4 +- 1.96 * 100 * 0.28 / sqrt(1000) = 4 +- 1.73 (unpaired: about 4 +- 3.4).
    assert low == pytest.approx(4 - 1.73, abs=0.3) and high == pytest.approx(4 + 1.73, abs=0.3)
    assert bootstrap_accuracy_difference(baseline, other) == (low, high)  # seeded
    assert bootstrap_accuracy_difference(baseline, baseline) == (0.0, 0.0)
    assert bootstrap_accuracy_difference(other, baseline) == pytest.approx((-high, -low))  # the same draws, negated
    with pytest.raises(ValueError, match="equal, non-empty"):
        bootstrap_accuracy_difference(baseline, other[:10])


def test_paired_cosine_by_hand():
    a = np.array([[1.0, 0.0], [1.0, 1.0]])
    b = np.array([[0.0, 2.0], [2.0, 2.0]])
    np.testing.assert_allclose(paired_cosine(a, b), [0.0, 1.0])


def test_fixture_loaders(data_dir):
    year = senteval.load_sts_year(data_dir, "STS12")
    assert set(year) == set(senteval.STS_YEARS["STS12"])
    msrpar = year["MSRpar"]
    assert len(msrpar) == 3  # the unscored pair is left out
    np.testing.assert_array_equal(msrpar.scores, [4.0, 1.5, 3.25])
    assert msrpar.sentences1[1] == "two dogs run on the beach ."  # pair 2 (pair 1 had no score)
    sick = senteval.load_sick(data_dir, "test")  # CRLF
    assert len(sick) == 4 and not any("\r" in s for s in sick.sentences2)
    np.testing.assert_allclose(sick.scores, [1.0, 1.9, 2.8, 3.7])
    assert len(senteval.load_stsb(data_dir, "test")) == 6


def test_raw_stsb_reads_quotes_and_extra_columns(tmp_path):
    pairs = senteval.load_raw_stsb(write_raw_stsb(tmp_path / "raw"), "dev")
    assert len(pairs) == 3
    assert pairs.sentences1[0] == 'A man plays the "guitar".'
    assert pairs.sentences2[1] == "A cat sleeps."


def test_missing_data_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("CPEMBED_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(senteval.DataNotFoundError, match="get_transfer_data.bash"):
        senteval.find_data_dir()
    with pytest.raises(senteval.DataNotFoundError, match="missing data file"):
        senteval.load_sts_year(tmp_path, "STS12")


def test_data_dir_from_the_environment(data_dir, monkeypatch):
    monkeypatch.setenv("CPEMBED_DATA", str(data_dir))
    assert senteval.find_data_dir() == data_dir


def test_raw_stsb_dir_from_the_flag_the_environment_or_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CPEMBED_RAW_DATA", raising=False)
    with pytest.raises(senteval.DataNotFoundError, match="--raw-data DIR or set CPEMBED_RAW_DATA"):
        senteval.find_raw_stsb_dir()
    raw = write_raw_stsb(tmp_path / "raw")
    monkeypatch.setenv("CPEMBED_RAW_DATA", str(raw))
    assert senteval.find_raw_stsb_dir() == raw
    with pytest.raises(senteval.DataNotFoundError, match="no raw STS Benchmark at elsewhere"):
        senteval.find_raw_stsb_dir("elsewhere")  # a given folder wins over the environment


def test_evaluate_sts_pools_each_year(data_dir):
    calls = []

    def embed(sentences):
        calls.append(len(sentences))
        return np.random.default_rng(len(sentences)).normal(size=(len(sentences), 8))

    report = evaluate_sts(embed, STS_TASKS, data_dir)
    assert list(report["tasks"]) == list(STS_TASKS) and len(calls) == len(STS_TASKS)
    sts12 = report["tasks"]["STS12"]
    assert sts12["n"] == 15 and set(sts12["subsets"]) == set(senteval.STS_YEARS["STS12"])
    assert report["average"] == pytest.approx(np.mean([report["tasks"][t]["spearman"] for t in STS_TASKS]))


def test_sts_scores_equal_a_direct_computation(data_dir):
    vectors = {}

    def embed(sentences):  # a fixed random vector per sentence, whatever the call
        rng = np.random.default_rng
        return np.stack([vectors.setdefault(s, rng(abs(hash(s)) % 2**32).normal(size=16)) for s in sentences])

    report = evaluate_sts(embed, ["STS14"], data_dir)["tasks"]["STS14"]
    subsets = senteval.load_sts_year(data_dir, "STS14")
    pooled = senteval.Pairs.concatenate(list(subsets.values()))
    expected = 100 * spearman(paired_cosine(embed(pooled.sentences1), embed(pooled.sentences2)), pooled.scores)
    assert report["spearman"] == pytest.approx(expected)
    headlines = subsets["headlines"]
    cos = paired_cosine(embed(headlines.sentences1), embed(headlines.sentences2))
    assert report["subsets"]["headlines"] == pytest.approx(100 * spearman(cos, headlines.scores))


# -- the real data, skipped only where it is absent --------------------------------------------


def test_real_sts_counts(senteval_data):
    expected = {"STS12": 3108, "STS13": 1500, "STS14": 3750, "STS15": 3000, "STS16": 1186}
    for year, count in expected.items():
        assert sum(len(p) for p in senteval.load_sts_year(senteval_data, year).values()) == count
    assert [len(senteval.load_stsb(senteval_data, s)) for s in ("train", "dev", "test")] == [5749, 1500, 1379]
    assert [len(senteval.load_sick(senteval_data, s)) for s in ("train", "trial", "test")] == [4500, 500, 4927]


def test_real_raw_stsb_counts(raw_stsb_data):
    assert [len(senteval.load_raw_stsb(raw_stsb_data, s)) for s in ("dev", "test")] == [1500, 1379]


def test_sts_for_many_settings_equals_one_at_a_time(tiny_lm, data_dir):
    from cpembed import CPConfig, CPEncoder
    from cpembed.evaluation.sts import evaluate_sts_settings

    settings = [None, CPConfig(layer=2, alpha=2.0), CPConfig(layer=3, norm="recover")]
    together = evaluate_sts_settings(CPEncoder(tiny_lm, cp=None), settings, ["STS13", "STSBenchmark"], data_dir)
    for setting, report in zip(settings, together, strict=True):
        alone = evaluate_sts(CPEncoder(tiny_lm, cp=setting).encode, ["STS13", "STSBenchmark"], data_dir)
        for task in ("STS13", "STSBenchmark"):
            assert report["tasks"][task]["spearman"] == pytest.approx(alone["tasks"][task]["spearman"], abs=1e-6)


def test_a_sample_of_pairs_is_a_fixed_draw_without_repeats():
    from cpembed.evaluation.data import Pairs

    pairs = Pairs([f"a{i}" for i in range(10)], [f"b{i}" for i in range(10)], np.arange(10.0))
    drawn = pairs.sample(4, seed=3)
    again = pairs.sample(4, seed=3)
    assert len(drawn) == 4 and drawn.sentences1 == again.sentences1 and list(drawn.scores) == list(again.scores)
    assert len(set(drawn.sentences1)) == 4
    assert all(
        f"b{a[1:]}" == b and float(a[1:]) == s
        for a, b, s in zip(drawn.sentences1, drawn.sentences2, drawn.scores, strict=True)
    )
    assert pairs.sample(50) is pairs
