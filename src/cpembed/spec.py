"""One spec of an embedding, and the one resolver that builds it.

An `EncoderSpec` names everything that decides an embedding as a user asks for it: the model (and,
once loaded, the fingerprint of its weights), the prompt with its demonstrations and the query and
document prompts, CP, TP, the output layer, dtype, max_length and the fitted post-processing (by
reference), plus where it came from (the recipe, the job it was chosen for, its dev scores), which
does not change the embedding and stays out of the digest.

`resolve` is the only code that turns keyword arguments, CLI flags or a recipe into CP, TP and
prompt settings: `CPEncoder(...)`, every command and the Ray driver call it. It checks layers
against the model's declared layer count before any weight or input is read. A spec saves as a
versioned JSON file (`save` / `load`); `CPEncoder.from_spec` builds the encoder it describes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import JOB_RECIPES, MODEL_RECIPES, PAPER_CP, RECIPES, CPConfig, Recipe, TPConfig, default_cp, recipe
from .errors import InputNotFoundError, InvalidTypeError, InvalidValueError
from .models import DEFAULT_MODEL, declared_num_layers
from .prompts import PROMPTS, Prompt, demonstration_list, resolve_prompt
from .validation import integer, type_name

FORMAT = 1  # the JSON file's layout version
PACKAGED = "packaged:"  # a postprocess reference to a fit shipped with cpembed (`cpembed/fits/`)
CENTER = "center"  # centering fitted at load on cpembed's built-in sentences
IN_MEMORY = "object:"  # a PostProcess given as an object: describes the encoder, cannot be saved

# The fields that decide the embedding (the digest's) and those that only say where a spec came from.
EMBEDDING_FIELDS = (
    "model",
    "weights",
    "prompt",
    "demonstrations",
    "query_prompt",
    "document_prompt",
    "cp",
    "tp",
    "output_layer",
    "dtype",
    "max_length",
    "postprocess",
)
ORIGIN_FIELDS = ("recipe", "job", "about", "origin")
DTYPES = ("auto", "float32", "bfloat16", "float16")
_DTYPE_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


@dataclass(frozen=True)
class EncoderSpec:
    """Everything that decides one embedding, serializable.

    Args:
        model: a built-in model name, a model folder or a `.gguf` file.
        weights: the fingerprint of the weights it was made for (`LanguageModel.fingerprint`);
            None: any. `CPEncoder.from_spec` refuses other weights.
        prompt: a built-in prompt name ("prompteol", ...), names joined by "+" (an ensemble,
            averaged), or a template with one `{sentence}`.
        demonstrations: (sentence, answer word) pairs put before every template.
        query_prompt, document_prompt: the prompts of queries and documents; None: `prompt`.
        cp: the Contrastive Prompting setting; None: the plain prompt embedding.
        tp: Token Prepending; None: none.
        output_layer: index into `hidden_states`; None: the prompt's own.
        dtype: "auto", "float32" or "bfloat16".
        max_length: token budget of one prompt.
        postprocess: None; "center" (on the built-in sentences, at load); "packaged:<file>" (a fit
            shipped with cpembed); or the path of a fit saved by `cpembed fit`.
        recipe: the built-in recipe it is ("best", "fast", or a job's: "reranking", ...), if any.
        job: the job it was chosen for ("sts", "retrieval", ...), if known.
        about: one line for people: what it is and what it costs.
        origin: how it was chosen (dev scores, data, dates), JSON-ready.
    """

    model: str = DEFAULT_MODEL
    prompt: str = "prompteol"
    cp: CPConfig | None = None
    tp: TPConfig | None = None
    output_layer: int | None = None
    dtype: str = "auto"
    max_length: int = 512
    demonstrations: tuple[tuple[str, str], ...] = ()
    query_prompt: str | None = None
    document_prompt: str | None = None
    postprocess: str | None = None
    weights: str | None = None
    recipe: str | None = None
    job: str | None = None
    about: str = ""
    origin: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        for name in ("model", "prompt", "dtype", "about"):
            if not isinstance(getattr(self, name), str):
                raise InvalidTypeError(f"spec field {name!r} must be a string, got {type_name(getattr(self, name))}")
        for name in ("query_prompt", "document_prompt", "postprocess", "weights", "recipe", "job"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise InvalidTypeError(
                    f"spec field {name!r} must be a string or None, got {type_name(getattr(self, name))}"
                )
        if self.cp is not None and not isinstance(self.cp, CPConfig):
            raise InvalidTypeError(f"cp must be a CPConfig or None, got {type_name(self.cp)}")
        if self.tp is not None and not isinstance(self.tp, TPConfig):
            raise InvalidTypeError(f"tp must be a TPConfig or None, got {type_name(self.tp)}")
        if self.dtype not in DTYPES:
            raise InvalidValueError(f"unknown dtype {self.dtype!r}: use 'auto', 'float32' or 'bfloat16'")
        integer("max_length", self.max_length)
        if self.output_layer is not None and (
            isinstance(self.output_layer, bool) or not isinstance(self.output_layer, int)
        ):
            raise InvalidTypeError(f"output_layer must be an int or None, got {type_name(self.output_layer)}")
        object.__setattr__(self, "demonstrations", demonstration_list(self.demonstrations))
        if not isinstance(self.origin, Mapping):
            raise InvalidTypeError(f"origin must be a mapping, got {type_name(self.origin)}")
        for prompt in (self.prompt, self.query_prompt, self.document_prompt):
            if prompt is not None:
                resolve_prompt(prompt)  # a bad name fails here, not when a model has loaded

    # -- serialization ------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """JSON-ready, with the file format's version; `from_dict` is its inverse."""
        out: dict[str, Any] = {"format": FORMAT}
        for f in dataclasses.fields(self):
            out[f.name] = _SAVE[f.name](getattr(self, f.name))
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> EncoderSpec:
        if not isinstance(data, Mapping):
            raise InvalidTypeError(f"a spec is a JSON object, got {type_name(data)}")
        data = dict(data)
        version = data.pop("format", None)
        if version != FORMAT:
            raise InvalidValueError(
                f"this spec has format {version!r}; this cpembed reads format {FORMAT}: make it again with this version"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        if unknown := sorted(set(data) - known):
            raise InvalidValueError(
                f"unknown spec field(s) {', '.join(unknown)}; a spec has {', '.join(sorted(known))}"
            )
        return cls(**{name: _LOAD[name](value) for name, value in data.items()})

    def save(self, path: str | os.PathLike) -> Path:
        if self.postprocess and self.postprocess.startswith(IN_MEMORY):
            raise InvalidValueError(
                "this spec's post-processing was given as an object: save the fit (PostProcess.save) and "
                "pass its path as postprocess="
            )
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        partial.replace(path)  # never a half-written spec under the real name
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> EncoderSpec:
        path = Path(path)
        if not path.is_file():
            raise InputNotFoundError(f"no spec file at {path}: make one with `cpembed tune` or `cpembed spec`")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise InvalidValueError(f"{path} is not a spec file (not JSON: {error})") from None
        try:
            spec = cls.from_dict(data)
        except (InvalidValueError, InvalidTypeError, TypeError, KeyError) as error:
            raise InvalidValueError(f"{path} is not a valid spec: {error}") from None
        if spec.postprocess and not _is_reference(spec.postprocess):  # a fit's path is relative to the spec's folder
            fit_path = Path(spec.postprocess).expanduser()
            if not fit_path.is_absolute():
                spec = dataclasses.replace(spec, postprocess=str(path.parent / fit_path))
        return spec

    def digest(self) -> str:
        """A short hex digest of the fields that decide the embedding: equal embeddings, equal digest."""
        decided = {name: _SAVE[name](getattr(self, name)) for name in EMBEDDING_FIELDS}
        return hashlib.sha256(json.dumps(decided, sort_keys=True).encode()).hexdigest()[:32]

    def describe(self) -> str:
        """One line for people."""
        if self.recipe:
            line = f"recipe: {self.recipe} for {self.model}: {self.about}"
            shipped = MODEL_RECIPES.get(self.model, {}).get(self.recipe)
            if shipped is not None and _postprocess_reference("auto", shipped) != self.postprocess:
                # The recipe's prompt and CP with another post-processing (--postprocess): say which.
                line += f"; its post-processing replaced by {self.postprocess or 'none'}"
            return line
        return "spec: " + (self.about or _settings_line(self))


def _settings_line(spec: EncoderSpec) -> str:
    parts = [spec.prompt if "{" not in spec.prompt else "custom template"]
    parts.append("no CP" if spec.cp is None else repr(spec.cp))
    if spec.tp:
        parts.append(repr(spec.tp))
    if spec.postprocess:
        parts.append(f"post-processing {spec.postprocess}")
    return ", ".join(parts)


def _is_reference(postprocess: str) -> bool:
    return postprocess == CENTER or postprocess.startswith((PACKAGED, IN_MEMORY))


def _identity(value):
    return value


def _mapping(value) -> dict:
    if not isinstance(value, Mapping):
        raise InvalidTypeError(f"origin must be a mapping, got {type_name(value)}")
    return dict(value)


# How each field is written and read: a field added without an entry here fails `to_dict` (and a test).
_SAVE = dict.fromkeys(EMBEDDING_FIELDS + ORIGIN_FIELDS, _identity) | {
    "cp": lambda cp: dataclasses.asdict(cp) if cp else None,
    "tp": lambda tp: dataclasses.asdict(tp) if tp else None,
    "demonstrations": lambda pairs: [list(pair) for pair in pairs],
    "origin": _mapping,
}
_LOAD = dict.fromkeys(EMBEDDING_FIELDS + ORIGIN_FIELDS, _identity) | {
    "cp": lambda cp: CPConfig(**cp) if cp is not None else None,
    "tp": lambda tp: TPConfig(**tp) if tp is not None else None,
    "demonstrations": lambda pairs: tuple(tuple(pair) for pair in pairs),
    "origin": _mapping,
}


# -- the resolver ---------------------------------------------------------------------------------


def resolve(
    model: str | os.PathLike = DEFAULT_MODEL,
    prompt: str | Prompt | Sequence[str] | None = None,
    cp: CPConfig | None | str = "auto",
    output_layer: int | None = None,
    dtype: str | None = None,
    max_length: int = 512,
    query_prompt: str | Prompt | None = None,
    document_prompt: str | Prompt | None = None,
    tp: TPConfig | None = None,
    recipe: str | None = "auto",
    demonstrations: Sequence[tuple[str, str]] | None = None,
    postprocess: str | os.PathLike | None = "auto",
    num_layers: int | None = None,
) -> EncoderSpec:
    """The spec `CPEncoder(...)` with these keyword arguments embeds with (see its docstring).

    `recipe="auto"` is the model's best recipe when prompt, cp, tp, output_layer, demonstrations
    and the query and document prompts are all unset, else none. `postprocess` is "auto" (the
    recipe's), None or "none", a reference (`EncoderSpec.postprocess`) or a fit's path.
    Layers are checked against `num_layers`, or the count the model declares, before anything loads.
    """
    name = os.fspath(model) if isinstance(model, os.PathLike) else model
    if not isinstance(name, str):
        raise InvalidTypeError(f"model must be a built-in name or a path, got {type_name(model)}")
    roles_given = query_prompt is not None or document_prompt is not None
    recipe_name = None if roles_given and recipe == "auto" else recipe
    chosen = chosen_recipe(name, recipe_name, prompt, cp, tp, output_layer, demonstrations)
    if dtype is not None:
        dtype = str(dtype).removeprefix("torch.")
        dtype = _DTYPE_ALIASES.get(dtype, dtype)
    about, origin = "", {}
    if chosen is not None:
        recipe_name = "best" if recipe_name == "auto" else recipe_name
        prompt, cp, tp, about = chosen.prompt, chosen.cp, chosen.tp, chosen.about
        if chosen.dtypes and postprocess == "auto":
            if dtype in (None, "auto"):
                dtype = chosen.dtype
            elif dtype not in chosen.dtypes:
                raise fit_refused(name, recipe_name, chosen, dtype, max_length)
    else:
        recipe_name = None
    prompt_text = _prompt_text(prompt) or "prompteol"
    roles = {role: _prompt_text(given) for role, given in (("query", query_prompt), ("document", document_prompt))}
    if (
        isinstance(prompt, Prompt)
        and output_layer is None
        and prompt.output_layer != resolve_prompt(prompt_text).output_layer
    ):
        output_layer = prompt.output_layer  # a Prompt object carries its own output layer
    resolved = resolve_prompt(prompt_text).with_demonstrations(demonstrations)
    if isinstance(cp, str) and cp == "auto":  # a prompt with demonstrations is another prompt: no table entry
        cp = default_cp(name, resolved.name)
    if cp is not None and not isinstance(cp, CPConfig):
        raise InvalidTypeError(f"cp must be a CPConfig, None or 'auto', got {type_name(cp)}")
    if tp is not None and not isinstance(tp, TPConfig):
        raise InvalidTypeError(f"tp must be a TPConfig or None, got {type_name(tp)}")
    spec = EncoderSpec(
        model=name,
        prompt=prompt_text,
        cp=cp,
        tp=tp,
        output_layer=output_layer,
        dtype=dtype or "auto",
        max_length=max_length,
        demonstrations=demonstration_list(demonstrations),
        query_prompt=roles["query"],
        document_prompt=roles["document"],
        postprocess=_postprocess_reference(postprocess, chosen),
        recipe=recipe_name,
        job=recipe_name if recipe_name in JOB_RECIPES else None,
        about=about,
        origin=origin,
    )
    check_spec_layers(spec, num_layers)
    return spec


def check_spec_layers(spec: EncoderSpec, num_layers: int | None = None) -> None:
    """A spec's layers against `num_layers`, or the count its model declares (nothing is loaded):
    a bad layer fails before minutes of loading, or before a Ray job reads its inputs."""
    if (layers := num_layers or declared_num_layers(spec.model)) is not None:
        check_layers(layers, spec.cp, spec_output_layer(spec), spec.tp)


def spec_output_layer(spec: EncoderSpec) -> int:
    """The output layer the spec reads: its own, or its prompt's."""
    return resolve_prompt(spec.prompt).output_layer if spec.output_layer is None else spec.output_layer


def _prompt_text(prompt) -> str | None:
    """A prompt as a spec holds it: a built-in name, names joined by "+", or a template."""
    if prompt is None:
        return None
    if isinstance(prompt, Prompt):
        if PROMPTS.get(prompt.name) == prompt:
            return prompt.name
        if len(prompt.templates) == 1:
            return prompt.templates[0].text
        names = prompt.name.split("+")
        if all(n in PROMPTS for n in names) and resolve_prompt(names).templates == prompt.templates:
            return prompt.name
        raise InvalidValueError(
            f"prompt {prompt.name!r} averages templates that are not built-in prompts; pass its parts as a list"
        )
    if isinstance(prompt, (list, tuple)):
        members = [_prompt_text(p) for p in prompt]
        if any("{" in m or "+" in m for m in members):
            raise InvalidValueError("an ensemble of templates cannot be saved in a spec: use built-in prompt names")
        return "+".join(resolve_prompt(members).name.split("+"))
    if not isinstance(prompt, str):
        raise InvalidTypeError(f"prompt must be a name or a template string, got {type_name(prompt)}")
    resolved = resolve_prompt(prompt)
    return prompt if resolved.name == "custom" else resolved.name


def _postprocess_reference(postprocess, chosen: Recipe | None) -> str | None:
    if isinstance(postprocess, os.PathLike):
        return os.fspath(postprocess)
    if postprocess is None or postprocess == "none":
        return None
    if postprocess == "auto":
        if chosen is None or chosen.fit is None:
            return None
        return CENTER if chosen.fit == CENTER else PACKAGED + chosen.fit
    if isinstance(postprocess, str):
        return postprocess
    from .postprocess import PostProcess

    if isinstance(postprocess, PostProcess):
        return IN_MEMORY + postprocess.fingerprint()
    raise InvalidTypeError(f"postprocess must be a PostProcess, a path, 'auto' or None, got {type_name(postprocess)}")


def chosen_recipe(
    model: str, name: str | None, prompt=None, cp="auto", tp=None, output_layer=None, demonstrations=None
) -> Recipe | None:
    """The recipe an encoder uses: the named one ("auto": "best" when the prompt, CP, TP, output
    layer and demonstrations are all left unset), or None when the caller chose those themselves."""
    given = [
        arg
        for arg, is_set in (
            ("prompt", prompt is not None),
            ("cp", not (isinstance(cp, str) and cp == "auto")),
            ("tp", tp is not None),
            ("output_layer", output_layer is not None),
            ("demonstrations", bool(demonstrations)),
        )
        if is_set
    ]
    if name == "auto":
        return None if given else recipe(model, "best")
    if name is None:
        return None
    if name not in RECIPES:
        raise InvalidValueError(f"recipe must be one of auto, {', '.join(RECIPES)} or None, got {name!r}")
    if given:
        raise InvalidValueError(
            f"recipe {name!r} sets the prompt, CP, TP and output layer: drop {', '.join(given)}, "
            "or drop the recipe to choose them"
        )
    return recipe(model, name)


def fit_refused(model: str, name: str, chosen: Recipe, dtype: str, max_length: int) -> InvalidValueError:
    return InvalidValueError(
        f"the {name!r} recipe of {model} comes with fits made in {' and '.join(chosen.dtypes)} "
        f"with the default max_length on cpembed's packaged weights, and these settings differ (dtype {dtype}, "
        f"max_length {max_length}): use dtype {chosen.dtypes[0]} (--dtype {chosen.dtypes[0]}), or no "
        "recipe (recipe=None, --recipe none), or fit your own with `cpembed fit` and pass it (postprocess=, "
        "--postprocess)"
    )


def cp_from_flags(model: str, prompt: str | None, no_cp: bool, overrides: Mapping[str, Any]) -> CPConfig | None:
    """The CP setting the command-line flags ask for: `--no-cp`, or the defaults table's entry for
    the model and prompt with the flags given (`--layer`, `--alpha`, ...) in place of its fields."""
    if no_cp:
        if overrides:
            raise InvalidValueError(f"--no-cp cannot be combined with --{', --'.join(overrides).replace('_', '-')}")
        return None
    name = resolve_prompt(prompt or "prompteol").name
    base = default_cp(model, name) or (PAPER_CP[name] if overrides else None)
    if base is None:
        return None
    cp = dataclasses.replace(base, **overrides)
    if "alpha" in overrides and cp.norm == "recover":  # --alpha that would change nothing is an error
        where = f" (the default for {model} and {name} is NR, l={cp.layer})" if "norm" not in overrides else ""
        raise InvalidValueError(f"--alpha has no effect with norm recover{where}: add --norm scale to use it")
    return cp


def check_layers(n: int, cp: CPConfig | None, output_layer: int, tp: TPConfig | None = None) -> int:
    """Check CP's layer, TP's layers and the output layer against an `n`-layer model; the output
    layer as 0..n (a Python-style index into `hidden_states`, which has n + 1 entries)."""
    if tp is not None and tp.last > n:
        raise InvalidValueError(f"TP's last layer {tp.last} is out of range for a {n}-layer model: use 1..{n}")
    if isinstance(output_layer, bool) or not isinstance(output_layer, int) or not -(n + 1) <= output_layer <= n:
        raise InvalidValueError(
            f"output_layer {output_layer!r} is out of range for a {n}-layer model: "
            f"use 0..{n} or -{n + 1}..-1 (an index into hidden_states; -1 = final normed state)"
        )
    layer = output_layer % (n + 1)
    if cp is not None:
        if cp.layer > n:
            raise InvalidValueError(f"CP layer {cp.layer} is out of range for a {n}-layer model: use 1..{n} (1-based)")
        if layer < cp.layer:
            raise InvalidValueError(
                f"output_layer {output_layer} reads hidden_states[{layer}], before the CP layer "
                f"{cp.layer}, so CP could not change it: use an output layer >= {cp.layer}"
            )
    return layer
