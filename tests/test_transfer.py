"""Transfer-task loaders and the logistic-regression probe."""

from __future__ import annotations

import hashlib
import warnings

import numpy as np
import pytest

from cpembed.evaluation import data as senteval
from cpembed.evaluation.transfer import evaluate_transfer
from senteval_fixture import write_transfer


def bag_of_words(sentences: list[str]) -> np.ndarray:
    """Hashed word counts with some noise: a stand-in encoder whose features carry the labels."""
    out = np.zeros((len(sentences), 64))
    for row, sentence in enumerate(sentences):
        for word in sentence.split():
            out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % 64] += 1
    return out + np.random.default_rng(0).normal(scale=0.1, size=out.shape)


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


def test_probe_is_above_chance_on_a_learnable_task(data_dir):
    report = evaluate_transfer(bag_of_words, ["MR", "SST2", "TREC", "MRPC"], data_dir, inner_folds=3)
    for task in ("MR", "SST2", "MRPC"):
        assert report["tasks"][task]["accuracy"] > 80, task
    assert report["tasks"]["TREC"]["accuracy"] > 60  # three classes: chance is 33
    assert 0 <= report["tasks"]["MRPC"]["f1"] <= 100


def test_probe_is_at_chance_on_noise(data_dir):
    rng = np.random.default_rng(1)
    report = evaluate_transfer(lambda s: rng.normal(size=(len(s), 16)), ["MR"], data_dir, inner_folds=3)
    assert report["tasks"]["MR"]["accuracy"] < 75


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
