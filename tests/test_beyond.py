"""Beyond-STS loaders, metrics (against values worked out by hand) and bootstrap intervals."""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from beyond_fixture import CORPUS, NEWSGROUPS, QRELS, TWITTER, WIKIQA, write_beyond
from cpembed.errors import InvalidValueError
from cpembed.evaluation import beyond
from cpembed.evaluation.beyond import (
    LANGUAGES,
    Rerank,
    Retrieval,
    RetrievalTally,
    evaluate_clustering,
    evaluate_pairs,
    evaluate_rerank,
    evaluate_retrieval,
    evaluate_sts_multilingual,
    find_beyond_dir,
    load_20ng,
    load_scifact,
    load_stsb_multi,
    load_twitter_url,
    load_wikiqa,
    multilingual_intervals,
    paired_interval,
    pairs_ap_interval,
    relevant_documents,
)
from cpembed.evaluation.data import DataNotFoundError
from cpembed.evaluation.metrics import spearman


@pytest.fixture
def root(tmp_path) -> Path:
    return write_beyond(tmp_path / "beyond-sts")


def bag_of_words(sentences: list[str]) -> np.ndarray:
    """Hashed word counts with a little noise: a stand-in encoder where shared words mean similar texts."""
    out = np.zeros((len(sentences), 256))
    for row, sentence in enumerate(sentences):
        for word in sentence.lower().split():
            out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % 256] += 1
    return out + np.random.default_rng(0).normal(scale=0.01, size=out.shape)


def table(vectors: dict[str, list[float]]):
    """An embed function that returns fixed vectors, to set every cosine by hand."""
    return lambda texts: np.array([vectors[t] for t in texts], dtype=np.float64)


def at_cosine(c: float) -> list[float]:
    """A unit vector whose cosine with [1, 0] is `c`."""
    return [c, math.sqrt(1 - c * c)]


# ---------------------------------------------------------------------------------------------
# Finding and loading


def test_find_beyond_dir_takes_the_argument_then_the_variable_then_the_usual_places(root, tmp_path, monkeypatch):
    assert find_beyond_dir(root) == root
    with pytest.raises(DataNotFoundError, match="CPEMBED_BEYOND_DATA") as error:
        find_beyond_dir()
    assert "--data DIR" in str(error.value) and "retrieval/scifact/" in str(error.value)
    monkeypatch.setattr(beyond, "BEYOND_PATHS", (str(tmp_path / "absent"), str(root)))
    assert find_beyond_dir() == root
    monkeypatch.setenv("CPEMBED_BEYOND_DATA", str(tmp_path / "elsewhere"))
    with pytest.raises(DataNotFoundError, match="elsewhere"):
        find_beyond_dir()
    with pytest.raises(DataNotFoundError):
        find_beyond_dir(tmp_path)  # a folder without any task folder


@pytest.mark.parametrize("task", sorted(beyond.TASK_DATA))
def test_a_missing_task_folder_names_its_files_and_a_public_source(root, tmp_path, task):
    (tmp_path / "reranking" / "wikiqa").mkdir(parents=True)  # some other task's data is there
    needed = beyond.TASK_DATA[task]
    if task != "rerank":
        with pytest.raises(DataNotFoundError) as error:
            find_beyond_dir(tmp_path, task)
        assert needed.folder in str(error.value) and needed.layout in str(error.value)
        assert "public source" in str(error.value) and "--data DIR" in str(error.value)
    assert find_beyond_dir(root, task) == root  # the fixture holds every task


def test_every_eval_command_says_what_data_it_reads():
    from click.testing import CliRunner

    from cpembed.cli import main

    for name in ("sts", "transfer", "retrieval", "rerank", "pairs", "cluster", "sts-multilingual"):
        shown = CliRunner().invoke(main, ["eval", name, "--help"], terminal_width=200).output
        assert "Data (--data DIR, or CPEMBED_" in shown and ("public source" in shown or "SentEval" in shown), name


def test_load_scifact(root):
    test = load_scifact(root, "test")
    assert list(test.queries) == ["1", "2", "3"]  # query 4 has no qrels
    assert test.qrels == {"1": {"11": 1}, "2": {"12": 1}, "3": {"14": 2, "11": 1}}
    assert len(test.corpus) == len(CORPUS)
    assert test.corpus["11"] == "Aspirin and the heart aspirin lowers the risk of heart attack in adults"
    assert test.corpus["12"] == "vitamin d supplements do not prevent bone fractures"  # no title: no leading space
    assert test.corpus["13"].endswith("pressure\u2028in teenagers")  # not cut at U+2028
    train = load_scifact(root, "train")
    assert sum(map(len, train.qrels.values())) == len(QRELS["train"]) and set(train.queries) == {"7", "8"}
    with pytest.raises(InvalidValueError, match="train is the split to choose settings on"):
        load_scifact(root, "dev")


def test_load_wikiqa(root):
    test = load_wikiqa(root, "test")
    assert len(test) == 3 and test[1] == Rerank(
        "who wrote hamlet", WIKIQA["test"][1]["positive"], ["hamlet is set in denmark ."]
    )
    assert test[0].negatives[1] == "tides follow the moon\x85s pull ."  # not cut at U+0085
    assert len(load_wikiqa(root, "dev")) == 2
    with pytest.raises(InvalidValueError, match="dev or test"):
        load_wikiqa(root, "train")


def test_load_twitter_url(root):
    first, second, labels = load_twitter_url(root)
    assert len(first) == len(second) == len(TWITTER) and first[2] == "New phone released\u2028today by Apple"
    assert labels.dtype == np.int64 and labels.tolist() == [t[0] for t in TWITTER]


def test_load_20ng_numbers_the_groups_in_sorted_order(root):
    texts, labels = load_20ng(root)
    assert len(texts) == 9 and texts[0] == NEWSGROUPS["sci.space"][0]
    assert labels.tolist() == [2, 2, 2, 1, 1, 1, 0, 0, 0]  # comp.graphics, rec.autos, sci.space


def test_load_stsb_multi(root):
    for language in LANGUAGES:
        assert [len(load_stsb_multi(root, language, split)) for split in ("dev", "test")] == [4, 3]
    pairs = load_stsb_multi(root, "zh", "test")
    assert pairs.sentences1[0].startswith("一个女孩") and pairs.scores.tolist() == [4.8, 2.4, 0.2]
    with pytest.raises(InvalidValueError, match="choose from en, de"):
        load_stsb_multi(root, "xx", "test")
    with pytest.raises(InvalidValueError, match="dev or test"):
        load_stsb_multi(root, "en", "train")


def test_loaders_name_missing_files_and_malformed_rows(root):
    (root / "pair-classification" / "twitter-url" / "test.tsv").unlink()
    with pytest.raises(DataNotFoundError, match="twitter-url"):
        load_twitter_url(root)
    path = root / "clustering" / "20ng-subjects" / "test.tsv"
    path.write_text("label\ttext\nsci.space\tone\nsci.space\n", encoding="utf-8")
    with pytest.raises(InvalidValueError, match="line 3: 1 fields, expected 2"):
        load_20ng(root)
    path.write_text("group,text\nsci.space,one\n", encoding="utf-8")
    with pytest.raises(InvalidValueError, match="expected the columns label text"):
        load_20ng(root)


def test_retrieval_checks_its_queries_and_qrels():
    with pytest.raises(InvalidValueError, match="1 without qrels"):
        Retrieval({"q": "a", "r": "b"}, {"d": "x"}, {"q": {"d": 1}})
    with pytest.raises(InvalidValueError, match="documents the corpus lacks"):
        Retrieval({"q": "a"}, {"d": "x"}, {"q": {"e": 1}})


# ---------------------------------------------------------------------------------------------
# Metrics on hand-set cosines


def test_ndcg_and_recall_with_graded_and_missing_qrels():
    # Cosines with the query fall from d1 to d5; d2 is judged 2, d4 1, d3 0; d1 and d5 are unjudged (0).
    vectors = {f"d{i}": at_cosine(1 - i / 10) for i in range(1, 6)} | {"q": [1.0, 0.0]}
    data = Retrieval({"q": "q"}, {f"d{i}": f"d{i}" for i in range(1, 6)}, {"q": {"d2": 2, "d4": 1, "d3": 0}})
    result = evaluate_retrieval(table(vectors), table(vectors), data, recall_k=2)
    dcg = 2 / math.log2(3) + 1 / math.log2(5)  # ranks 2 and 4
    ideal = 2 / math.log2(2) + 1 / math.log2(3)
    assert result["ndcg@10"] == pytest.approx(100 * dcg / ideal)  # 64.33
    assert result["recall@2"] == pytest.approx(50)  # d2 of {d2, d4} in the top two
    assert result["queries"] == 1 and result["per_query"]["ndcg@10"].tolist() == pytest.approx([dcg / ideal])
    top_one = evaluate_retrieval(table(vectors), table(vectors), data, k=1, recall_k=100)
    assert top_one["ndcg@1"] == 0 and top_one["recall@100"] == 100  # d1 is unjudged; only 5 documents


def test_retrieval_metrics_equal_pytrec_evals_as_mteb_runs_it():
    """MTEB's retrieval evaluator scores with pytrec_eval ("ndcg_cut.10", "recall.100"): without ties
    the numbers here must be its numbers, query by query, with graded, zero and missing judgments."""
    pytrec_eval = pytest.importorskip("pytrec_eval")
    rng = np.random.default_rng(7)
    vectors = {f"d{i}": rng.normal(size=8).tolist() for i in range(300)}
    vectors |= {f"q{i}": rng.normal(size=8).tolist() for i in range(25)}
    qrels = {}
    for i in range(25):
        judged = rng.choice(300, size=rng.integers(1, 12), replace=False)
        qrels[f"q{i}"] = {f"d{j}": int(rng.integers(0, 3)) for j in judged}
        qrels[f"q{i}"][f"d{judged[0]}"] = int(rng.integers(1, 3))  # at least one relevant document
    data = Retrieval({f"q{i}": f"q{i}" for i in range(25)}, {f"d{i}": f"d{i}" for i in range(300)}, qrels)
    result = evaluate_retrieval(table(vectors), table(vectors), data)
    unit = {k: np.asarray(v) / np.linalg.norm(v) for k, v in vectors.items()}
    run = {q: {d: float(unit[q] @ unit[d]) for d in data.corpus} for q in data.queries}
    theirs = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"}).evaluate(run)
    for i, q in enumerate(data.queries):
        assert result["per_query"]["ndcg@10"][i] == pytest.approx(theirs[q]["ndcg_cut_10"], abs=1e-9)
        assert result["per_query"]["recall@100"][i] == pytest.approx(theirs[q]["recall_100"], abs=1e-9)


def test_rerank_metrics_equal_pytrec_evals_map_and_reciprocal_rank():
    pytrec_eval = pytest.importorskip("pytrec_eval")
    rng = np.random.default_rng(8)
    items, qrels, run = [], {}, {}
    for i in range(30):
        size = int(rng.integers(2, 11))  # at most ten candidates: MRR@10 and an uncut reciprocal rank agree
        positives = int(rng.integers(1, size))
        texts = [f"c{i}-{j}" for j in range(size)]
        items.append(Rerank(f"q{i}", texts[:positives], texts[positives:]))
        qrels[f"q{i}"] = {t: int(j < positives) for j, t in enumerate(texts)}
    vectors = {
        text: rng.normal(size=8).tolist() for item in items for text in (item.query, *item.positives, *item.negatives)
    }
    unit = {k: np.asarray(v) / np.linalg.norm(v) for k, v in vectors.items()}
    for item in items:
        run[item.query] = {t: float(unit[item.query] @ unit[t]) for t in (*item.positives, *item.negatives)}
    result = evaluate_rerank(table(vectors), table(vectors), items)
    theirs = pytrec_eval.RelevanceEvaluator(qrels, {"map", "recip_rank"}).evaluate(run)
    assert result["per_query"]["ap"].tolist() == pytest.approx([theirs[f"q{i}"]["map"] for i in range(30)], abs=1e-9)
    assert result["per_query"]["rr"].tolist() == pytest.approx(
        [theirs[f"q{i}"]["recip_rank"] for i in range(30)], abs=1e-9
    )


def test_tied_documents_share_the_ranks_they_span():
    vectors = {"q": [1.0, 0.0], "same": [0.6, 0.8]}
    corpus = {f"d{i}": "same" for i in range(4)}  # four identical documents, one relevant
    result = evaluate_retrieval(
        table(vectors), table(vectors), Retrieval({"q": "q"}, corpus, {"q": {"d2": 1}}), recall_k=2
    )
    average_gain = (1 + 1 / math.log2(3) + 1 / math.log2(4) + 1 / math.log2(5)) / 4
    assert result["ndcg@10"] == pytest.approx(100 * average_gain)
    assert result["recall@2"] == pytest.approx(50)  # two of the four tied slots fit under the cut


def test_a_tally_counted_in_slices_and_resumed_from_json_gives_the_same_metrics():
    """A long evaluation is counted a slice at a time and saved between slices: whatever the slices,
    and across a save and load, the metrics are those of ranking the whole corpus at once."""
    rng = np.random.default_rng(11)
    vectors = {f"d{i}": rng.normal(size=6).tolist() for i in range(120)}
    vectors |= {f"twin{i}": vectors[f"d{i}"] for i in range(10)}  # exact ties with d0..d9
    vectors |= {f"q{i}": rng.normal(size=6).tolist() for i in range(15)}
    qrels = {
        f"q{i}": {f"d{j}": int(rng.integers(0, 3)) for j in rng.choice(20, size=4, replace=False)} for i in range(15)
    }
    qrels["q0"] = {"d0": 0}  # no relevant document: scores 0
    corpus = {d: d for d in vectors if not d.startswith("q")}
    data = Retrieval({q: q for q in qrels}, corpus, qrels)
    whole = evaluate_retrieval(table(vectors), table(vectors), data, k=5, recall_k=12)
    unit = {k: np.asarray(v) / np.linalg.norm(v) for k, v in vectors.items()}
    queries = np.stack([unit[q] for q in data.queries])
    relevant = relevant_documents(data)
    assert len(relevant) == len(set(relevant)) and all(d.startswith("d") for d in relevant)
    order = relevant + [d for d in corpus if d not in relevant]
    tally = RetrievalTally.start(data, queries, {d: unit[d] for d in relevant})
    with pytest.raises(InvalidValueError, match="count the rest first"):
        tally.metrics()
    for start in range(0, len(order), 17):
        ids = order[start : start + 17]
        tally.count(queries, ids, np.stack([unit[d] for d in ids]))
        tally = RetrievalTally.from_json(json.loads(json.dumps(tally.to_json())))
    sliced = tally.metrics(k=5, recall_k=12)
    for key in ("ndcg@5", "recall@12"):
        assert sliced["per_query"][key].tolist() == pytest.approx(whole["per_query"][key].tolist(), abs=1e-12)
    assert sliced["per_query"]["ndcg@5"][0] == 0 and 0 < sliced["ndcg@5"] < 100
    with pytest.raises(InvalidValueError, match="a slice came twice"):
        tally.count(queries, order[:1], unit["d0"][None])


def test_map_and_mrr_with_ties_and_a_first_answer_beyond_ten():
    vectors = {"q": [1.0, 0.0]}
    cosines = {"p1": 0.9, "p2": 0.5, "n1": 0.5, "n2": 0.2, "p3": 0.5, "n3": 0.5, "n4": 0.5, "n5": 0.1, "p4": 0.5}
    cosines |= {f"far{i}": 0.6 + i / 100 for i in range(10)}
    vectors |= {text: at_cosine(c) for text, c in cosines.items()}
    items = [
        Rerank("q", ["p1", "p2"], ["n1", "n2"]),  # p2 tied with n1: one threshold, P = 2/3 there
        Rerank("q", ["p3"], ["n3", "n4", "n5"]),  # p3 tied with two negatives at the top: rank 3
        Rerank("q", ["p4"], [f"far{i}" for i in range(10)]),  # first answer at rank 11
    ]
    result = evaluate_rerank(table(vectors), table(vectors), items)
    ap = [0.5 * 1 + 0.5 * 2 / 3, 1 / 3, 1 / 11]
    assert result["per_query"]["ap"].tolist() == pytest.approx(ap)  # per query: fractions
    assert result["per_query"]["rr"].tolist() == pytest.approx([1, 1 / 3, 0])
    assert result["map"] == pytest.approx(100 * np.mean(ap)) and result["mrr@10"] == pytest.approx(
        100 * (1 + 1 / 3) / 3
    )
    with pytest.raises(InvalidValueError, match="no positive candidate"):
        evaluate_rerank(table(vectors), table(vectors), [Rerank("q", [], ["n1"])])


def test_pair_classification_ap_and_best_thresholds():
    labels = np.array([1, 1, 0, 1, 0])
    cosines = [0.9, 0.8, 0.7, 0.6, 0.1]
    vectors = {"q": [1.0, 0.0]} | {f"s{i}": at_cosine(c) for i, c in enumerate(cosines)}
    result = evaluate_pairs(table(vectors), ["q"] * 5, [f"s{i}" for i in range(5)], labels)
    assert result["scores"] == pytest.approx(cosines)
    assert result["ap"] == pytest.approx(100 * (1 + 1 + 3 / 4) / 3)  # precision at each positive, in rank order
    # Accuracy is best at >= 0.8 (4 of 5 right); F1 at >= 0.6 (P 3/4, R 1): each its own threshold.
    assert result["accuracy"] == pytest.approx(80) and result["thresholds"]["accuracy"] == pytest.approx(0.8)
    assert result["f1"] == pytest.approx(100 * 6 / 7) and result["thresholds"]["f1"] == pytest.approx(0.6)
    assert result["pairs"] == 5
    with pytest.raises(InvalidValueError, match="both 0 and 1"):
        evaluate_pairs(table(vectors), ["q"], ["s0"], np.array([1]))


def test_v_measure_is_100_for_separate_groups_and_near_0_for_noise():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 20)
    texts = [f"t{i}" for i in range(60)]
    # Three directions, each row scaled anywhere from 1 to 1000: unit length makes the scale irrelevant.
    groups = np.eye(8)[labels] + rng.normal(scale=0.01, size=(60, 8))
    scaled = groups * rng.uniform(1, 1000, size=(60, 1))
    perfect = evaluate_clustering(table(dict(zip(texts, scaled.tolist(), strict=True))), texts, labels, seeds=5)
    assert perfect["per_seed"].tolist() == pytest.approx([100] * 5) and perfect["std"] == pytest.approx(0)
    assert perfect["texts"] == 60
    random_labels = rng.integers(0, 3, size=600)
    noise = rng.normal(size=(600, 16))
    texts = [f"n{i}" for i in range(600)]
    result = evaluate_clustering(
        table(dict(zip(texts, noise.tolist(), strict=True))), texts, random_labels, seeds=3, normalize=False
    )
    assert 0 <= result["v_measure"] < 2


def test_clustering_a_collapsed_embedding_is_an_error():
    texts = [f"t{i}" for i in range(6)]
    with pytest.raises(InvalidValueError, match="only 1 distinct embeddings for 2 clusters"):
        evaluate_clustering(lambda t: np.ones((len(t), 4)), texts, np.array([0, 1] * 3), seeds=1)


# ---------------------------------------------------------------------------------------------
# End to end, on the fixture, with a bag of words


def test_queries_equal_to_a_document_find_it():
    corpus = {f"d{i}": f"{text} {title}" for i, (title, text) in enumerate(CORPUS.values())}
    data = Retrieval(
        {f"q{i}": text for i, text in enumerate(corpus.values())}, corpus, {f"q{i}": {f"d{i}": 1} for i in range(5)}
    )
    result = evaluate_retrieval(bag_of_words, bag_of_words, data, recall_k=1)
    assert result["ndcg@10"] == pytest.approx(100) and result["recall@1"] == pytest.approx(100)


def test_every_task_scores_sensibly_end_to_end(root):
    retrieval = evaluate_retrieval(bag_of_words, bag_of_words, load_scifact(root, "test"))
    assert retrieval["queries"] == 3 and retrieval["recall@100"] == 100 and retrieval["ndcg@10"] > 90
    rerank = evaluate_rerank(bag_of_words, bag_of_words, load_wikiqa(root, "test"))
    assert rerank["queries"] == 3 and rerank["map"] > 80 and rerank["mrr@10"] > 80
    pairs = evaluate_pairs(bag_of_words, *load_twitter_url(root))
    assert (
        pairs["ap"] == pytest.approx(100)
        and pairs["accuracy"] == pytest.approx(100)
        and pairs["f1"] == pytest.approx(100)
    )
    clustering = evaluate_clustering(bag_of_words, *load_20ng(root))
    assert clustering["v_measure"] > 60 and len(clustering["per_seed"]) == 10
    sts = evaluate_sts_multilingual(bag_of_words, root)
    assert list(sts["languages"]) == list(LANGUAGES) and {r["pairs"] for r in sts["languages"].values()} == {3}
    assert sts["languages"]["en"]["spearman"] == pytest.approx(100)
    assert sts["mean"] == pytest.approx(np.mean([r["spearman"] for r in sts["languages"].values()]))
    dev = evaluate_sts_multilingual(bag_of_words, root, ["de", "fr"], split="dev")
    assert list(dev["languages"]) == ["de", "fr"] and dev["languages"]["de"] == {
        "spearman": pytest.approx(100),
        "pairs": 4,
    }


def test_each_distinct_text_is_embedded_once_in_one_call(root):
    calls = []

    def counting(texts):
        calls.append(list(texts))
        return bag_of_words(texts)

    items = load_wikiqa(root, "test") + load_wikiqa(root, "test")  # every text twice
    evaluate_rerank(counting, counting, items)
    assert len(calls) == 2 and [len(c) for c in calls] == [3, 10] and all(len(set(c)) == len(c) for c in calls)


# ---------------------------------------------------------------------------------------------
# Intervals


def test_paired_interval():
    rng = np.random.default_rng(0)
    baseline = 100 * rng.random(300)
    assert paired_interval(np.mean, baseline, baseline) == (0.0, 0.0)
    assert paired_interval(np.mean, baseline, baseline + 5) == pytest.approx((5, 5))
    other = baseline + rng.normal(1, 2, size=300)
    low, high = paired_interval(np.mean, baseline, other)
    assert low < np.mean(other - baseline) < high and high - low < 1  # pairing removes the items' spread
    assert paired_interval(np.mean, baseline, other) == (low, high)  # the seed fixes the draws
    with pytest.raises(InvalidValueError, match="two equal lists"):
        paired_interval(np.mean, baseline, other[:-1])


def test_multilingual_intervals_per_language_and_for_the_mean():
    rng = np.random.default_rng(0)
    gold = rng.random(300)
    noisy = {lang: gold + rng.normal(0, 0.5, 300) for lang in ("en", "de", "zh")}
    assert multilingual_intervals(gold, noisy, noisy, resamples=200) == dict.fromkeys(
        ["en", "de", "zh", "mean"], (0, 0)
    )
    # Better in one language only: its interval lies above 0; the mean's above 0 too, and lower.
    better = noisy | {"de": gold + rng.normal(0, 0.1, 300)}
    found = multilingual_intervals(gold, noisy, better, resamples=500)
    assert found["en"] == found["zh"] == (0, 0)
    assert 0 < found["mean"][0] < found["de"][0] and found["mean"][1] < found["de"][1]
    gain = 100 * (spearman(better["de"], gold) - spearman(noisy["de"], gold)) / 3
    assert found["mean"][0] < gain < found["mean"][1]
    with pytest.raises(InvalidValueError, match="same languages"):
        multilingual_intervals(gold, noisy, {"en": gold})


def test_pairs_ap_interval():
    rng = np.random.default_rng(0)
    labels = (rng.random(400) < 0.3).astype(int)
    baseline = rng.random(400)
    assert pairs_ap_interval(labels, baseline, baseline) == (0.0, 0.0)
    better = baseline + 0.5 * labels
    low, high = pairs_ap_interval(labels, baseline, better, resamples=500)
    ap = beyond._sklearn_metrics().average_precision_score
    assert 0 < low < 100 * (ap(labels, better) - ap(labels, baseline)) < high
    assert pairs_ap_interval(labels, baseline, 3 * baseline - 1) == (0.0, 0.0)  # AP reads the order alone


def test_pairs_ap_interval_with_few_positives_leaves_out_the_draws_without_one():
    """Two positives in ten pairs: about one draw in nine holds neither (AP undefined), and is left out
    without a warning. The other setting ranks both positives first (AP 1 on every draw that holds
    one), the baseline ranks them last: each defined draw's difference lies in (0, 100), and on all
    ten pairs it is 100 * (1 - (1/9 + 2/10) / 2) = 84.44."""
    few = np.array([1, 0, 0, 0, 0, 0, 0, 0, 1, 0])
    first, last = few + np.linspace(0, 0.5, 10), -few + np.linspace(0, 0.5, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pairs_ap_interval(few, last, 2 * last) == (0.0, 0.0)
        low, high = pairs_ap_interval(few, last, first, resamples=300)
        swapped = pairs_ap_interval(few, first, last, resamples=300)  # the same draws, each difference negated
    point = 100 * (1 - (1 / 9 + 2 / 10) / 2)  # the positives at ranks 9 and 10 of the baseline's order
    assert 0 < low < point < high < 100 and high - low > 10  # the draws differ: not a point
    assert swapped == pytest.approx((-high, -low), abs=1e-9)


# ---------------------------------------------------------------------------------------------
# The real data


def test_real_counts(beyond_data):
    for split, queries, qrels in (("test", 300, 339), ("train", 809, 919)):
        data = load_scifact(beyond_data, split)
        assert (len(data.queries), sum(map(len, data.qrels.values())), len(data.corpus)) == (queries, qrels, 5183)
    for split, questions, candidates in (("test", 243, 2351), ("dev", 126, 1130)):
        items = load_wikiqa(beyond_data, split)
        assert (len(items), sum(len(i.positives) + len(i.negatives) for i in items)) == (questions, candidates)
    first, second, labels = load_twitter_url(beyond_data)
    assert (len(first), len(second), int(labels.sum())) == (9334, 9334, 1821)
    texts, groups = load_20ng(beyond_data)
    assert (len(texts), len(np.unique(groups))) == (7532, 20)
    for language in LANGUAGES:
        assert [len(load_stsb_multi(beyond_data, language, split)) for split in ("dev", "test")] == [1500, 1379]
