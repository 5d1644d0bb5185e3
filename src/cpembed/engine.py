"""The one engine: prompts as padded rows, the last token copied once per setting, the opening cached.

Attention is causal and CP changes only the last token, so every setting (none, any CP setting,
any control) shares every state of a prompt's earlier tokens. A row holds one prompt with its
last token repeated k times; a 4-D attention mask lets each copy see the prompt and itself only,
and each copy takes the last token's position. One forward pass computes k settings exactly,
each patched on its own copy: k = 1 is plain encoding, k > 1 is a grid in one pass. The
auxiliary prompt runs once per (sentences, template, site), through the deepest layer needed.

Every prompt of a template starts with the same tokens (its opening words). Their keys and
values are computed once per loaded model, kept on it, and handed to every later forward, normal
and auxiliary prompts alike. A batch reuses only the leading ids it shares with the stored ones,
so a tokenizer that merges the template's last word with a sentence only shortens what is reused.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import DynamicCache
from transformers.cache_utils import Cache, DynamicLayer

from .config import TPConfig
from .errors import InvalidValueError
from .models import LanguageModel
from .prompts import Prompt, Template, fit_sentences, placeholder_token_ids, preprocess, prompt_token_ids
from .sites import SitePath, site_module
from .steering import OWN, Steering, capture, copy_token, patch, run_until_stopped, set_token
from .validation import integer

OUTPUT_SIDE = SitePath("", "output")  # hidden_states[k] is a module's output
INPUT_SIDE = SitePath("", "input")  # a decoder layer's input: hidden_states[k - 1]


Setting = Steering | None  # None: the plain prompt embedding


def output_module(lm: LanguageModel, output_layer: int) -> nn.Module:
    """The module whose output is hidden_states[output_layer] (0..L)."""
    if output_layer == 0:
        return lm.decoder.get_input_embeddings()
    if output_layer == lm.num_layers:
        return lm.decoder.norm  # the final normed state
    return lm.layers[output_layer - 1]


@torch.inference_mode()
def encode(
    lm: LanguageModel,
    prompt: Prompt,
    output_layer: int,
    max_length: int,
    sentences: Sequence[str],
    settings: Sequence[Setting],
    batch_size: int = 32,
    bar: tqdm | None = None,
    aux_sentences: dict[str, Sequence[str]] | None = None,
    tp: TPConfig | None = None,
) -> tuple[torch.Tensor, int]:
    """Embeddings `(len(settings), n, hidden)` float32 of `sentences` under every setting, in input
    order, and how many sentences were cut to fit `max_length`.

    Sentences are cleaned (`preprocess`), then cut so that every prompt they go into fits; one
    cut serves all, so a setting's normal and auxiliary prompts always see the same words.
    `aux_sentences[name]` lists, per sentence, what fills the auxiliary prompt of the steerings
    whose `aux_source` is `name`. `bar` moves after every batch. CK averages its two prompts.
    `tp` adds Token Prepending to the normal prompts (config.TPConfig).
    """
    integer("batch_size", batch_size)
    settings = list(settings)
    names = [None if s is None else (s.key, s.aux_source) for s in settings]
    distinct = list(dict.fromkeys(names))
    if len(distinct) < len(settings):  # a repeated setting would cost another copy in every pass
        unique = [settings[names.index(name)] for name in distinct]
        out, cut = encode(lm, prompt, output_layer, max_length, sentences, unique, batch_size, bar, aux_sentences, tp)
        return out[[distinct.index(name) for name in names]], cut
    cleaned = [preprocess(s) for s in sentences]
    sources = {OWN: cleaned} | {name: [preprocess(s) for s in texts] for name, texts in (aux_sentences or {}).items()}
    needed = {s.aux_source for s in settings if s is not None and s.aux_template is not None}
    for name in needed:
        if name not in sources or len(sources[name]) != len(cleaned):
            raise InvalidValueError(f"a setting needs aux_sentences[{name!r}]: one text per sentence")
    aux_templates = dict.fromkeys(Template(s.aux_template) for s in settings if s is not None and s.aux_template)
    templates = [*prompt.templates, *aux_templates]
    out = torch.empty(len(settings), len(cleaned), lm.hidden_size, dtype=torch.float32)
    groups = _sharing_groups(settings, tp)
    if tp is not None:
        max_length -= 1  # the placeholder's token
    cut = 0
    order = longest_first(lm.tokenizer, cleaned)
    for start in range(0, len(cleaned), batch_size):
        rows = order[start : start + batch_size]
        fitted = {
            name: fit_sentences(lm.tokenizer, templates, [texts[i] for i in rows], max_length)
            for name, texts in sources.items()
            if name == OWN or name in needed
        }
        cut += sum(cleaned[i] != text for i, text in zip(rows.tolist(), fitted[OWN], strict=True))
        v_aux = _auxiliary_vectors(lm, settings, fitted)
        for group in groups:
            shared = [settings[j] for j in group]
            passes = [_normal_pass(lm, t, fitted[OWN], shared, v_aux, output_layer, tp) for t in prompt.templates]
            out[torch.tensor(group)[:, None], rows[None, :]] = torch.stack(passes).float().mean(0).cpu()
        if bar is not None:
            bar.update(len(rows))
    return out, cut


def longest_first(tokenizer, texts: list[str]) -> torch.Tensor:
    """Indices of `texts`, most tokens first, so a batch pads little (sorting by characters pads
    more, since characters per token vary)."""
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]] if texts else []
    return torch.from_numpy(np.argsort([-n for n in lengths], kind="stable").astype(np.int64))


@torch.inference_mode()
def auxiliary_vectors(
    lm: LanguageModel, template: str, site: str, layers: Sequence[int], sentences: list[str]
) -> dict[int, torch.Tensor]:
    """v_aux per layer, `(B, width)`: the site's vector at the last token of `template` filled with
    `sentences` (cleaned and cut already), running layers 1..max(layers) only."""
    batch = _Batch.of(lm, Template(template), sentences, k=1)
    deepest = max(layers)
    captured: dict[int, list[torch.Tensor]] = {layer: [] for layer in layers}
    with ExitStack() as hooks:
        for layer in layers:
            module, path = site_module(lm.layers[layer - 1], site, lm.model_type)
            hooks.enter_context(capture(module, path, batch.copies[:, 0], captured[layer], stop=layer == deepest))
        batch.run(lm)
    return {layer: found[0] for layer, found in captured.items()}


def _sharing_groups(settings: list[Setting], tp: TPConfig | None) -> list[list[int]]:
    """Indices of the settings that share a normal pass: all of them, except that with TP a
    setting that steers before TP's last layer changes what TP copies, so it runs alone."""
    alone = [j for j, s in enumerate(settings) if tp is not None and s is not None and s.layer < tp.last]
    shared = [j for j in range(len(settings)) if j not in alone]
    return [group for group in [shared, *([j] for j in alone)] if group]


def _auxiliary_vectors(lm: LanguageModel, settings: list[Setting], fitted: dict[str, list[str]]) -> dict:
    """v_aux for every (source, template, site, layer) a setting needs: one pass per (source, template, site)."""
    needed: dict[tuple[str, str, str], set[int]] = {}
    for s in settings:
        if s is not None and s.aux_template is not None:
            needed.setdefault((s.aux_source, s.aux_template, s.site), set()).add(s.layer)
    found = {}
    for (source, template, site), layers in needed.items():
        vectors = auxiliary_vectors(lm, template, site, sorted(layers), fitted[source])
        found.update({(source, template, site, layer): v for layer, v in vectors.items()})
    return found


def _normal_pass(
    lm, template: Template, sentences: list[str], settings: list[Setting], v_aux: dict, output_layer, tp=None
):
    """(k, B, hidden) last-token states at the output layer, one per setting, each patched on its own copy."""
    batch = _Batch.of(lm, template, sentences, k=len(settings), tp=tp is not None)
    captured: list[torch.Tensor] = []
    with ExitStack() as hooks:
        if tp is not None:
            _prepend(hooks, lm, batch, tp)
        for j, s in enumerate(settings):
            if s is not None:
                module, path = site_module(lm.layers[s.layer - 1], s.site, lm.model_type)
                aux = v_aux[(s.aux_source, s.aux_template, s.site, s.layer)] if s.aux_template else None
                hooks.enter_context(patch(module, path, batch.copies[:, j], _bound(s.replace, aux)))
        # Registered after the patches, so a shared module's patch runs first.
        hooks.enter_context(capture(output_module(lm, output_layer), OUTPUT_SIDE, batch.copies, captured, stop=True))
        batch.run(lm)
    return captured[0].transpose(0, 1)


def _prepend(hooks: ExitStack, lm: LanguageModel, batch: _Batch, tp: TPConfig) -> None:
    """Token Prepending's hooks: the placeholder's embedding, then at the input of each of layers
    first..last the last token's state copied onto the placeholder."""
    if tp.first > 1:  # else layer 1's input at the placeholder is replaced, and its embedding never read
        vector = torch.randn(lm.hidden_size, generator=torch.Generator().manual_seed(tp.seed)).to(lm.device)
        hooks.enter_context(set_token(lm.decoder.get_input_embeddings(), OUTPUT_SIDE, batch.placeholder, vector))
    for layer in range(tp.first, min(tp.last, lm.num_layers) + 1):
        hooks.enter_context(copy_token(lm.layers[layer - 1], INPUT_SIDE, batch.copies[:, 0], batch.placeholder))


def _bound(replace, v_aux):
    # A function, not a lambda in the loop: Python closes over variables, not values.
    return lambda v_nor: replace(v_nor, v_aux)


@dataclass
class _Batch:
    """Prompts as padded rows after the cached opening, each last token copied k times.

    Row i: [prompt i's tokens after the opening, but its last | its last token x k | padding].
    Every token sees the opening and the earlier tokens of its own prompt; a copy sees those and
    itself, never another copy, so each prompt's states are exactly those of running it alone.
    """

    input_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, 1, T, cached + T) additive, or (B, T) where the window bites
    position_ids: torch.Tensor  # (B, T)
    copies: torch.Tensor  # (B, k) indices into a row of its last token's copies
    prefix: list[tuple[torch.Tensor, torch.Tensor]]  # per layer (keys, values) of the cached opening
    placeholder: int | None = None  # the column of Token Prepending's placeholder token

    @staticmethod
    def of(lm: LanguageModel, template: Template, sentences: list[str], k: int, tp: bool = False) -> _Batch:
        """Call it before entering any hook: the first batch of a template runs the decoder over its opening.
        With `tp`, each row holds Token Prepending's placeholder, never part of the cached opening."""
        placeholder = None
        if tp:
            rows, placeholder = placeholder_token_ids(lm.tokenizer, template, sentences, _pad_id(lm))
        else:
            rows = prompt_token_ids(lm.tokenizer, template, sentences)
        window = getattr(lm.model.config, "sliding_window", None)
        if window and max(len(row) for row in rows) + k - 1 > window:
            # One mask cannot hold both a sliding window's layers and the full ones: let the
            # model build its own masks from a padding mask, without the cached opening.
            if k > 1:
                raise InvalidValueError(
                    f"a prompt exceeds this model's sliding window ({window} tokens), so its settings cannot "
                    f"share one pass: use max_length <= {window - k + 1} or encode each setting separately"
                )
            return dataclasses.replace(_Batch._unshared(lm, rows), placeholder=placeholder)
        shared = _common_prefix(rows) if placeholder is None else min(_common_prefix(rows), placeholder)
        cached, prefix = _cached_opening(lm, template.text, rows[0][:shared])
        tails = [row[cached:] for row in rows]
        middles = torch.tensor([len(t) - 1 for t in tails])  # (B,) tokens before the last
        width = int(middles.max()) + k
        input_ids = torch.full((len(rows), width), _pad_id(lm), dtype=torch.long)
        for i, tail in enumerate(tails):
            input_ids[i, : len(tail) - 1 + k] = torch.tensor(tail[:-1] + [tail[-1]] * k)
        index = torch.arange(width)
        # A key is seen by the later queries of its row if it is a prompt token, and by itself.
        prompt_key = index[None, None, :] < middles[:, None, None]
        allowed = (prompt_key & (index[None, None, :] <= index[None, :, None])) | torch.eye(width, dtype=torch.bool)
        allowed = torch.cat([torch.ones(len(rows), width, cached, dtype=torch.bool), allowed], dim=2)
        mask = torch.zeros(allowed.shape, dtype=lm.dtype).masked_fill(~allowed, torch.finfo(lm.dtype).min)
        positions = cached + torch.minimum(index[None, :], middles[:, None])  # the copies share the last position
        copies = middles[:, None] + torch.arange(k)[None, :]
        device = lm.device
        prefix = [(keys.expand(len(rows), -1, -1, -1), values.expand(len(rows), -1, -1, -1)) for keys, values in prefix]
        tail_placeholder = None if placeholder is None else placeholder - cached
        return _Batch(
            input_ids.to(device),
            mask[:, None].to(device),
            positions.to(device),
            copies.to(device),
            prefix,
            tail_placeholder,
        )

    @staticmethod
    def _unshared(lm: LanguageModel, rows: list[list[int]]) -> _Batch:
        """Whole prompts right-padded, with a plain padding mask (one copy of each last token)."""
        width = max(len(row) for row in rows)
        input_ids = torch.full((len(rows), width), _pad_id(lm), dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            input_ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        copies = torch.tensor([[len(row) - 1] for row in rows])
        device = lm.device
        return _Batch(input_ids.to(device), mask.to(device), positions.to(device), copies.to(device), [])

    def run(self, lm: LanguageModel) -> None:
        """Run the decoder until a hook has what it needs; the LM head never runs."""
        run_until_stopped(
            lm.decoder,
            input_ids=self.input_ids,
            attention_mask=self.attention_mask,
            position_ids=self.position_ids,
            **_cache_arguments(lm, self.prefix),
        )


def _pad_id(lm: LanguageModel) -> int:
    tokenizer = lm.tokenizer
    return next(i for i in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0) if i is not None)


def _common_prefix(rows: list[list[int]]) -> int:
    """How many leading token ids every row shares, leaving each row at least its last token.

    Comparing the ids of whole prompts (not a separately tokenized template) keeps this exact
    even when a tokenizer merges across the template's boundary.
    """
    first, limit = rows[0], min(len(row) for row in rows) - 1
    shared = 0
    while shared < limit and all(row[shared] == first[shared] for row in rows):
        shared += 1
    return shared


def _cached_opening(lm: LanguageModel, template: str, ids: list[int]) -> tuple[int, list]:
    """How many leading tokens of `ids` have keys and values cached on `lm`, and those, per layer.

    The first batch of a template stores its whole shared prefix; every later batch reuses the
    longest run of ids it has in common with it (a token's keys and values depend only on the
    tokens before it), so a first batch whose sentences share a first word costs nothing.
    """
    if not ids:
        return 0, []
    key = (template, str(lm.device), lm.dtype)
    if key not in lm.prefix_states:
        lm.prefix_states[key] = (list(ids), _opening_states(lm, ids))
    stored_ids, states = lm.prefix_states[key]
    n = 0
    while n < min(len(ids), len(stored_ids)) and ids[n] == stored_ids[n]:
        n += 1
    return n, [(keys[..., :n, :], values[..., :n, :]) for keys, values in states]


def _opening_states(lm: LanguageModel, ids: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    cache = DynamicCache()
    positions = torch.arange(len(ids), device=lm.device)[None]
    inputs = {"input_ids": torch.tensor([ids], device=lm.device), "position_ids": positions}
    lm.decoder(**inputs, **{_cache_argument(lm): cache}, use_cache=True)
    return [(layer.keys, layer.values) for layer in cache.layers]


def _cache_arguments(lm: LanguageModel, prefix: list[tuple[torch.Tensor, torch.Tensor]]) -> dict:
    """The forward's keyword arguments that hand it `prefix` as already computed keys and values."""
    if not prefix:
        return {"use_cache": False}
    return {_cache_argument(lm): Cache(layers=[_OpeningLayer(k, v) for k, v in prefix]), "use_cache": True}


class _OpeningLayer(DynamicLayer):
    """One layer's cached opening, read but never grown.

    A DynamicLayer would keep every layer's keys and values for the whole batch until the forward
    ends (GiBs more at the peak for a 7B model at large batches); these are
    freed as soon as their layer's attention has used them. The stored opening is never written.
    """

    def __init__(self, keys: torch.Tensor, values: torch.Tensor):
        super().__init__()
        super().update(keys[..., :0, :], values[..., :0, :])  # initializes the layer as each transformers version does
        self.keys, self.values = keys, values

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        return torch.cat([self.keys, key_states], dim=-2), torch.cat([self.values, value_states], dim=-2)


def _cache_argument(lm: LanguageModel) -> str:
    """The forward's name for a key/value cache: `cache` from transformers 5.24 on, before it `past_key_values`."""
    return "cache" if "cache" in inspect.signature(lm.decoder.forward).parameters else "past_key_values"
