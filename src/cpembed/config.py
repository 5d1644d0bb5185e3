"""CP settings as data, and the table of default settings per (model, prompt)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Literal

from .errors import InvalidValueError
from .prompts import IRRELEVANT, Template
from .sites import SITES
from .validation import integer

VERSION = "0.1.0"  # the package's version (pyproject.toml reads it from here)

Norm = Literal["scale", "recover"]
NORMS: tuple[Norm, ...] = ("scale", "recover")


@dataclass(frozen=True)
class CPConfig:
    """Contrastive Prompting settings.

    Args:
        layer: the intervention layer l, 1-based as in the paper (l=5 is decoder layer index 4).
        alpha: the NS coefficient, `alpha * (v_nor - v_aux)`; ignored by `norm="recover"`.
        norm: "scale" (NS) or "recover" (NR: rescale `v_nor - v_aux` to the norm of `v_nor`).
        site: "heads" (o_proj input, the paper's default), "ffn" (MLP output) or "hidden"
            (decoder layer output); the auxiliary vector is read at the same site it is written.
        aux_template: the auxiliary prompt, with one `{sentence}` placeholder.

    The controls that ask whether a gain needs the contrast (zero, scale, shuffle, mean) are not
    settings of CP: they live in `cpembed.evaluation.controls`.

    Example:
        >>> CPConfig(layer=5, alpha=2.0)
        CPConfig(layer=5, alpha=2.0, norm='scale', site='heads', aux_template=...)
    """

    layer: int = 5
    alpha: float = 1.0
    norm: Norm = "scale"
    site: str = "heads"
    aux_template: str = IRRELEVANT

    def __post_init__(self) -> None:
        integer("CP layer", self.layer, why=" (1-based, as in the paper)")
        if not isinstance(self.alpha, (int, float)) or not math.isfinite(self.alpha) or self.alpha <= 0:
            raise InvalidValueError(f"alpha must be a finite number > 0, got {self.alpha!r}")
        if self.norm not in NORMS:
            raise InvalidValueError(f"norm must be one of {', '.join(NORMS)}, got {self.norm!r}")
        if self.site not in SITES:
            raise InvalidValueError(f"site must be one of {', '.join(SITES)}, got {self.site!r}")
        Template(self.aux_template)  # validates the placeholder

    def __repr__(self) -> str:
        aux = "..." if self.aux_template == IRRELEVANT else repr(self.aux_template)
        return (
            f"CPConfig(layer={self.layer}, alpha={self.alpha}, norm={self.norm!r}, "
            f"site={self.site!r}, aux_template={aux})"
        )


@dataclass(frozen=True)
class TPConfig:
    """Token Prepending (Fu et al., 2024), training-free, composable with CP.

    A placeholder token goes just before the quoted sentence (`This sentence : <PST> "..."`). At
    the input of each layer `first..last` (1-based), the placeholder's state is replaced by the
    prompt's last token's state there (the previous layer's output), so the sentence's tokens,
    which come after it, can attend to a summary of the whole sentence that causal attention
    otherwise hides from them. The prompt is otherwise unchanged, and so is the model.

    Args:
        last: the last layer whose input at the placeholder is replaced.
        first: the first one. The paper's code replaces layers 2..7 of LLaMA2-7B's 32 (its
            `tp_starting_index=1, tp_exiting_index=7`), so layer 1 sees the placeholder's own embedding.
        seed: that embedding is a standard normal vector drawn with this seed (the paper's code
            draws one with `torch.randn` for a new `<PST>` token; here no token is added to the model).

    With CP, TP runs on the normal prompt only; the auxiliary prompt runs as CP defines it. A CP
    setting at a layer before `last` changes what TP copies, so it gets a pass of its own.
    """

    last: int = 7
    first: int = 2
    seed: int = 3407

    def __post_init__(self) -> None:
        integer("TP last layer", self.last, why=" (1-based)")
        integer("TP first layer", self.first, why=" (1-based)")
        integer("TP seed", self.seed, low=0)
        if self.first > self.last:
            raise InvalidValueError(f"TP's first layer ({self.first}) is after its last ({self.last})")

    @staticmethod
    def parse(text: str) -> TPConfig:
        """ "2-7" (first-last) or "7" (layers 2..7, as the paper's code counts them)."""
        first, dash, last = text.strip().partition("-")
        try:
            numbers = (int(last), int(first)) if dash else (int(first),)
        except ValueError:
            raise InvalidValueError(f"TP layers must look like 2-7 or 7, got {text!r}") from None
        return TPConfig(*numbers)


# The paper's LLaMA2-7B settings (docs/method.md, Paper settings): PromptEOL l=5, alpha=2; Pretended
# CoT and Knowledge l=7, alpha=3; CK, whose setting the paper does not list, takes theirs. The
# default for a model nobody has searched yet.
PAPER_CP: dict[str, CPConfig] = {
    "prompteol": CPConfig(layer=5, alpha=2.0),
    "cot": CPConfig(layer=7, alpha=3.0),
    "knowledge": CPConfig(layer=7, alpha=3.0),
    "ck": CPConfig(layer=7, alpha=3.0),
    "custom": CPConfig(layer=5, alpha=2.0),
}

# Default CP settings of searched models, keyed by (model, prompt), chosen on dev splits by the rule
# in `experiments/report_steps.py` (`choose`) (docs/RESULTS.md, "Defaults this rule gives"). None means the
# search found no setting that helps raw text, so the default is the plain prompt embedding.
DEFAULT_CP: dict[tuple[str, str], CPConfig | None] = {
    # SmolLM2-135M: SentEval STS-B dev 67.04 -> 69.79, raw STS-B dev 73.84 -> 73.99 (docs/RESULTS.md).
    ("smollm2-135m", "prompteol"): CPConfig(layer=3, alpha=1.0),
    # SmolLM2-135M: SentEval STS-B dev 62.53 -> 73.12, raw STS-B dev 75.34 -> 76.70.
    ("smollm2-135m", "cot"): CPConfig(layer=7, alpha=4.0),
    # SmolLM2-135M: SentEval STS-B dev 74.38 -> 74.45, raw STS-B dev 76.46 -> 76.70.
    ("smollm2-135m", "knowledge"): CPConfig(layer=4, alpha=1.0),
    # SmolLM2-135M: SentEval STS-B dev 71.81 -> 74.40, raw STS-B dev 76.84 -> 77.19.
    ("smollm2-135m", "ck"): CPConfig(layer=7, alpha=1.0, norm="recover"),
    # Qwen2.5-Coder-0.5B: SentEval STS-B dev 70.59 -> 71.65, raw STS-B dev 72.09 -> 72.35.
    ("qwen2.5-coder-0.5b", "prompteol"): CPConfig(layer=4, alpha=1.0, norm="recover"),
    # Qwen2.5-Coder-0.5B: SentEval STS-B dev 73.42 -> 74.56, raw STS-B dev 74.03 -> 74.91.
    ("qwen2.5-coder-0.5b", "cot"): CPConfig(layer=6, alpha=4.0),
    # Qwen2.5-Coder-0.5B: SentEval STS-B dev 72.72 -> 73.77, raw STS-B dev 73.43 -> 74.26.
    ("qwen2.5-coder-0.5b", "knowledge"): CPConfig(layer=6, alpha=4.0),
    # Qwen2.5-Coder-0.5B: SentEval STS-B dev 73.35 -> 74.48, raw STS-B dev 74.06 -> 74.91.
    ("qwen2.5-coder-0.5b", "ck"): CPConfig(layer=6, alpha=4.0),
    # Qwen2.5-Coder-1.5B (bfloat16): SentEval STS-B dev 78.72 -> 78.77, raw STS-B dev 78.29 -> 78.37.
    ("qwen2.5-coder-1.5b", "prompteol"): CPConfig(layer=6, alpha=0.5),
    # Qwen2.5-Coder-1.5B (bfloat16): SentEval STS-B dev 79.65 -> 79.83, raw STS-B dev 79.31 -> 79.69.
    ("qwen2.5-coder-1.5b", "cot"): CPConfig(layer=4, alpha=4.0),
    # SentEval STS-B dev 76.11 -> 76.31, raw STS-B dev 75.84 -> 76.27 (bfloat16).
    ("qwen2.5-coder-1.5b", "knowledge"): CPConfig(layer=4, alpha=4.0),
    # SentEval STS-B dev 78.54 -> 78.78, raw STS-B dev 78.36 -> 78.78 (bfloat16).
    ("qwen2.5-coder-1.5b", "ck"): CPConfig(layer=4, alpha=4.0),
}


def default_cp(model: str, prompt: str) -> CPConfig | None:
    """The default CP settings for a model (built-in name or path) and a prompt name; None = no CP."""
    if (model, prompt) in DEFAULT_CP:
        return DEFAULT_CP[(model, prompt)]
    return PAPER_CP.get(prompt, PAPER_CP["custom"])


@dataclass(frozen=True)
class Recipe:
    """A whole way to embed with one model: the prompt, its CP setting, its Token Prepending and
    its post-processing.

    Args:
        prompt: a prompt name ("prompteol", "cot", "knowledge", "ck").
        cp: the CP setting; None = the plain prompt embedding.
        tp: the Token Prepending setting; None = none.
        fit: the post-processing: the name of a fit packaged with cpembed (`cpembed/fits/<fit>-<dtype>.npz`,
            one file per dtype in `dtypes`), "center" (centering fitted when the model loads, on
            cpembed's built-in sentences), or None (none).
        dtypes: the dtypes a packaged fit was made in (a fit belongs to one dtype's embeddings):
            "auto" picks among them as it picks for any model, one alone fixes the dtype, and a
            dtype without a fit is refused.
        about: what it is and what it scored, in one line, for the commands to print.
    """

    prompt: str
    cp: CPConfig | None
    tp: TPConfig | None = None
    fit: str | None = None
    dtypes: tuple[str, ...] = ()
    about: str = ""

    @property
    def dtype(self) -> str | None:
        """The dtype it runs in unless one is asked for: "auto" where it has a fit for both float32
        and bfloat16, else its fit's; None without a packaged fit."""
        if {"float32", "bfloat16"} <= set(self.dtypes):
            return "auto"
        return self.dtypes[0] if self.dtypes else None


# The recipe names `CPEncoder(recipe=...)` and `--recipe` take. "best" is the default whenever the
# prompt, CP, TP and output layer are all left to cpembed; "fast" is the best single-prompt recipe.
# Every searched model has both. A job's name is the setting `cpembed tune --job JOB` chose for that
# job on its shared tuning split (docs/results/<model>/tune/), where one has been tuned.
GENERAL_RECIPES = ("best", "fast")
JOB_RECIPES = ("retrieval", "reranking", "pairs", "clustering")
RECIPES = GENERAL_RECIPES + JOB_RECIPES

# Each searched model's recipes, chosen on dev splits only (docs/RESULTS.md, "The defaults", "Recipes" and
# "Fitted post-processing"): the best dev mean (SentEval STS-B dev and raw STS-B dev) among every
# candidate that beats plain PromptEOL on both, post-processing included. The fits were made on the
# tuning corpus (`cpembed.evaluation.corpus`, 2,400 unlabelled sentences of tuning splits) in float32
# by `python -m experiments --ship-fits`; their arrays are derived statistics, not the sentences.
# Each `about` quotes the recipe's speed from docs/performance/recipes-<model>.json (benchmarks/recipes.py).
MODEL_RECIPES: dict[str, dict[str, Recipe]] = {
    "smollm2-135m": {
        # dev mean 79.23 against plain PromptEOL's 70.44 (CK + its default CP, whitened to 128).
        "best": Recipe(
            "ck",
            DEFAULT_CP[("smollm2-135m", "ck")],
            fit="smollm2-135m-best",
            dtypes=("float32", "bfloat16"),
            about="CK (two prompts) with CP-NR at l=7, whitened to 128 dimensions; 0.47x the sentences/s of "
            "plain PromptEOL",
        ),
        # dev mean 78.78: the best single-prompt candidate (PromptEOL + its default CP, whitened to 128).
        "fast": Recipe(
            "prompteol",
            DEFAULT_CP[("smollm2-135m", "prompteol")],
            fit="smollm2-135m-fast",
            dtypes=("float32", "bfloat16"),
            about="PromptEOL with CP-NS at l=3, alpha=1, whitened to 128 dimensions; 0.91x the sentences/s of "
            "plain PromptEOL",
        ),
        # The job recipes: `cpembed tune smollm2-135m --job JOB --budget 10m --dtype float32` on the
        # job's shared tuning split (docs/results/smollm2-135m/tune/, fits centered or whitened there).
        # WikiQA dev MAP 72.33 against plain PromptEOL's 66.51 (+5.82, +0.75..+10.86), all 122 questions.
        "reranking": Recipe(
            "ck",
            CPConfig(layer=12, alpha=0.5),
            fit="smollm2-135m-reranking",
            dtypes=("float32",),
            about="CK (two prompts) with CP-NS at l=12, alpha=0.5, centered; tuned for answer reranking; 0.43x the "
            "sentences/s of plain PromptEOL",
        ),
        # PIT2015 dev AP 66.74 against plain PromptEOL's 60.59 (+6.14, +4.93..+7.30), all 4,142 pairs.
        "pairs": Recipe(
            "cot",
            CPConfig(layer=12, alpha=4.0),
            about="Pretended CoT with CP-NS at l=12, alpha=4; no post-processing; tuned for duplicate detection; "
            "0.78x the sentences/s of plain PromptEOL",
        ),
        # 20NG train subjects V-measure 33.45 against plain PromptEOL's 31.71 (+1.74, +0.17..+3.02 over
        # k-means seeds), all 11,314 subject lines.
        "clustering": Recipe(
            "ck",
            CPConfig(layer=16, alpha=4.0),
            fit="smollm2-135m-clustering",
            dtypes=("float32",),
            about="CK (two prompts) with CP-NS at l=16, alpha=4, centered; tuned for clustering; 0.41x the sentences/s "
            "of plain PromptEOL",
        ),
        # SciFact train nDCG@10 74.86 against plain PromptEOL's 60.87 (+14.00, +5.21..+22.45) on 64 of 809
        # queries (the first round: the next would not have fit the budget); no CP setting did better.
        "retrieval": Recipe(
            "cot",
            None,
            fit="smollm2-135m-retrieval",
            dtypes=("float32",),
            about="Pretended CoT without CP, centered; tuned for search; 1.09x the sentences/s of plain PromptEOL",
        ),
    },
    # dev mean 78.33 (78.43, 78.23) against plain PromptEOL's 71.34: PromptEOL + its default CP,
    # whitened to 384. Pretended CoT + its CP, whitened to 384, follows at 77.30; the raw recipe with
    # Token Prepending scored 75.05.
    "qwen2.5-coder-0.5b": dict.fromkeys(
        GENERAL_RECIPES,
        Recipe(
            "prompteol",
            DEFAULT_CP[("qwen2.5-coder-0.5b", "prompteol")],
            fit="qwen2.5-coder-0.5b-best",
            dtypes=("float32",),
            about="PromptEOL with CP-NR at l=4, whitened to 384 dimensions; 0.84x the sentences/s of plain PromptEOL",
        ),
    )
    | {
        # WikiQA dev MAP 69.24 against plain PromptEOL's 65.99 (+3.26, +0.69..+6.50) on 64 of 122
        # questions: the 10-minute budget ended the first round after PromptEOL and Pretended CoT.
        "reranking": Recipe(
            "prompteol",
            CPConfig(layer=16, alpha=0.5),
            fit="qwen2.5-coder-0.5b-reranking",
            dtypes=("float32",),
            about="PromptEOL with CP-NS at l=16, alpha=0.5, centered; tuned for answer reranking; 0.52x the "
            "sentences/s of plain PromptEOL",
        ),
    },
    # dev mean 83.83 (84.10, 83.56; bfloat16) against plain PromptEOL's 78.51: the layer sweep's best
    # layer (l=21, far past the paper's grid, where PromptEOL's grid default gains nothing; 80.83
    # without post-processing), whitened to 384. The same whitening of plain PromptEOL: 82.89.
    # Made in bfloat16, as every search of this model: its fit belongs to bfloat16 embeddings.
    "qwen2.5-coder-1.5b": dict.fromkeys(
        GENERAL_RECIPES,
        Recipe(
            "prompteol",
            CPConfig(layer=21, alpha=0.5),
            fit="qwen2.5-coder-1.5b-best",
            dtypes=("bfloat16",),
            about="PromptEOL with CP-NS at l=21, alpha=0.5, whitened to 384 dimensions (bfloat16); 0.56x the "
            "sentences/s of plain PromptEOL",
        ),
    )
    | {
        # WikiQA dev MAP 71.69 against plain PromptEOL's 67.19 (+4.50, +0.70..+8.90) on 64 of 122
        # questions: the 10-minute budget ended the first round after PromptEOL and Pretended CoT.
        "reranking": Recipe(
            "prompteol",
            CPConfig(layer=15, alpha=1.0),
            fit="qwen2.5-coder-1.5b-reranking",
            dtypes=("bfloat16",),
            about="PromptEOL with CP-NS at l=15, alpha=1, centered (bfloat16); tuned for answer reranking; 0.66x "
            "the sentences/s of plain PromptEOL",
        ),
    },
}
# The best recipe of each searched model (what `CPEncoder()` uses).
BEST_RECIPE: dict[str, Recipe] = {model: recipes["best"] for model, recipes in MODEL_RECIPES.items()}

# A model nobody has searched gets plain PromptEOL, centered: centering removes the direction every
# last-token state shares (unrelated sentences at cosine 0.88 -> 0.23 on SmolLM2-135M, docs/RESULTS.md)
# and needs no labels; the paper's LLaMA2-7B setting is not a safe guess for another model.
UNSEARCHED_RECIPE = Recipe(
    "prompteol",
    None,
    fit="center",
    about="plain PromptEOL, centered on cpembed's built-in sentences (no recipe was searched for this model)",
)


def reported_dtype(model: str) -> str:
    """The dtype a model's recipes were first fitted, timed and scored in: its best recipe's first
    fit's (float32 without one); measurements in another dtype carry it in their file names."""
    return (MODEL_RECIPES[model]["best"].dtypes or ("float32",))[0]


def recipe(model: str, name: str = "best") -> Recipe:
    """The named recipe for a model (built-in name or path)."""
    if name not in RECIPES:
        raise InvalidValueError(f"recipe must be one of {', '.join(RECIPES)}, got {name!r}")
    if model not in MODEL_RECIPES:
        return UNSEARCHED_RECIPE
    if name not in MODEL_RECIPES[model]:
        raise InvalidValueError(
            f"{model} has no {name!r} recipe yet (it has {', '.join(MODEL_RECIPES[model])}): "
            f"`cpembed tune {model} --job {name}` chooses one on the job's tuning data in about 10 minutes"
        )
    return MODEL_RECIPES[model][name]


@dataclass(frozen=True)
class EncoderSettings:
    """Everything that decides an embedding, resolved: what the cache, Ray, MTEB and reports key on."""

    model: str
    weights: str  # a fingerprint of the loaded weights (models.weights_fingerprint)
    templates: tuple[str, ...]
    output_layer: int  # 0..L
    dtype: str
    max_length: int
    steering: str | None  # the setting's key (steering.Steering.key); None = no CP
    version: str
    tp: str | None = None  # repr(TPConfig); None = no Token Prepending

    def as_dict(self) -> dict:
        settings = dataclasses.asdict(self)
        if self.tp is None:
            del settings["tp"]  # the digests of settings without TP stay what they were before it existed
        return settings

    def digest(self) -> str:
        """A short hex digest of the settings: equal settings, equal digest."""
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:32]
