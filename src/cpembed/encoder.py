"""CPEncoder: the settings of one embedding, checked before any weight loads, over the one engine."""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack
from typing import Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from . import cache as embedding_cache
from . import engine
from .cache import EmbeddingCache, row_keys
from .compiled import CompileMode, check_mode, compile_when_worth_it
from .config import VERSION, CPConfig, EncoderSettings, TPConfig
from .config import recipe as recipe_of
from .errors import InvalidTypeError, InvalidValueError
from .models import DEFAULT_MODEL, LanguageModel, load_model, resolve_device, resolve_dtype
from .postprocess import BUILT_IN_SENTENCES, PostProcess, fit, packaged_fit
from .prompts import Prompt, one_cut_warning, resolve_prompt, warn_cut
from .quantize import PRECISIONS, quantize
from .spec import (
    CENTER,
    IN_MEMORY,
    PACKAGED,
    EncoderSpec,
    check_layers,
    check_spec_layers,
    fit_refused,
    resolve,
    spec_output_layer,
)
from .steering import Steering
from .validation import integer, type_name

logger = logging.getLogger(__name__)


class CPEncoder:
    """Sentence embeddings from a decoder-only LLM, steered by Contrastive Prompting.

    Args:
        model: a built-in model name, a model folder, a `.gguf` file, or a loaded `LanguageModel`.
        prompt: "prompteol", "cot", "knowledge", "ck", or a template with one `{sentence}`; None is
            "prompteol", or the recipe's.
        cp: a `CPConfig`; "auto" (the default) takes the defaults table's entry for this model
            and prompt; None gives the plain prompt-based embedding without CP.
        output_layer: index into `hidden_states` (0 = embeddings, -1 = final normed state,
            -2 = penultimate layer output); None takes the prompt's default.
        dtype: "auto" (bfloat16 where the hardware computes it natively, else float32), "float32"
            or "bfloat16" (or a torch dtype); None is "auto", or keeps a loaded model's dtype.
        device: "cpu", "cuda", ...; None picks CUDA when available.
        max_length: token budget of one prompt; longer sentences are cut, the template never.
        tp: a `TPConfig` adds Token Prepending to the normal prompt (composes with CP); None: none.
        recipe: "auto" (the default) is the model's best recipe (`cpembed.config.MODEL_RECIPES`: prompt,
            CP, TP and post-processing chosen on dev splits) whenever prompt, cp, tp, output_layer,
            demonstrations and the query and document prompts are all left unset, and none
            otherwise; "best", "fast" (the best single-prompt recipe) or a job's name ("retrieval",
            "reranking", "pairs", "clustering": the setting tuned for that job, where the model has
            one) name one, and then those arguments cannot be given; None: no recipe (PromptEOL
            and its default CP unless given).
            A model without a searched recipe gets plain PromptEOL, centered (logged once).
        query_prompt, document_prompt: the prompts of `encode_query` and `encode_document` (names
            or templates, as `prompt`); None is `prompt`. They share this encoder's CP setting and
            output layer, so that query and document vectors stay comparable.
        demonstrations: (sentence, answer word) pairs put before every template of the prompt
            (and of the query and document prompts), e.g. `[("A jockey riding a horse.",
            "Equestrian")]`: in-context examples of the compression the prompt asks for. The
            auxiliary prompt is not changed; give it its own with `prompts.demonstrate`.
        postprocess: a fitted centering or whitening (`cpembed.postprocess`), or the path of one
            saved by `cpembed fit`; applied to every row `encode` gives. It must have been fitted
            with these exact settings (the same digest as `settings()`), else it is refused.
            "auto" (the default): the recipe's fit, or none without a recipe; None: none.
        compile: compile each layer's feed-forward block and norms (`cpembed.compiled`: seconds
            once, then a few percent faster, about 65 MB more memory): True, False, or "auto" (the
            default), which compiles a bfloat16 model on a CPU once it has been asked for 2,000
            sentences.

    Example:
        >>> encoder = CPEncoder()                                     # doctest: +SKIP
        >>> encoder.encode(["A cat sits.", "A dog runs."]).shape      # doctest: +SKIP
        (2, 576)
    """

    def __init__(
        self,
        model: str | os.PathLike | LanguageModel = DEFAULT_MODEL,
        prompt: str | Prompt | None = None,
        cp: CPConfig | None | Literal["auto"] = "auto",
        output_layer: int | None = None,
        dtype: str | torch.dtype | None = None,
        device: str | torch.device | None = None,
        max_length: int = 512,
        query_prompt: str | Prompt | None = None,
        document_prompt: str | Prompt | None = None,
        tp: TPConfig | None = None,
        recipe: Literal["auto", "best", "fast", "retrieval", "reranking", "pairs", "clustering"] | None = "auto",
        demonstrations: Sequence[tuple[str, str]] | None = None,
        postprocess: PostProcess | str | os.PathLike | Literal["auto"] | None = "auto",
        compile: CompileMode = "auto",
    ) -> None:
        check_mode(compile)
        loaded = model if isinstance(model, LanguageModel) else None
        spec = resolve(
            model=loaded.name if loaded else model,
            prompt=prompt,
            cp=cp,
            output_layer=output_layer,
            dtype=dtype,
            max_length=max_length,
            query_prompt=query_prompt,
            document_prompt=document_prompt,
            tp=tp,
            recipe=recipe,
            demonstrations=demonstrations,
            postprocess=postprocess,
            num_layers=loaded.num_layers if loaded else None,
        )
        if loaded is not None:
            # Encoders may share a loaded model, so never convert it behind another encoder's back.
            if dtype is not None and resolve_dtype(dtype, loaded.device) != loaded.dtype:
                raise InvalidValueError(
                    f"this loaded model is {loaded.dtype}; load it with load_model(..., dtype={dtype!r}) "
                    "or leave dtype unset"
                )
            if device is not None and resolve_device(device) != loaded.device:
                raise InvalidValueError(
                    f"this loaded model is on {loaded.device}; load it with load_model(..., device={device!r}) "
                    "or leave device unset"
                )
        fitted = postprocess if isinstance(postprocess, PostProcess) else None
        self._build(spec, loaded, device, fitted, compile)

    @classmethod
    def from_spec(
        cls,
        spec: EncoderSpec | str | os.PathLike,
        model: LanguageModel | None = None,
        device: str | torch.device | None = None,
        compile: CompileMode = "auto",
    ) -> CPEncoder:
        """The encoder a spec describes (an `EncoderSpec` or the path of its JSON file), on `model`
        if it is already loaded. Weights other than those the spec was made for are refused.
        `compile` is CPEncoder's."""
        if isinstance(spec, (str, os.PathLike)):
            spec = EncoderSpec.load(spec)
        if not isinstance(spec, EncoderSpec):
            raise InvalidTypeError(f"spec must be an EncoderSpec or a path, got {type_name(spec)}")
        if spec.postprocess and spec.postprocess.startswith(IN_MEMORY):
            raise InvalidValueError("this spec's post-processing was an object: it can only describe its encoder")
        if model is not None and model.name != spec.model:
            raise InvalidValueError(f"this spec is for {spec.model}, and the loaded model is {model.name}")
        if model is not None and spec.dtype not in ("auto", str(model.dtype).removeprefix("torch.")):
            raise InvalidValueError(f"this spec runs in {spec.dtype}, and the loaded model is {model.dtype}")
        check_spec_layers(spec, model.num_layers if model is not None else None)
        encoder = cls.__new__(cls)
        encoder._build(spec, model, device, None, check_mode(compile))
        return encoder

    def _build(
        self, spec: EncoderSpec, lm: LanguageModel | None, device, fitted: PostProcess | None, compile: CompileMode
    ) -> None:
        self.compile = compile
        self.prompt = resolve_prompt(spec.prompt).with_demonstrations(spec.demonstrations)
        roles = {
            role: resolve_prompt(given).with_demonstrations(spec.demonstrations)
            for role, given in (("query", spec.query_prompt), ("document", spec.document_prompt))
            if given is not None
        }
        self.max_length, self.cp, self.tp = spec.max_length, spec.cp, spec.tp
        self.recipe_name = spec.recipe
        self.recipe = recipe_of(spec.model, spec.recipe) if spec.recipe else None
        if lm is None:
            lm = load_model(spec.model, spec.dtype, device)
        if spec.weights is not None and spec.weights != lm.fingerprint:
            raise InvalidValueError(
                f"this spec was made for weights {spec.weights[:16]}..., and {lm.name} has {lm.fingerprint[:16]}...: "
                "another file or conversion of the model gives other embeddings; tune again for these weights"
            )
        self.lm = lm
        self.output_layer = check_layers(lm.num_layers, spec.cp, spec_output_layer(spec), spec.tp)
        dtype = str(lm.dtype).removeprefix("torch.")
        self.spec = dataclasses.replace(spec, weights=lm.fingerprint, dtype=dtype)
        # encode_query / encode_document: an encoder on the same model with that role's prompt, and this
        # one's CP and output layer: vectors read at different layers are not comparable (a custom
        # template's default layer, -1, beside Pretended CoT's -2 once cost SciFact nDCG@10 23.15 -> 4.48, a
        # measurement of an early version, kept as history).
        self._roles = {
            role: CPEncoder(
                lm,
                given,
                cp=self.cp,
                output_layer=self.output_layer,
                max_length=self.max_length,
                tp=self.tp,
                compile=compile,
            )
            for role, given in roles.items()
        }
        self.postprocess = None  # until it is resolved: fitting one encodes raw rows
        self.postprocess = self._checked_postprocess(spec.postprocess, fitted)

    def _checked_postprocess(self, reference: str | None, fitted: PostProcess | None) -> PostProcess | None:
        if reference is None:
            return None
        if reference == CENTER:
            return self._centered()
        if reference.startswith(PACKAGED):
            dtype, name = str(self.lm.dtype).removeprefix("torch."), reference.removeprefix(PACKAGED)
            postprocess = packaged_fit(name, dtype)
            if self.recipe is not None and (postprocess is None or postprocess.settings != self.settings().digest()):
                raise fit_refused(self.lm.name, self.recipe_name, self.recipe, dtype, self.max_length)
            if postprocess is None:
                raise InvalidValueError(f"cpembed has no {dtype} fit named {name!r}: load the model in its fit's dtype")
        elif reference.startswith(IN_MEMORY):
            postprocess = fitted
        else:
            postprocess = PostProcess.load(reference)
        if any(role.prompt != self.prompt for role in self._roles.values()):
            # A fit describes one prompt's embeddings; queries and documents must share one space.
            raise InvalidValueError("postprocess cannot be combined with a query or document prompt of its own")
        postprocess.check(self.settings().digest())
        return postprocess

    def _centered(self) -> PostProcess:
        """Centering on the built-in sentences: what a model without a searched recipe gets."""
        if self.recipe is not None:
            logger.warning(
                "no recipe has been searched for %s: cpembed uses plain PromptEOL, centered on %d built-in "
                "sentences; `cpembed tune MODEL --job ...` (a setting chosen on labelled data) or `cpembed fit` on "
                "your own text (whitening) usually does better",
                self.lm.name,
                len(BUILT_IN_SENTENCES),
            )
        rows = self.encode(BUILT_IN_SENTENCES, show_progress_bar=False)
        return fit(rows, "center", self.settings().digest(), source="built-in sentences")

    def describe_recipe(self) -> str:
        """One line: the recipe this encoder uses and what it is, or that it uses none."""
        if self.recipe is None:
            return "recipe: none (the settings given)"
        return self.spec.describe()

    def __repr__(self) -> str:
        return (
            f"CPEncoder(model={self.lm.name!r}, prompt={self.prompt.name!r}, cp={self.cp!r}, "
            + (f"tp={self.tp!r}, " if self.tp else "")
            + f"output_layer={self.output_layer}, dtype={self.lm.dtype}, device={self.lm.device}"
            + (f", postprocess={self.postprocess.kind}:{self.postprocess.dimensions})" if self.postprocess else ")")
        )

    @property
    def embedding_dimension(self) -> int:
        return self.postprocess.dimensions if self.postprocess else self.lm.hidden_size

    def get_sentence_embedding_dimension(self) -> int:
        """The sentence-transformers name of `embedding_dimension`."""
        return self.embedding_dimension

    # -- public API ---------------------------------------------------------------------------

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

        Sentences are cleaned first (strip, quotes, final period: docs/method.md, Sentence cleanup);
        an empty or whitespace-only sentence therefore becomes "." and still gets a row.

        The keyword arguments are sentence-transformers': `prompt` is text put before every
        sentence (inside cpembed's own template); `precision` ("float32", "int8", "uint8",
        "binary", "ubinary") quantizes the rows as sentence-transformers does (`cpembed.quantize`:
        int8/uint8 take their steps from these rows; quantize with `calibration_ranges` of a corpus
        for steps that stay the same across calls); `device`, if given, must be the model's;
        `truncate_dim` keeps the first dimensions. Any other keyword is refused with the list of
        those supported.
        """
        if unsupported:
            raise InvalidTypeError(
                f"encode() does not take {', '.join(sorted(unsupported))}; it takes batch_size, show_progress_bar, "
                "normalize_embeddings, convert_to_numpy, convert_to_tensor, prompt, precision, device, truncate_dim"
            )
        if precision not in PRECISIONS:
            raise InvalidValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if device is not None and resolve_device(device) != self.lm.device:
            raise InvalidValueError(
                f"this encoder's model is on {self.lm.device}; load it with device={device!r} instead"
            )
        if truncate_dim is not None:
            integer("truncate_dim", truncate_dim, 1, self.embedding_dimension)
        texts, single = sentence_list(sentences)
        if prompt is not None:
            if not isinstance(prompt, str):
                raise InvalidTypeError(f"prompt must be a string, got {type_name(prompt)}")
            texts = [prompt + text for text in texts]
        embeddings = self.encode_settings(texts, [self.cp], batch_size, show_progress_bar)[0]
        if self.postprocess:
            embeddings = self.postprocess.apply(embeddings)
        embeddings = torch.from_numpy(embeddings)
        if truncate_dim is not None:
            embeddings = embeddings[:, :truncate_dim]
        if normalize_embeddings:
            embeddings = torch.nn.functional.normalize(embeddings, dim=-1)
        if precision != "float32":
            embeddings = torch.from_numpy(quantize(embeddings.numpy(), precision))
        if single:
            embeddings = embeddings[0]
        if convert_to_tensor:
            return embeddings
        if convert_to_numpy:
            return embeddings.numpy()
        return list(embeddings)

    def encode_settings(
        self,
        sentences: Sequence[str],
        settings: Sequence[CPConfig | Steering | None],
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        aux_sentences: dict[str, Sequence[str]] | None = None,
        bar: tqdm | None = None,
        cache: EmbeddingCache | None = None,
    ) -> list[np.ndarray]:
        """One float32 `(n, d)` array per setting (None = no CP), all from one pass over the data:
        each equals `CPEncoder(self.lm, self.prompt, cp=setting, ...).encode(sentences)`, before
        any post-processing (a fit belongs to one setting).

        A setting is a `CPConfig` or any `Steering` (the controls of `evaluation.controls`);
        `aux_sentences` fills the auxiliary prompts of steerings that name another source. One
        exception to the equality: a sentence too long for `max_length` is cut to fit every
        auxiliary wording among the settings, so with several wordings it may be cut shorter.
        `bar` is a progress bar the caller owns; without one, `show_progress_bar` decides.
        With a `cache` (`cpembed.cache.EmbeddingCache`), kept rows are read and the rest computed a
        chunk at a time and stored chunk by chunk, so a stopped run resumes where it stopped.
        """
        texts, _ = sentence_list(sentences)
        steerings = [self.steering(setting) for setting in settings]
        if not steerings:
            raise InvalidValueError("give at least one setting (None = no CP)")
        if cache is not None:
            return self._through_cache(texts, steerings, batch_size, show_progress_bar, aux_sentences, cache)
        if show_progress_bar is None:
            show_progress_bar = len(texts) > batch_size and sys.stderr.isatty()
        compile_when_worth_it(self.lm, self.compile, len(texts))
        with ExitStack() as stack:
            if bar is None:
                bar = stack.enter_context(progress_bar(len(texts), show_progress_bar))
            embeddings, cut = engine.encode(
                self.lm,
                self.prompt,
                self.output_layer,
                self.max_length,
                texts,
                steerings,
                batch_size,
                bar,
                aux_sentences,
                self.tp,
            )
        warn_cut(cut, self.max_length)
        return list(embeddings.numpy())

    def _through_cache(self, sentences, steerings, batch_size, show_progress_bar, aux_sentences, cache):
        """`encode_settings` through the cache: only the rows some setting lacks are computed."""
        digests = [self.settings(s).digest() for s in steerings]
        keys = [row_keys(sentences, s, aux_sentences) for s in steerings]
        found = [cache.get(d, k) for d, k in zip(digests, keys, strict=True)]
        missing = list(  # each row some setting lacks, once (a repeated sentence is computed once)
            {
                tuple(k[i] for k in keys): i
                for i in range(len(sentences))
                if any(k[i] not in f for f, k in zip(found, keys, strict=True))
            }.values()
        )
        lacking = [j for j in range(len(steerings)) if any(keys[j][i] not in found[j] for i in missing)]
        if show_progress_bar is None:
            show_progress_bar = sys.stderr.isatty()
        with progress_bar(len(missing), show_progress_bar) as bar, one_cut_warning():
            chunk_size = embedding_cache.CHUNK_SENTENCES
            for start in range(0, len(missing), chunk_size):
                rows = missing[start : start + chunk_size]
                aux = {name: [texts[i] for i in rows] for name, texts in (aux_sentences or {}).items()}
                chunk = [sentences[i] for i in rows]
                vectors = self.encode_settings(
                    chunk, [steerings[j] for j in lacking], batch_size, aux_sentences=aux, bar=bar
                )
                for j, v in zip(lacking, vectors, strict=True):
                    chunk_keys = [keys[j][i] for i in rows]
                    cache.put(digests[j], chunk_keys, v)
                    found[j].update(zip(chunk_keys, v, strict=True))
        return [
            np.stack([f[key] for key in k]) if k else np.zeros((0, self.lm.hidden_size), np.float32)
            for f, k in zip(found, keys, strict=True)
        ]

    def settings(self, setting: CPConfig | Steering | None | Literal["own"] = "own") -> EncoderSettings:
        """Everything that decides this encoder's embeddings (with `setting` in place of its own CP)."""
        steering = self.steering(self.cp if setting == "own" else setting)
        return EncoderSettings(
            model=self.lm.name,
            weights=self.lm.fingerprint,
            templates=tuple(t.text for t in self.prompt.templates),
            output_layer=self.output_layer,
            dtype=str(self.lm.dtype).removeprefix("torch."),
            max_length=self.max_length,
            steering=steering.key if steering else None,
            version=VERSION,
            tp=repr(self.tp) if self.tp else None,
        )

    def steering(self, setting: CPConfig | Steering | None) -> Steering | None:
        """A setting as the engine takes it, checked against this encoder's model and output layer."""
        if setting is None:
            return None
        if isinstance(setting, CPConfig):
            check_layers(self.lm.num_layers, setting, self.output_layer)
            return Steering.of(setting)
        if isinstance(setting, Steering):
            check_layers(self.lm.num_layers, CPConfig(setting.layer), self.output_layer)
            return setting
        raise InvalidTypeError(f"a setting must be a CPConfig, a Steering or None, got {type_name(setting)}")

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
        steering = [self.steering(self.cp)]
        for chunk in chunks:
            texts, _ = sentence_list(chunk)
            compile_when_worth_it(self.lm, self.compile, len(texts))
            embeddings, chunk_cut = engine.encode(
                self.lm, self.prompt, self.output_layer, self.max_length, texts, steering, batch_size, bar, tp=self.tp
            )
            cut += chunk_cut
            embeddings = embeddings[0]
            if self.postprocess:
                embeddings = torch.from_numpy(self.postprocess.apply(embeddings.numpy()))
            if normalize_embeddings:
                embeddings = torch.nn.functional.normalize(embeddings, dim=-1)
            yield chunk, embeddings.numpy()
        warn_cut(cut, self.max_length)

    def encode_query(self, sentences: str | Iterable[str], **options):
        """`encode` for search queries (sentence-transformers' name), with `query_prompt` if one was given."""
        return self.for_role("query").encode(sentences, **options)

    def encode_document(self, sentences: str | Iterable[str], **options):
        """`encode` for documents (sentence-transformers' name), with `document_prompt` if one was given."""
        return self.for_role("document").encode(sentences, **options)

    def for_role(self, role: Literal["query", "document"]) -> CPEncoder:
        """The encoder of queries or of documents: this one, or one on the same loaded model with
        that role's prompt and this encoder's CP setting and output layer."""
        return self._roles.get(role, self)

    def rank(
        self,
        query: str,
        documents: Sequence[str],
        top_k: int | None = None,
        return_documents: bool = False,
        batch_size: int = 32,
    ) -> list[dict]:
        """The documents ranked by the cosine of their embedding (`encode_document`) with the
        query's (`encode_query`), best first: `{"corpus_id", "score"}` (and `"text"` with
        `return_documents`), as sentence-transformers' `CrossEncoder.rank` gives them; `top_k` keeps
        the first k."""
        if not isinstance(query, str):
            raise InvalidTypeError(f"query must be a string, got {type_name(query)}")
        texts, _ = sentence_list(documents)
        if top_k is not None:
            integer("top_k", top_k)
        if not texts:
            return []
        q = self.encode_query([query], batch_size=batch_size, normalize_embeddings=True)
        d = self.encode_document(texts, batch_size=batch_size, normalize_embeddings=True)
        scores = np.clip(d @ q[0], -1.0, 1.0)
        order = np.argsort(-scores, kind="stable")[:top_k]
        return [
            {"corpus_id": int(i), "score": float(scores[i])} | ({"text": texts[i]} if return_documents else {})
            for i in order
        ]

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
            raise InvalidValueError(
                f"expected sentences or embeddings of width {self.embedding_dimension}, got shape {x.shape}"
            )
        return x


def progress_bar(total: int, show: bool) -> tqdm:
    """The encoding bar on stderr: sentences done, the rate and the time left."""
    return tqdm(total=total, disable=not show, unit="sent", desc="encoding")


def sentence_list(sentences) -> tuple[list[str], bool]:
    if isinstance(sentences, str):
        return [sentences], True
    if isinstance(sentences, (bytes, dict)) or not isinstance(sentences, Iterable):
        raise InvalidTypeError(f"sentences must be a str or a list of str, got {type(sentences).__name__}")
    texts = list(sentences)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidTypeError(f"sentences[{i}] is {type_name(text)}, expected str: {text!r:.60}")
    return texts, False
