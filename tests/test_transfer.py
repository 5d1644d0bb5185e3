"""Transfer-task loaders and the logistic-regression probe."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from cpembed.evaluation import data as senteval
from cpembed.evaluation.transfer import evaluate_transfer, task_sentences
from senteval_fixture import write_transfer


@pytest.fixture
def data_dir(tmp_path):
    return write_transfer(tmp_path / "downstream")


def test_transfer_loaders_read_the_awkward_encodings(data_dir):
    mr = senteval.load_binary(data_dir, "MR")
    assert len(mr.sentences) == 61 and mr.labels.sum() == 31 and "un café good ." in mr.sentences
    trec = senteval.load_trec(data_dir, "train")
    assert len(trec.sentences) == 30 and "café" in trec.sentences[0]
    assert set(trec.labels) == {senteval.TREC_CLASSES.index(c) for c in ("HUM", "LOC", "NUM")}
    mrpc = senteval.load_mrpc(data_dir, "train")
    assert len(mrpc.sentences) == len(mrpc.second) == 40 and mrpc.labels[0] == 1
    assert [len(senteval.load_sst2(data_dir, s).labels) for s in ("train", "dev", "test")] == [40, 10, 10]


def _labels_of(data_dir) -> dict[str, int]:
    """Every single-sentence transfer item's label, by sentence (the fixture never gives one two labels)."""
    found: dict[str, int] = {}
    splits = [senteval.load_binary(data_dir, "MR")]
    splits += [senteval.load_sst2(data_dir, s) for s in ("train", "dev", "test")]
    splits += [senteval.load_trec(data_dir, s) for s in ("train", "test")]
    for split in splits:
        for sentence, label in zip(split.sentences, split.labels.tolist(), strict=True):
            assert found.setdefault(sentence, label) == label, sentence
    return found


def test_probe_is_perfect_where_the_features_separate_the_labels(data_dir):
    """Features that are the label itself (one-hot), and for MRPC a vector of its own for each distinct
    sentence, so that |u - v| is 0 exactly for the identical pairs that are the fixture's paraphrases:
    every test item is classified right, and MRPC's F1 is 100 as well."""
    labels = _labels_of(data_dir)
    own = {s: np.random.default_rng(i).normal(size=8) for i, s in enumerate(task_sentences("MRPC", data_dir))}
    one_hot = evaluate_transfer(
        lambda sentences: np.eye(len(senteval.TREC_CLASSES))[[labels[s] for s in sentences]],
        ["MR", "SST2", "TREC"],
        data_dir,
        inner_folds=3,
    )
    assert {task: r["accuracy"] for task, r in one_hot["tasks"].items()} == {"MR": 100, "SST2": 100, "TREC": 100}
    report = evaluate_transfer(lambda sentences: np.stack([own[s] for s in sentences]), ["MRPC"], data_dir, 3)
    assert report["tasks"]["MRPC"]["accuracy"] == 100.0
    assert report["tasks"]["MRPC"]["f1"] == 100.0


def write_skewed(root):
    """Transfer files whose training parts hold more of one class than of the others."""
    positive, negative = senteval.BINARY_TASKS["MR"]
    (root / positive).parent.mkdir(parents=True)
    (root / positive).write_text("".join(f"good film {i} .\n" for i in range(40)), encoding="latin-1")
    (root / negative).write_text("".join(f"bad film {i} .\n" for i in range(20)), encoding="latin-1")
    sst = root / "SST" / "binary"
    sst.mkdir(parents=True)
    for split, (ones, zeros) in {"train": (30, 10), "dev": (6, 4), "test": (7, 3)}.items():
        rows = [f"{split} film {i} .\t{int(i < ones)}" for i in range(ones + zeros)]
        (sst / f"sentiment-{split}").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (root / "TREC").mkdir()
    for name, counts in (("train_5500.label", (15, 10, 5)), ("TREC_10.label", (3, 3, 3))):
        rows = [
            f"{label} {name} question {i} ?"
            for label, count in zip(("HUM:ind", "LOC:city", "NUM:date"), counts, strict=True)
            for i in range(count)
        ]
        (root / "TREC" / name).write_text("\n".join(rows) + "\n", encoding="latin-1")
    (root / "MRPC").mkdir()
    for split, (ones, zeros) in {"train": (30, 10), "test": (12, 8)}.items():
        rows = [f"{int(i < ones)}\t{i}\t{i + 1000}\t{split} one {i}\t{split} two {i}" for i in range(ones + zeros)]
        (root / "MRPC" / f"msr_paraphrase_{split}.txt").write_text(
            "\ufeff" + "\n".join(["Quality\t#1 ID\t#2 ID\t#1 String\t#2 String", *rows]) + "\n", encoding="utf-8"
        )
    return root


def test_probe_predicts_the_training_majority_from_features_without_information(tmp_path):
    """Every item embedded alike: the probe can only predict the class its training part holds most
    of, so each score is a count. MR's 10 stratified folds each hold 4 of its 40 positives and 2 of
    its 20 negatives and train on 36 against 18: 4/6 right in each. SST-2 and MRPC predict 1 on tests
    of 7 of 10 and 12 of 20 positives (MRPC's F1: precision 12/20, recall 1, so 2 * 0.6 / 1.6 = 75);
    TREC predicts HUM, a third of its test."""
    data = write_skewed(tmp_path / "skewed")
    report = evaluate_transfer(lambda s: np.ones((len(s), 4)), ["MR", "SST2", "TREC", "MRPC"], data, inner_folds=3)
    tasks = report["tasks"]
    assert tasks["MR"]["accuracy"] == pytest.approx(100 * 4 / 6, abs=1e-9) and tasks["MR"]["n"] == 60
    assert tasks["SST2"]["accuracy"] == pytest.approx(70, abs=1e-9) and tasks["SST2"]["n"] == [40, 10, 10]
    assert tasks["TREC"]["accuracy"] == pytest.approx(100 / 3, abs=1e-9) and tasks["TREC"]["n"] == [30, 9]
    assert tasks["MRPC"]["accuracy"] == pytest.approx(60, abs=1e-9) and tasks["MRPC"]["n"] == [40, 20]
    assert tasks["MRPC"]["f1"] == pytest.approx(75, abs=1e-9)


def test_probe_converges_where_the_float32_hessian_cannot_be_solved():
    """More correlated features than items at a weak penalty, as MRPC's pair features of a large model:
    sklearn's Newton solver gives up on the Hessian and falls back to lbfgs, which must still converge."""
    from scipy.linalg import LinAlgWarning
    from sklearn.exceptions import ConvergenceWarning

    from cpembed.evaluation.transfer import _fit

    rng = np.random.default_rng(0)
    factors = rng.normal(size=(200, 5))
    x = factors @ rng.normal(size=(5, 400)) + 0.1 * rng.normal(size=(200, 400))
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    y = (factors[:, 0] + 0.5 * rng.normal(size=200) > 0).astype(int)
    with pytest.warns(LinAlgWarning, match="resort to lbfgs"), warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        _fit(x, y, c=1000.0)


def test_real_transfer_counts(senteval_data):
    counts = {task: len(senteval.load_binary(senteval_data, task).labels) for task in senteval.BINARY_TASKS}
    assert counts == {"MR": 10662, "CR": 3775, "SUBJ": 10000, "MPQA": 10606}
    assert [len(senteval.load_sst2(senteval_data, s).labels) for s in ("train", "dev", "test")] == [67349, 872, 1821]
    assert [len(senteval.load_trec(senteval_data, s).labels) for s in ("train", "test")] == [5452, 500]
    assert [len(senteval.load_mrpc(senteval_data, s).labels) for s in ("train", "test")] == [4076, 1725]


def test_settings_share_one_pass_and_equal_their_own_encoders(tiny_lm, data_dir):
    """One encoding pass for baseline and CP gives each setting the probe result of its own encoder."""
    from cpembed import CPConfig, CPEncoder
    from cpembed.evaluation.transfer import evaluate_transfer_settings, task_sentences

    settings = [None, CPConfig(layer=1, alpha=2.0)]
    tasks = ["MR", "MRPC"]
    together = evaluate_transfer_settings(CPEncoder(tiny_lm), settings, tasks, data_dir, 3, batch_size=8)
    for setting, shared in zip(settings, together, strict=True):
        alone = CPEncoder(tiny_lm, cp=setting)
        expected = evaluate_transfer(lambda s, e=alone: e.encode(s, batch_size=8), tasks, data_dir, inner_folds=3)
        for task in tasks:
            assert shared["tasks"][task]["accuracy"] == pytest.approx(expected["tasks"][task]["accuracy"], abs=1e-9)
        assert shared["tasks"]["MRPC"]["f1"] == pytest.approx(expected["tasks"]["MRPC"]["f1"], abs=1e-9)
    for task in tasks:  # CP's interval against the baseline holds CP's accuracy minus the baseline's
        low, high = together[1]["tasks"][task]["interval_vs_baseline"]
        difference = together[1]["tasks"][task]["accuracy"] - together[0]["tasks"][task]["accuracy"]
        assert low <= difference <= high and "interval_vs_baseline" not in together[0]["tasks"][task]
    mrpc = senteval.load_mrpc(data_dir, "test")
    assert set(mrpc.second) <= set(task_sentences("MRPC", data_dir))
    with pytest.raises(ValueError, match="unknown transfer task"):
        task_sentences("STS12", data_dir)
