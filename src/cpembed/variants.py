"""Embeddings under many CP settings at once: the prompt runs once, its last token once per setting.

Attention is causal and CP changes only the last token, so every setting (any l, alpha, norm,
site, or none) shares every state of the prompt's earlier tokens. We append one copy of the
last token per setting to the prompt, give every copy the last token's position, and mask
attention so each copy sees the prompt and itself only. One forward pass then computes all
settings exactly; each setting's patch is applied to its own copy. The auxiliary prompt runs
once per auxiliary template and site, to the deepest layer any setting needs.

A batch is packed into one sequence with no padding (packing.py), and the token prefix all its
prompts share (the template's opening words) is computed once per model, not once per prompt.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from contextlib import ExitStack

import numpy as np
import torch
from tqdm.auto import tqdm

from .config import CPConfig
from .controls import partner_texts as shuffle_partner_texts
from .encoder import OUTPUT_SIDE, CPEncoder, _sentence_list, length_sorted_batches, progress_bar
from .packing import pack, pack_budget, within_budget
from .prompts import Template, fit_sentences, preprocess, prompt_token_ids, warn_cut
from .sites import site_module
from .steering import capture, intervene, patch


@torch.inference_mode()
def encode_variants(
    encoder: CPEncoder,
    sentences: Sequence[str],
    variants: Sequence[CPConfig | None],
    batch_size: int = 16,
    show_progress_bar: bool | None = None,
    shuffle_partners: Sequence[str] | None = None,
    bar: tqdm | None = None,
    count_cut: bool = False,
) -> list[np.ndarray] | tuple[list[np.ndarray], int]:
    """One float32 `(n, d)` array per setting in `variants` (None = no CP), each equal to
    `CPEncoder(encoder.lm, encoder.prompt, cp=variant, output_layer=...).encode(sentences)`.

    `shuffle_partners` gives the sentence whose auxiliary vector each sentence takes under the
    `shuffle` control; by default `controls.partners` picks them from `sentences`. A caller that
    encodes a long input in parts passes the partners of the whole input, so parts change nothing.

    The model, prompt, output layer and max_length come from `encoder`; its own `cp` is unused.
    One exception to the equality: a sentence too long for `max_length` is cut to fit every
    auxiliary wording in `variants`, so with several wordings it may be cut shorter than alone.

    `bar` is a progress bar the caller owns (else one is shown as `show_progress_bar` says);
    `count_cut=True` returns how many sentences were cut too, and leaves the warning to the caller.
    """
    texts, _ = _sentence_list(sentences)
    variants = list(variants)
    if not variants:
        raise ValueError("give at least one setting in variants (None = no CP)")
    for variant in variants:  # the same checks, and messages, as a single encoder's
        CPEncoder(encoder.lm, encoder.prompt, variant, encoder.output_layer, max_length=encoder.max_length)
    cleaned = [preprocess(text) for text in texts]
    aux_templates = dict.fromkeys(Template(v.aux_template) for v in variants if v is not None and v.needs_aux_pass)
    templates = [*encoder.prompt.templates, *aux_templates]
    partner_texts = None
    if any(_source(v) == "partner" for v in variants):
        if shuffle_partners is None:
            partner_texts = shuffle_partner_texts(cleaned)
        elif len(shuffle_partners) != len(cleaned):
            raise ValueError(f"shuffle_partners has {len(shuffle_partners)} texts for {len(cleaned)} sentences")
        else:
            partner_texts = [preprocess(text) for text in shuffle_partners]
    means = _reference_vectors(encoder, variants)
    if show_progress_bar is None:
        show_progress_bar = len(cleaned) > batch_size and sys.stderr.isatty()
    with ExitStack() as stack:
        if bar is None:
            bar = stack.enter_context(progress_bar(len(cleaned), show_progress_bar))
        out, cut = _encode_batches(encoder, cleaned, partner_texts, templates, variants, means, batch_size, bar)
    if count_cut:
        return [embeddings.numpy() for embeddings in out], cut
    warn_cut(cut, encoder.max_length)
    return [embeddings.numpy() for embeddings in out]


def _encode_batches(encoder, cleaned, partner_texts, templates, variants, means, batch_size, bar):
    """(V, n, d) embeddings of cleaned sentences, and how many were cut to fit."""
    out = torch.empty(len(variants), len(cleaned), encoder.embedding_dimension)
    budget = pack_budget(encoder.lm.device)
    cut = 0
    for rows in length_sorted_batches(cleaned, batch_size, bar):
        batch = fit_sentences(encoder.lm.tokenizer, templates, [cleaned[i] for i in rows], encoder.max_length)
        cut += sum(cleaned[i] != text for i, text in zip(rows.tolist(), batch, strict=True))
        others = None
        if partner_texts:
            others = [partner_texts[i] for i in rows]
            others = fit_sentences(encoder.lm.tokenizer, templates, others, encoder.max_length)
        for part in within_budget(encoder.lm.tokenizer, templates, batch, len(variants), budget):
            embedded = _encode_part(encoder, batch[part], others[part] if others else None, variants, means)
            out[:, rows[part]] = embedded.cpu()
    return out, cut


def _encode_part(encoder: CPEncoder, sentences: list[str], others: list[str] | None, variants, means) -> torch.Tensor:
    """(V, B, H) embeddings of one pack of cleaned, already cut sentences; `others` are the shuffle partners."""
    aux_inputs = {"own": sentences, **({"partner": others} if others else {})}
    v_aux = _auxiliary_vectors(encoder, aux_inputs, variants)
    v_aux.update({key: mean.expand(len(sentences), -1) for key, mean in means.items()})
    passes = [_variants_pass(encoder, t, sentences, variants, v_aux) for t in encoder.prompt.templates]
    return torch.stack(passes).float().mean(0)  # CK: mean over its two prompts


def _source(variant: CPConfig | None) -> str | None:
    """Where a setting's v_aux comes from: the sentence's own auxiliary prompt, another's, a fixed mean."""
    if variant is None or variant.intervention in ("zero", "scale"):
        return None
    return {"contrast": "own", "shuffle": "partner", "mean": "mean"}[variant.intervention]


def _aux_key(variant: CPConfig) -> tuple[str, str, str, int]:
    return (_source(variant), variant.aux_template, variant.site, variant.layer)


def _reference_vectors(encoder: CPEncoder, variants) -> dict[tuple, torch.Tensor]:
    """The mean control's fixed v_aux, (1, D), for every (template, site, layer) a `mean` setting uses."""
    found = {}
    for v in variants:
        if _source(v) == "mean" and _aux_key(v) not in found:
            single = CPEncoder(encoder.lm, encoder.prompt, v, encoder.output_layer, max_length=encoder.max_length)
            found[_aux_key(v)] = single.reference_aux_vector()
    return found


def _auxiliary_vectors(encoder: CPEncoder, aux_inputs: dict[str, list[str]], variants) -> dict[tuple, torch.Tensor]:
    """v_aux, (B, D), for every (source, template, site, layer) a setting needs: one pass per
    (source, template, site), where `aux_inputs[source]` are the sentences put into the template."""
    needed: dict[tuple[str, str, str], set[int]] = {}
    for v in variants:
        if v is not None and v.needs_aux_pass:
            needed.setdefault((_source(v), v.aux_template, v.site), set()).add(v.layer)
    found = {}
    for (source, template, site), layers in needed.items():
        rows = prompt_token_ids(encoder.lm.tokenizer, Template(template), aux_inputs[source])
        packed = pack(encoder.lm, template, rows, k=1)
        last = packed.copies.T  # (1, B): the packed batch is one row
        deepest = max(layers)
        captured: dict[int, list[torch.Tensor]] = {layer: [] for layer in layers}
        with ExitStack() as hooks:
            for layer in layers:
                module, path = site_module(encoder.lm.layers[layer - 1], site, encoder.lm.model_type)
                hooks.enter_context(capture(module, path, last, captured[layer], stop=layer == deepest))
            packed.run(encoder.lm)
        found.update({(source, template, site, layer): captured[layer][0][0] for layer in layers})  # (B, D)
    return found


def _variants_pass(encoder: CPEncoder, template: Template, sentences: list[str], variants, v_aux) -> torch.Tensor:
    """(V, B, hidden) last-token states at the output layer, one per setting."""
    rows = prompt_token_ids(encoder.lm.tokenizer, template, sentences)
    packed = pack(encoder.lm, template.text, rows, k=len(variants))
    copies = packed.copies  # (B, V)
    captured: list[torch.Tensor] = []
    with ExitStack() as hooks:
        for j, v in enumerate(variants):
            if v is not None:
                module, path = site_module(encoder.lm.layers[v.layer - 1], v.site, encoder.lm.model_type)
                aux = v_aux[_aux_key(v)] if _source(v) else None
                hooks.enter_context(patch(module, path, copies[None, :, j], _intervention(v, aux)))
        flat = copies.reshape(1, -1)  # (1, B * V)
        hooks.enter_context(capture(encoder._output_module(), OUTPUT_SIDE, flat, captured, stop=True))
        packed.run(encoder.lm)
    return captured[0].reshape(len(rows), len(variants), -1).transpose(0, 1)  # (V, B, H)


def _intervention(variant: CPConfig, v_aux: torch.Tensor | None):
    # A function, not a lambda in the loop: Python closes over variables, not values.
    return lambda v_nor: intervene(v_nor, v_aux, variant)
