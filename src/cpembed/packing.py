"""A batch of prompts packed into one sequence, its template's opening computed once per model.

Every prompt of a batch starts with the same template words. The packed layout holds them once,
and their keys and values come from a cache kept on the loaded model: the first pack of a
template computes them, every later pack (normal and auxiliary prompts alike) reads them. A pack
reuses only the leading token ids it shares with the cached ones, so a tokenizer that merges the
template's last word with a sentence's first piece only shortens what is reused; results stay exact.
The padded engine (encoder.py) reads the same cache for the rows of its batches.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from transformers import DynamicCache
from transformers.cache_utils import Cache, DynamicLayer

from .models import LanguageModel
from .prompts import Template, prompt_token_ids
from .steering import run_until_stopped

# Attention over a packed sequence is dense (N x N, most of it masked), so its cost grows with the
# square of the pack's length while the rest grows linearly: keep packs short on a CPU. A GPU is
# only kept busy by long packs (docs/PERFORMANCE.md, "A 7B-sized model on a GPU").
MAX_PACKED_TOKENS = {"cpu": 768, "cuda": 2048}


def pack_budget(device: torch.device) -> int:
    """The most tokens one pack may hold on `device`."""
    return MAX_PACKED_TOKENS.get(device.type, MAX_PACKED_TOKENS["cpu"])


@dataclass
class Packed:
    """Prompts packed into one row, after a prefix whose keys and values are cached.

    Layout: [shared prefix | sentence 0's middle tokens | its last token x k | sentence 1's ...].
    The cached tokens of the shared prefix are not in `input_ids`: their keys and values
    are in `prefix`. Every token sees the prefix and the earlier tokens of its own prompt, so each
    prompt's states are exactly those of running it alone; the k copies of a last token see their
    prompt and themselves only, and each can carry a different CP setting. No padding is computed.
    """

    input_ids: torch.Tensor  # (1, N): the tokens after the cached prefix
    position_ids: torch.Tensor  # (1, N), each prompt's own positions
    attention_mask: torch.Tensor  # (1, 1, N, cached + N) additive float mask
    copies: torch.Tensor  # (B, k) indices into input_ids of each prompt's last-token copies
    prefix: list[tuple[torch.Tensor, torch.Tensor]]  # per layer (keys, values) of the cached tokens

    def run(self, lm: LanguageModel) -> None:
        """Run the decoder over the pack until a hook has what it needs."""
        run_until_stopped(
            lm.decoder,
            input_ids=self.input_ids,
            attention_mask=self.attention_mask,
            position_ids=self.position_ids,
            **cache_arguments(lm, self.prefix),
        )


def pack(lm: LanguageModel, template: str, rows: list[list[int]], k: int) -> Packed:
    """Pack the token ids of `rows` (whole prompts of `template`) with `k` copies of each last token.

    Call it before entering any hook: the first pack of a template runs the decoder over its opening.
    """
    shared = common_prefix(rows)
    check_window(lm, max(len(row) for row in rows))
    cached, prefix = cached_prefix(lm, template, rows[0][:shared])
    ids, positions, owner, is_copy = list(rows[0][:shared]), list(range(shared)), [-1] * shared, [False] * shared
    copies = []
    for i, row in enumerate(rows):
        middle = row[shared:-1]
        ids += middle + [row[-1]] * k
        positions += list(range(shared, len(row) - 1)) + [len(row) - 1] * k
        owner += [i] * (len(middle) + k)
        is_copy += [False] * len(middle) + [True] * k
        copies.append(range(len(ids) - k - cached, len(ids) - cached))
    index = torch.arange(len(ids))
    owner_t, copy_t = torch.tensor(owner), torch.tensor(is_copy)
    causal = index[None, :] <= index[:, None]  # (Q, K)
    same_prompt = (owner_t[:, None] == owner_t[None, :]) & ~copy_t[None, :]
    allowed = causal & ((index[None, :] < shared) | same_prompt) | torch.eye(len(ids), dtype=torch.bool)
    allowed = allowed[cached:]  # the cached tokens are keys only
    dtype, device = lm.dtype, lm.device
    mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
    return Packed(
        torch.tensor([ids[cached:]], device=device),
        torch.tensor([positions[cached:]], device=device),
        mask[None, None].to(device),
        torch.tensor([list(c) for c in copies], device=device),
        prefix,
    )


def within_budget(tokenizer, templates: list[Template], sentences: list[str], k: int, budget: int) -> list[slice]:
    """Consecutive slices of a batch whose packed length (each prompt plus k last-token copies)
    stays within `budget` tokens; a prompt longer than that gets a pack of its own."""
    lengths = [0] * len(sentences)
    for template in templates:
        for i, ids in enumerate(prompt_token_ids(tokenizer, template, sentences)):
            lengths[i] = max(lengths[i], len(ids) + k)
    parts, start, total = [], 0, 0
    for i, length in enumerate(lengths):
        if i > start and total + length > budget:
            parts.append(slice(start, i))
            start, total = i, 0
        total += length
    return [*parts, slice(start, len(sentences))]


def common_prefix(rows: list[list[int]]) -> int:
    """How many leading token ids every row shares, leaving each row at least its last token.

    Comparing the ids of whole prompts (not a separately tokenized template prefix) keeps this
    exact even when a tokenizer merges across the template's boundary.
    """
    first, limit = rows[0], min(len(row) for row in rows) - 1
    shared = 0
    while shared < limit and all(row[shared] == first[shared] for row in rows):
        shared += 1
    return shared


def cached_prefix(
    lm: LanguageModel, template: str, ids: list[int]
) -> tuple[int, list[tuple[torch.Tensor, torch.Tensor]]]:
    """How many leading tokens of `ids` (a pack's shared prefix) have keys and values cached on
    `lm`, and those, per layer.

    The first pack of a template stores its whole shared prefix; every later pack reuses the
    longest run of ids it has in common with it (a token's keys and values depend only on the
    tokens before it), so a first pack whose sentences happen to share a first word costs nothing.
    """
    if not ids:
        return 0, []
    key = (template, str(lm.device), lm.dtype)
    entry = lm.prefix_states.get(key)
    if entry is None:
        entry = lm.prefix_states[key] = (list(ids), _prefix_states(lm, ids))
    stored_ids, states = entry
    n = 0
    while n < min(len(ids), len(stored_ids)) and ids[n] == stored_ids[n]:
        n += 1
    return n, [(keys[..., :n, :], values[..., :n, :]) for keys, values in states]


@torch.inference_mode()
def _prefix_states(lm: LanguageModel, ids: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    cache = DynamicCache()
    positions = torch.arange(len(ids), device=lm.device)[None]
    inputs = {"input_ids": torch.tensor([ids], device=lm.device), "position_ids": positions}
    lm.decoder(**inputs, **{_cache_argument(lm): cache}, use_cache=True)
    return [(layer.keys, layer.values) for layer in cache.layers]


def cache_arguments(lm: LanguageModel, prefix: list[tuple[torch.Tensor, torch.Tensor]]) -> dict:
    """The forward's keyword arguments that hand it `prefix` as already computed keys and values."""
    if not prefix:
        return {"use_cache": False}
    return {
        _cache_argument(lm): Cache(layers=[_PrefixLayer(keys, values) for keys, values in prefix]),
        "use_cache": True,
    }


class _PrefixLayer(DynamicLayer):
    """One layer's cached prefix, read but never grown.

    A DynamicLayer would keep every layer's keys and values for the whole batch until the forward
    ends (3-5 GiB more at the peak for a 7B model at batch 128-256, docs/PERFORMANCE.md); these are
    freed as soon as their layer's attention has used them. The stored prefix is never written.
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


def check_window(lm: LanguageModel, length: int) -> None:
    window = getattr(lm.model.config, "sliding_window", None)
    if window and length > window:
        raise ValueError(
            f"a prompt of {length} tokens exceeds this model's sliding window ({window}); the many-settings "
            f"path does not model sliding windows: use max_length <= {window} or encode each setting separately"
        )
