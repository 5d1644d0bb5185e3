"""A CPEncoder as an MTEB model (`pip install 'cpembed[mteb]'`), so `mteb.evaluate(model, tasks)` works.

import mteb
from cpembed import CPEncoder
from cpembed.mteb_model import MTEBModel

model = MTEBModel(CPEncoder("smollm2-135m", prompt="prompteol"))
mteb.evaluate(model, mteb.get_tasks(tasks=["STSBenchmark"]))
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .encoder import CPEncoder
from .errors import require_extra


class MTEBModel:
    """MTEB's encoder protocol over a `CPEncoder`: `encode` over MTEB's batches, cosine similarity.

    The model's MTEB name is `cpembed/<model>-<prompt>` and its revision a hash of every setting
    that decides an embedding, so MTEB's result cache never mixes two configurations.
    """

    def __init__(self, encoder: CPEncoder, batch_size: int = 32) -> None:
        self.encoder, self.batch_size = encoder, batch_size
        self._meta = None

    def encode(self, inputs, *, task_metadata=None, hf_split=None, hf_subset=None, prompt_type=None, **kwargs: Any):
        """Embeddings of every text in MTEB's DataLoader, in order. Queries and documents alike."""
        texts = [text for batch in inputs for text in batch["text"]]
        batch_size = kwargs.get("batch_size", self.batch_size)
        show = kwargs.get("show_progress_bar", False)
        return self.encoder.encode(texts, batch_size=batch_size, show_progress_bar=show)

    def similarity(self, embeddings1, embeddings2) -> np.ndarray:
        a, b = (_unit(np.atleast_2d(np.asarray(e, np.float32))) for e in (embeddings1, embeddings2))
        return a @ b.T

    def similarity_pairwise(self, embeddings1, embeddings2) -> np.ndarray:
        a, b = (_unit(np.atleast_2d(np.asarray(e, np.float32))) for e in (embeddings1, embeddings2))
        return (a * b).sum(-1)

    @property
    def mteb_model_meta(self):
        if self._meta is None:
            self._meta = _model_meta(self.encoder)
        return self._meta


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _model_meta(encoder: CPEncoder):
    require_extra("mteb", "mteb")
    from mteb.models import ModelMeta

    revision = encoder.spec.digest()[:12]  # the spec's: post-processing included
    model = encoder.lm.name.replace("/", "_").strip("_") or "model"
    return ModelMeta(
        loader=None,
        name=f"cpembed/{model}-{encoder.prompt.name}",
        revision=revision,
        release_date=None,
        languages=None,
        n_parameters=sum(p.numel() for p in encoder.lm.model.parameters()),
        memory_usage_mb=None,
        max_tokens=encoder.max_length,
        embed_dim=encoder.embedding_dimension,
        license=None,
        open_weights=True,
        public_training_code=None,
        public_training_data=None,
        framework=["PyTorch"],
        similarity_fn_name="cosine",
        use_instructions=False,
        training_datasets=set(),  # training-free: CP sees no data
    )
