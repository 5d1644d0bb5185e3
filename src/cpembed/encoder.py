"""The sentence encoder: prompt -> (auxiliary pass to layer l) -> patched pass -> last-token state."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from . import packing
from .config import CPConfig, default_cp
from .controls import REFERENCE_SENTENCES, partners
from .models import DEFAULT_MODEL, LanguageModel, declared_num_layers, load_model, resolve_device, resolve_dtype
from .prompts import Prompt, Template, fit_sentences, preprocess, prompt_token_ids, resolve_prompt, warn_cut
from .sites import SitePath, site_module
from .steering import capture, intervene, patch, run_until_stopped
from .validation import type_name

logger = logging.getLogger(__name__)

OUTPUT_SIDE = SitePath("", "output")  # hidden_states[k] is a module's output


@dataclass
class _Batch:
    input_ids: torch.Tensor  # (B, T): the tokens after the cached opening
    attention_mask: torch.Tensor  # (B, cached + T), 1 = real token
    position_ids: torch.Tensor  # (B, T), counted over real tokens only, so padding never shifts them
    last: torch.Tensor  # (B,), index into input_ids of each row's last real token
    prefix: list[tuple[torch.Tensor, torch.Tensor]]  # per layer (keys, values) of the cached opening, or []


class CPEncoder:
    """Sentence embeddings from a decoder-only LLM, steered by Contrastive Prompting.

    Args:
        model: a built-in model name, a model folder, a `.gguf` file, or a loaded `LanguageModel`.
        prompt: "prompteol", "cot", "knowledge", "ck", or a template with one `{sentence}`.
        cp: a `CPConfig`; "auto" (the default) takes the defaults table's entry for this model
            and prompt; None gives the plain prompt-based embedding without CP.
        output_layer: index into `hidden_states` (0 = embeddings, -1 = final normed state,
            -2 = penultimate layer output); None takes the prompt's default.
        dtype: "auto" (bfloat16 where the hardware computes it natively, else float32), "float32"
            or "bfloat16" (or a torch dtype); None is "auto", or keeps a loaded model's dtype.
        device: "cpu", "cuda", ...; None picks CUDA when available.
        max_length: token budget of one prompt; longer sentences are cut, the template never.
        padding_side: "right" or "left" (padded engine only); results do not depend on it.
        engine: "padded" (the default: one padded row per prompt) or "packed" (a batch's prompts
            packed into one sequence without padding). Both read the template's opening from a
            cache kept on the loaded model, and give the same embeddings (tested to 1e-5 in
            float32); padded was the faster on a CPU and on a GPU (docs/PERFORMANCE.md).

    Example:
        >>> encoder = CPEncoder()                                     # doctest: +SKIP
        >>> encoder.encode(["A cat sits.", "A dog runs."]).shape      # doctest: +SKIP
        (2, 576)
    """

    def __init__(
        self,
        model: str | os.PathLike | LanguageModel = DEFAULT_MODEL,
        prompt: str | Prompt = "prompteol",
        cp: CPConfig | None | Literal["auto"] = "auto",
        output_layer: int | None = None,
        dtype: str | torch.dtype | None = None,
        device: str | torch.device | None = None,
        max_length: int = 512,
        padding_side: Literal["right", "left"] = "right",
        engine: Literal["padded", "packed"] = "padded",
    ) -> None:
        self.prompt = resolve_prompt(prompt)
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise ValueError(f"max_length must be a positive integer, got {max_length!r}")
        self.max_length = max_length
        if padding_side not in ("right", "left"):
            raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
        self.padding_side = padding_side
        if engine not in ("padded", "packed"):
            raise ValueError(f"engine must be 'padded' or 'packed', got {engine!r}")
        if isinstance(model, LanguageModel):
            # Encoders may share a loaded model, so never convert it behind another encoder's back.
            if dtype is not None and resolve_dtype(dtype, model.device) != model.dtype:
                raise ValueError(
                    f"this loaded model is {model.dtype}; load it with load_model(..., dtype={dtype!r}) "
                    "or leave dtype unset"
                )
            if device is not None and resolve_device(device) != model.device:
                raise ValueError(
                    f"this loaded model is on {model.device}; load it with load_model(..., device={device!r}) "
                    "or leave device unset"
                )
            self.lm = model
        name = model.name if isinstance(model, LanguageModel) else model
        if cp == "auto":
            cp = default_cp(os.fspath(name) if isinstance(name, os.PathLike) else name, self.prompt.name)
        if cp is not None and not isinstance(cp, CPConfig):
            raise TypeError(f"cp must be a CPConfig, None or 'auto', got {type_name(cp)}")
        self.cp = cp
        output_layer = self.prompt.output_layer if output_layer is None else output_layer
        if not isinstance(model, LanguageModel):
            if (declared := declared_num_layers(model)) is not None:
                check_layers(declared, cp, output_layer)  # before minutes of loading, not after
            self.lm = load_model(model, dtype or "auto", device)
        self.output_layer = check_layers(self.lm.num_layers, cp, output_layer)
        window = getattr(self.lm.model.config, "sliding_window", None)
        # The packed engine's own attention mask does not model sliding windows, and a cached opening
        # could fall out of one: where a prompt may exceed the window, run padded rows whole.
        self._window_bites = bool(window and window < max_length)
        self.engine = "padded" if self._window_bites else engine
        tokenizer = self.lm.tokenizer
        self._pad_id = next(i for i in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0) if i is not None)
        self._aux_template = Template(cp.aux_template) if cp else None
        # Every prompt a sentence goes into; one cut of an over-long sentence must fit them all.
        self._templates = [*self.prompt.templates, *([self._aux_template] if cp and cp.needs_aux_pass else [])]

    def __repr__(self) -> str:
        return (
            f"CPEncoder(model={self.lm.name!r}, prompt={self.prompt.name!r}, cp={self.cp!r}, "
            f"output_layer={self.output_layer}, dtype={self.lm.dtype}, device={self.lm.device}, engine={self.engine!r})"
        )

    @property
    def embedding_dimension(self) -> int:
        return self.lm.hidden_size

    def get_sentence_embedding_dimension(self) -> int:
        """The sentence-transformers name of `embedding_dimension`."""
        return self.embedding_dimension

    # -- public API ---------------------------------------------------------------------------

    @torch.inference_mode()
    def encode(
        self,
        sentences: str | Iterable[str],
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        normalize_embeddings: bool = False,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        prompt: str | None = None,
        precision: str = "float32",
        device: str | torch.device | None = None,
        truncate_dim: int | None = None,
        **unsupported,
    ) -> np.ndarray | torch.Tensor | list[torch.Tensor]:
        """Embed sentences; float32 `(n, d)` rows in input order (`(d,)` for a single string).

        Sentences are cleaned as in SPEC (strip, quotes, final period); an empty or
        whitespace-only sentence therefore becomes "." and still gets a row.

        The keyword arguments are sentence-transformers': `prompt` is text put before every
        sentence (inside cpembed's own template); `precision` must be "float32"; `device`, if
        given, must be the model's; `truncate_dim` keeps the first dimensions. Any other keyword
        is refused with the list of those supported.
        """
        if unsupported:
            raise TypeError(
                f"encode() does not take {', '.join(sorted(unsupported))}; it takes batch_size, show_progress_bar, "
                "normalize_embeddings, convert_to_numpy, convert_to_tensor, prompt, precision, device, truncate_dim"
            )
        if precision != "float32":
            raise ValueError(f"precision {precision!r} is not supported: cpembed returns float32 embeddings")
        if device is not None and resolve_device(device) != self.lm.device:
            raise ValueError(f"this encoder's model is on {self.lm.device}; load it with device={device!r} instead")
        width = self.embedding_dimension
        if truncate_dim is not None and (
            isinstance(truncate_dim, bool) or not isinstance(truncate_dim, int) or not 1 <= truncate_dim <= width
        ):
            raise ValueError(f"truncate_dim must be an integer from 1 to {width}, got {truncate_dim!r}")
        texts, single = _sentence_list(sentences)
        if prompt is not None:
            if not isinstance(prompt, str):
                raise TypeError(f"prompt must be a string, got {type(prompt).__name__}")
            texts = [prompt + text for text in texts]
        if show_progress_bar is None:
            show_progress_bar = len(texts) > batch_size and sys.stderr.isatty()
        with progress_bar(len(texts), show_progress_bar) as bar:
            embeddings, cut = self._encode_texts(texts, batch_size, bar)
        warn_cut(cut, self.max_length)
        if truncate_dim is not None:
            embeddings = embeddings[:, :truncate_dim]
        if normalize_embeddings:
            embeddings = torch.nn.functional.normalize(embeddings, dim=-1)
        if single:
            embeddings = embeddings[0]
        if convert_to_tensor:
            return embeddings
        if convert_to_numpy:
            return embeddings.numpy()
        return list(embeddings)

    def encode_chunks(
        self,
        chunks: Iterable[list[str]],
        batch_size: int = 32,
        normalize_embeddings: bool = False,
        bar: tqdm | None = None,
    ) -> Iterator[tuple[list[str], np.ndarray]]:
        """Each list of sentences with its float32 `(n, d)` embeddings, as `encode` gives them, one list at a time.

        For inputs too long to hold at once: `bar` (a tqdm the caller owns) moves after every
        batch, and the sentences cut to fit `max_length` are reported once, after the last chunk.
        """
        cut = 0
        for chunk in chunks:
            with torch.inference_mode():
                embeddings, chunk_cut = self._encode_texts(_sentence_list(chunk)[0], batch_size, bar)
            cut += chunk_cut
            if normalize_embeddings:
                embeddings = torch.nn.functional.normalize(embeddings, dim=-1)
            yield chunk, embeddings.numpy()
        warn_cut(cut, self.max_length)

    def _encode_texts(self, texts: list[str], batch_size: int, bar: tqdm | None) -> tuple[torch.Tensor, int]:
        """(n, d) float32 embeddings in input order, and how many sentences were cut to fit."""
        if self.engine == "packed":
            from .variants import encode_variants  # the packed engine is built on this class

            embeddings, cut = encode_variants(self, texts, [self.cp], batch_size, bar=bar, count_cut=True)
            return torch.from_numpy(embeddings[0]), cut
        cleaned = [preprocess(text) for text in texts]
        partner = partners(cleaned) if self.cp and self.cp.intervention == "shuffle" else None
        embeddings = torch.empty(len(cleaned), self.embedding_dimension, dtype=torch.float32)
        cut = 0
        for rows in length_sorted_batches(cleaned, batch_size, bar):
            batch = fit_sentences(self.lm.tokenizer, self._templates, [cleaned[i] for i in rows], self.max_length)
            cut += sum(cleaned[i] != text for i, text in zip(rows.tolist(), batch, strict=True))
            aux_sentences = batch
            if partner:
                aux = [cleaned[partner[i]] for i in rows]
                aux_sentences = fit_sentences(self.lm.tokenizer, self._templates, aux, self.max_length)
            embeddings[rows] = self._embed(batch, aux_sentences).cpu()
        return embeddings, cut

    def encode_query(self, sentences: str | Iterable[str], **options):
        """`encode` for queries (sentence-transformers' name). CP embeds queries and documents alike."""
        return self.encode(sentences, **options)

    def encode_document(self, sentences: str | Iterable[str], **options):
        """`encode` for documents (sentence-transformers' name). CP embeds queries and documents alike."""
        return self.encode(sentences, **options)

    def similarity(self, a, b) -> np.ndarray:
        """Cosine similarity matrix `(len(a), len(b))` between embeddings or sentences."""
        a, b = (torch.from_numpy(np.atleast_2d(self._as_embeddings(x))) for x in (a, b))
        a, b = torch.nn.functional.normalize(a, dim=-1), torch.nn.functional.normalize(b, dim=-1)
        return (a @ b.T).clamp(-1.0, 1.0).numpy()  # rounding can put a vector's cosine with itself at 1.0000002

    def _as_embeddings(self, x) -> np.ndarray:
        if isinstance(x, str) or (isinstance(x, (list, tuple)) and all(isinstance(s, str) for s in x)):
            return np.atleast_2d(self.encode(x)) if len(x) else np.zeros((0, self.embedding_dimension), np.float32)
        x = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float32)
        if x.ndim not in (1, 2) or x.shape[-1] != self.embedding_dimension:
            raise ValueError(
                f"expected sentences or embeddings of width {self.embedding_dimension}, got shape {x.shape}"
            )
        return x

    # -- the method ----------------------------------------------------------------------------

    def _embed(self, sentences: list[str], aux_sentences: list[str]) -> torch.Tensor:
        """Embeddings of one batch of cleaned sentences, already cut to fit, (B, hidden_size) float32.

        `aux_sentences` go into the auxiliary prompt: the sentences themselves, or (shuffle) others.
        """
        v_aux = None
        if self.cp and self.cp.needs_aux_pass:
            v_aux = self._auxiliary_vectors(aux_sentences)
        elif self.cp and self.cp.intervention == "mean":
            v_aux = self.reference_aux_vector().expand(len(sentences), -1)
        outputs = [self._patched_pass(self._batch(template, sentences), v_aux) for template in self.prompt.templates]
        return torch.stack(outputs).float().mean(0)  # CK: mean over its two prompts

    def reference_aux_vector(self) -> torch.Tensor:
        """The `mean` control's fixed v_aux: the mean auxiliary vector of REFERENCE_SENTENCES, (1, width).

        Computed once per loaded model (kept in `lm.reference_aux`), in float32, one sentence at a
        time so it is exact and batch-free.
        """
        key = (self.cp.aux_template, self.cp.site, self.cp.layer, self.max_length)
        if key not in self.lm.reference_aux:
            cleaned = [preprocess(s) for s in REFERENCE_SENTENCES]
            vectors = [self._auxiliary_vectors([s]).float() for s in cleaned]
            self.lm.reference_aux[key] = torch.cat(vectors).mean(0, keepdim=True)
        return self.lm.reference_aux[key]

    def _auxiliary_vectors(self, sentences: list[str]) -> torch.Tensor:
        """v_aux: the site's activation at the auxiliary prompt's last token, running layers 1..l only."""
        batch = self._batch(self._aux_template, sentences)
        module, path = self._site()
        captured: list[torch.Tensor] = []
        with capture(module, path, batch.last, captured, stop=True):
            self._forward(batch)
        return captured[0]  # (B, site width)

    def _patched_pass(self, batch: _Batch, v_aux: torch.Tensor | None) -> torch.Tensor:
        """The last-token state at the output layer, with the patch at layer l when CP is on."""
        captured: list[torch.Tensor] = []
        with ExitStack() as hooks:
            if self.cp is not None:
                module, path = self._site()
                cp = self.cp
                hooks.enter_context(patch(module, path, batch.last, lambda v_nor: intervene(v_nor, v_aux, cp)))
            # Registered after the patch, so a shared module's patch runs first.
            hooks.enter_context(capture(self._output_module(), OUTPUT_SIDE, batch.last, captured, stop=True))
            self._forward(batch)
        return captured[0]  # (B, hidden_size)

    # -- plumbing ------------------------------------------------------------------------------

    def _site(self) -> tuple[nn.Module, SitePath]:
        return site_module(self.lm.layers[self.cp.layer - 1], self.cp.site, self.lm.model_type)

    def _output_module(self) -> nn.Module:
        """The module whose output is hidden_states[output_layer]."""
        if self.output_layer == 0:
            return self.lm.decoder.get_input_embeddings()
        if self.output_layer == self.lm.num_layers:
            return self.lm.decoder.norm  # the final normed state
        return self.lm.layers[self.output_layer - 1]

    def _forward(self, batch) -> None:
        """Run the decoder on a padded `_Batch` or a packed batch until a hook has what it needs.

        The LM head never runs.
        """
        run_until_stopped(
            self.lm.decoder,
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            position_ids=batch.position_ids,
            **packing.cache_arguments(self.lm, batch.prefix),
        )

    def _batch(self, template: Template, sentences: list[str]) -> _Batch:
        """Padded rows of `template` filled with `sentences`. The opening that every row shares is
        not in them: its keys and values come from the model's cache (packing.py), as in a pack.

        Call it before entering any hook: the first batch of a template runs the decoder over its opening.
        """
        rows = prompt_token_ids(self.lm.tokenizer, template, sentences)
        cached, prefix = 0, []
        if not self._window_bites:
            cached, prefix = packing.cached_prefix(self.lm, template.text, rows[0][: packing.common_prefix(rows)])
            rows = [row[cached:] for row in rows]
        width = max(len(row) for row in rows)
        input_ids = torch.full((len(rows), width), self._pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            span = slice(0, len(row)) if self.padding_side == "right" else slice(width - len(row), width)
            input_ids[i, span] = torch.tensor(row)
            attention_mask[i, span] = 1
        position_ids = (attention_mask.cumsum(1) - 1).clamp(min=0) + cached
        last = width - 1 - attention_mask.flip(1).argmax(1)  # any padding side
        attention_mask = torch.cat([torch.ones((len(rows), cached), dtype=torch.long), attention_mask], 1)
        prefix = [(keys.expand(len(rows), -1, -1, -1), values.expand(len(rows), -1, -1, -1)) for keys, values in prefix]
        device = self.lm.device
        return _Batch(input_ids.to(device), attention_mask.to(device), position_ids.to(device), last.to(device), prefix)


def check_layers(n: int, cp: CPConfig | None, output_layer: int) -> int:
    """Check CP's layer and the output layer against an `n`-layer model; the output layer as 0..n
    (a Python-style index into `hidden_states`, which has n + 1 entries)."""
    if isinstance(output_layer, bool) or not isinstance(output_layer, int) or not -(n + 1) <= output_layer <= n:
        raise ValueError(
            f"output_layer {output_layer!r} is out of range for a {n}-layer model: "
            f"use 0..{n} or -{n + 1}..-1 (an index into hidden_states; -1 = final normed state)"
        )
    layer = output_layer % (n + 1)
    if cp is not None:
        if cp.layer > n:
            raise ValueError(f"CP layer {cp.layer} is out of range for a {n}-layer model: use 1..{n} (1-based)")
        if layer < cp.layer:
            raise ValueError(
                f"output_layer {output_layer} reads hidden_states[{layer}], before the CP layer "
                f"{cp.layer}, so CP could not change it: use an output layer >= {cp.layer}"
            )
    return layer


def progress_bar(total: int, show: bool) -> tqdm:
    """The encoding bar on stderr: sentences done, the rate and the time left."""
    return tqdm(total=total, disable=not show, unit="sent", desc="encoding")


def length_sorted_batches(texts: list[str], batch_size: int, bar: tqdm | None = None) -> Iterator[torch.Tensor]:
    """Row indices of `texts` in batches, longest first so each batch pads little; `bar` moves after each."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    order = torch.from_numpy(np.argsort([-len(text) for text in texts], kind="stable"))
    for start in range(0, len(texts), batch_size):
        rows = order[start : start + batch_size]
        yield rows
        if bar is not None:
            bar.update(len(rows))


def _sentence_list(sentences) -> tuple[list[str], bool]:
    if isinstance(sentences, str):
        return [sentences], True
    if isinstance(sentences, (bytes, dict)) or not isinstance(sentences, Iterable):
        raise TypeError(f"sentences must be a str or a list of str, got {type(sentences).__name__}")
    texts = list(sentences)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"sentences[{i}] is {type_name(text)}, expected str: {text!r:.60}")
    return texts, False
