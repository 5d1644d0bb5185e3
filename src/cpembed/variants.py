"""Embeddings under many CP settings at once: the prompt runs once, its last token once per setting.

Attention is causal and CP changes only the last token, so every setting (any l, alpha, norm,
site, or none) shares every state of the prompt's earlier tokens. We append one copy of the
last token per setting to the prompt, give every copy the last token's position, and mask
attention so each copy sees the prompt and itself only. One forward pass then computes all
settings exactly; each setting's patch is applied to its own copy. The auxiliary prompt runs
once per auxiliary template and site, to the deepest layer any setting needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack

import numpy as np
import torch

from .config import CPConfig
from .encoder import OUTPUT_SIDE, CPEncoder, _sentence_list, length_sorted_batches
from .prompts import Template, fit_sentences, preprocess, prompt_token_ids
from .sites import site_module
from .steering import StopForward, capture, patch, steer


@torch.inference_mode()
def encode_variants(
    encoder: CPEncoder,
    sentences: Sequence[str],
    variants: Sequence[CPConfig | None],
    batch_size: int = 16,
    show_progress_bar: bool | None = None,
) -> list[np.ndarray]:
    """One float32 `(n, d)` array per setting in `variants` (None = no CP), each equal to
    `CPEncoder(encoder.lm, encoder.prompt, cp=variant, output_layer=...).encode(sentences)`.

    The model, prompt, output layer and max_length come from `encoder`; its own `cp` is unused.
    One exception to the equality: a sentence too long for `max_length` is cut to fit every
    auxiliary wording in `variants`, so with several wordings it may be cut shorter than alone.
    """
    texts, _ = _sentence_list(sentences)
    variants = list(variants)
    if not variants:
        raise ValueError("give at least one setting in variants (None = no CP)")
    for variant in variants:  # the same checks, and messages, as a single encoder's
        CPEncoder(encoder.lm, encoder.prompt, variant, encoder.output_layer, max_length=encoder.max_length)
    cleaned = [preprocess(text) for text in texts]
    aux_templates = dict.fromkeys(Template(v.aux_template) for v in variants if v is not None)
    templates = [*encoder.prompt.templates, *aux_templates]
    out = torch.empty(len(variants), len(cleaned), encoder.embedding_dimension)
    for rows in length_sorted_batches(cleaned, batch_size, show_progress_bar):
        batch = fit_sentences(encoder.lm.tokenizer, templates, [cleaned[i] for i in rows], encoder.max_length)
        v_aux = _auxiliary_vectors(encoder, batch, variants)
        passes = [_variants_pass(encoder, t, batch, variants, v_aux) for t in encoder.prompt.templates]
        out[:, rows] = torch.stack(passes).float().mean(0).cpu()  # (V, B, H)
    return [embeddings.numpy() for embeddings in out]


def _auxiliary_vectors(encoder: CPEncoder, sentences: list[str], variants) -> dict[tuple[str, str, int], torch.Tensor]:
    """v_aux for every (aux template, site, layer) a setting needs: one pass per (template, site)."""
    needed: dict[tuple[str, str], set[int]] = {}
    for v in variants:
        if v is not None:
            needed.setdefault((v.aux_template, v.site), set()).add(v.layer)
    found = {}
    for (template, site), layers in needed.items():
        batch = encoder._batch(Template(template), sentences)
        deepest = max(layers)
        captured: dict[int, list[torch.Tensor]] = {layer: [] for layer in layers}
        with ExitStack() as hooks:
            for layer in layers:
                module, path = site_module(encoder.lm.layers[layer - 1], site, encoder.lm.model_type)
                hooks.enter_context(capture(module, path, batch.last, captured[layer], stop=layer == deepest))
            encoder._forward(batch)
        found.update({(template, site, layer): captured[layer][0] for layer in layers})
    return found


def _variants_pass(encoder: CPEncoder, template: Template, sentences: list[str], variants, v_aux) -> torch.Tensor:
    """(V, B, hidden) last-token states at the output layer, one per setting."""
    rows = prompt_token_ids(encoder.lm.tokenizer, template, sentences)
    n_variants, batch_size = len(variants), len(rows)
    prefix = max(len(row) for row in rows) - 1  # copies of the last token start here
    width = prefix + n_variants
    _check_window(encoder, prefix + 1)
    input_ids = torch.full((batch_size, width), encoder._pad_id, dtype=torch.long)
    position_ids = torch.zeros((batch_size, width), dtype=torch.long)
    allowed = torch.eye(width, dtype=torch.bool).repeat(batch_size, 1, 1)  # (B, Q, K); padding sees itself
    for i, row in enumerate(rows):
        n = len(row) - 1
        input_ids[i, :n] = torch.tensor(row[:-1])
        input_ids[i, prefix:] = row[-1]
        position_ids[i, :n] = torch.arange(n)
        position_ids[i, prefix:] = n
        allowed[i, :n, :n] = torch.ones(n, n, dtype=torch.bool).tril()
        allowed[i, prefix:, :n] = True
    dtype, device = encoder.lm.dtype, encoder.lm.device
    mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)[:, None]
    copies = (prefix + torch.arange(n_variants)).expand(batch_size, n_variants).to(device)  # (B, V)
    captured: list[torch.Tensor] = []
    with ExitStack() as hooks:
        for j, v in enumerate(variants):
            if v is not None:
                module, path = site_module(encoder.lm.layers[v.layer - 1], v.site, encoder.lm.model_type)
                aux = v_aux[(v.aux_template, v.site, v.layer)]
                hooks.enter_context(patch(module, path, copies[:, j], _steerer(v, aux)))
        hooks.enter_context(capture(encoder._output_module(), OUTPUT_SIDE, copies, captured, stop=True))
        try:
            encoder.lm.decoder(
                input_ids=input_ids.to(device),
                attention_mask=mask.to(device),
                position_ids=position_ids.to(device),
                use_cache=False,
            )
        except StopForward:
            pass
    return captured[0].transpose(0, 1)  # (B, V, H) -> (V, B, H)


def _steerer(variant: CPConfig, v_aux: torch.Tensor):
    # A function, not a lambda in the loop: Python closes over variables, not values.
    return lambda v_nor: steer(v_nor, v_aux, variant.norm, variant.alpha)


def _check_window(encoder: CPEncoder, length: int) -> None:
    window = getattr(encoder.lm.model.config, "sliding_window", None)
    if window and length > window:
        raise ValueError(
            f"a prompt of {length} tokens exceeds this model's sliding window ({window}); the many-settings "
            f"path does not model sliding windows: use max_length <= {window} or encode each setting separately"
        )
