"""CP the way the research code runs it: two full forward passes of whole prompts, with hooks.

The auxiliary prompt runs through every layer and the LM head; the normal prompt runs whole with
`output_hidden_states=True`; nothing is shared between prompts or sentences. It exists as the
benchmark's point of comparison (benchmarks/cp_vs_naive.py), and gives the same embeddings as `CPEncoder`.
"""

from __future__ import annotations

import numpy as np
import torch

from cpembed.config import CPConfig
from cpembed.encoder import CPEncoder
from cpembed.prompts import Template, fit_sentences, preprocess, prompt_token_ids
from cpembed.sites import site_module
from cpembed.steering import _hook, steer


class NaiveCP:
    """The settings (model, prompt, CP, output layer, max_length) of `encoder`, run the naive way."""

    def __init__(self, encoder: CPEncoder) -> None:
        self.encoder = encoder
        aux = [Template(encoder.cp.aux_template)] if encoder.cp else []
        self.templates = [*encoder.prompt.templates, *aux]

    @torch.inference_mode()
    def encode(self, sentences: list[str], batch_size: int = 16) -> np.ndarray:
        out = []
        for start in range(0, len(sentences), batch_size):
            out.append(self._embed([preprocess(s) for s in sentences[start : start + batch_size]]))
        return torch.cat(out).numpy()

    def _embed(self, sentences: list[str]) -> torch.Tensor:
        encoder, cp = self.encoder, self.encoder.cp
        sentences = fit_sentences(encoder.lm.tokenizer, self.templates, sentences, encoder.max_length)
        v_aux = self._auxiliary(sentences, cp) if cp else None
        outputs = []
        for template in encoder.prompt.templates:
            ids, mask, positions = self._left_padded(prompt_token_ids(encoder.lm.tokenizer, template, sentences))
            if cp is None:
                hidden = encoder.lm.model(
                    input_ids=ids, attention_mask=mask, position_ids=positions, output_hidden_states=True
                ).hidden_states
            else:
                module, path = site_module(encoder.lm.layers[cp.layer - 1], cp.site, encoder.lm.model_type)

                def write(x: torch.Tensor) -> torch.Tensor:
                    x = x.clone()
                    x[:, -1] = steer(x[:, -1], v_aux, cp.norm, cp.alpha).to(x.dtype)
                    return x

                with _hook(module, path.side, write):
                    hidden = encoder.lm.model(
                        input_ids=ids, attention_mask=mask, position_ids=positions, output_hidden_states=True
                    ).hidden_states
            outputs.append(hidden[encoder.output_layer][:, -1].float())
        return torch.stack(outputs).mean(0).cpu()

    def _auxiliary(self, sentences: list[str], cp: CPConfig) -> torch.Tensor:
        encoder = self.encoder
        ids, mask, positions = self._left_padded(prompt_token_ids(encoder.lm.tokenizer, self.templates[-1], sentences))
        module, path = site_module(encoder.lm.layers[cp.layer - 1], cp.site, encoder.lm.model_type)
        captured = []
        with _hook(module, path.side, lambda x: captured.append(x[:, -1].clone())):
            encoder.lm.model(input_ids=ids, attention_mask=mask, position_ids=positions)  # every layer, LM head too
        return captured[0]

    def _left_padded(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        width = max(len(row) for row in rows)
        ids = torch.full((len(rows), width), self.encoder.lm.tokenizer.pad_token_id or 0, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, width - len(row) :] = torch.tensor(row)
            mask[i, width - len(row) :] = 1
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        device = self.encoder.lm.device
        return ids.to(device), mask.to(device), positions.to(device)
