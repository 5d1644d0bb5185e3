"""`mteb.evaluate` runs a cpembed model offline on a small STS task built from local fixture data."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import numpy as np
import pytest

# mteb creates its results cache folder when imported: keep it out of the home directory,
# in a folder removed when the test run ends.
if "MTEB_CACHE" not in os.environ:
    os.environ["MTEB_CACHE"] = tempfile.mkdtemp(prefix="cpembed-mteb-")
    atexit.register(shutil.rmtree, os.environ["MTEB_CACHE"], ignore_errors=True)
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

mteb = pytest.importorskip("mteb")

from cpembed import CPConfig, CPEncoder  # noqa: E402
from cpembed.evaluation.data import load_stsb  # noqa: E402
from cpembed.evaluation.metrics import paired_cosine, spearman  # noqa: E402
from cpembed.mteb_model import MTEBModel  # noqa: E402
from cpembed.postprocess import fit  # noqa: E402
from senteval_fixture import write_senteval  # noqa: E402

pytestmark = pytest.mark.slow


def _local_sts_task(pairs):
    from datasets import Dataset, DatasetDict
    from mteb import TaskMetadata
    from mteb.abstasks.sts import AbsTaskSTS

    class LocalSTS(AbsTaskSTS):
        min_score, max_score = 0, 5
        metadata = TaskMetadata(
            name="CPEmbedLocalSTS",
            description="STS-B dev pairs from the test fixture, loaded from memory.",
            dataset={"path": "local/cpembed-fixture", "revision": "1"},
            type="STS",
            eval_langs=["eng-Latn"],
            main_score="cosine_spearman",
            eval_splits=["test"],
            category="t2t",
            modalities=["text"],
        )

        def load_data(self, num_proc=None, **kwargs) -> None:  # from memory: nothing downloaded
            columns = {"sentence1": pairs.sentences1, "sentence2": pairs.sentences2, "score": list(pairs.scores)}
            self.dataset = DatasetDict({"test": Dataset.from_dict(columns)})
            self.data_loaded = True

    return LocalSTS()


def test_mteb_evaluate_matches_cpembeds_own_score(tiny_lm, tmp_path):
    pairs = load_stsb(write_senteval(tmp_path / "downstream"), "dev")
    encoder = CPEncoder(tiny_lm, cp=CPConfig(layer=3, alpha=2.0))
    model = MTEBModel(encoder)
    assert isinstance(model, mteb.EncoderProtocol)
    assert model.mteb_model_meta.name.startswith("cpembed/") and model.mteb_model_meta.embed_dim == 32
    results = mteb.evaluate(model, _local_sts_task(pairs), cache=None, co2_tracker=False, show_progress_bar=False)
    assert not results.exceptions
    ours = spearman(paired_cosine(encoder.encode(pairs.sentences1), encoder.encode(pairs.sentences2)), pairs.scores)
    assert results.task_results[0].get_score() == pytest.approx(ours, abs=1e-6)


def test_changed_settings_change_the_revision(tiny_lm):
    a = MTEBModel(CPEncoder(tiny_lm, cp=CPConfig(layer=3, alpha=2.0))).mteb_model_meta
    b = MTEBModel(CPEncoder(tiny_lm, cp=CPConfig(layer=3, alpha=3.0))).mteb_model_meta
    assert a.name == b.name and a.revision != b.revision
    plain = CPEncoder(tiny_lm, cp=CPConfig(layer=3, alpha=2.0))
    rows = plain.encode(["a cat", "a dog", "a bird"])
    centered = CPEncoder(
        tiny_lm, cp=CPConfig(layer=3, alpha=2.0), postprocess=fit(rows, "center", plain.settings().digest())
    )
    assert MTEBModel(centered).mteb_model_meta.revision != a.revision  # the same settings, post-processed
    similarity = MTEBModel(CPEncoder(tiny_lm)).similarity(np.eye(3), np.eye(3))
    np.testing.assert_allclose(similarity, np.eye(3))
