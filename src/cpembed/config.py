"""CP settings as data, and the table of default settings per (model, prompt)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from .prompts import IRRELEVANT, Template
from .sites import SITES

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
        if isinstance(self.layer, bool) or not isinstance(self.layer, int) or self.layer < 1:
            raise ValueError(f"CP layer must be an integer >= 1 (1-based, as in the paper), got {self.layer!r}")
        if not isinstance(self.alpha, (int, float)) or not math.isfinite(self.alpha) or self.alpha <= 0:
            raise ValueError(f"alpha must be a finite number > 0, got {self.alpha!r}")
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {self.norm!r}")
        if self.site not in SITES:
            raise ValueError(f"site must be one of {', '.join(SITES)}, got {self.site!r}")
        Template(self.aux_template)  # validates the placeholder

    def __repr__(self) -> str:
        aux = "..." if self.aux_template == IRRELEVANT else repr(self.aux_template)
        return (
            f"CPConfig(layer={self.layer}, alpha={self.alpha}, norm={self.norm!r}, "
            f"site={self.site!r}, aux_template={aux})"
        )


# Default CP settings, keyed by (model, prompt); "*" matches any model. Until a model's
# settings are searched on STS-B dev, these are the paper's LLaMA2-7B values (SPEC section 2):
# PromptEOL l=5, alpha=2; Pretended CoT, Knowledge (and so CK) l=7, alpha=3.
DEFAULT_CP: dict[tuple[str, str], CPConfig] = {
    ("*", "prompteol"): CPConfig(layer=5, alpha=2.0),
    ("*", "cot"): CPConfig(layer=7, alpha=3.0),
    ("*", "knowledge"): CPConfig(layer=7, alpha=3.0),
    ("*", "ck"): CPConfig(layer=7, alpha=3.0),
    ("*", "custom"): CPConfig(layer=5, alpha=2.0),
}


def default_cp(model: str, prompt: str) -> CPConfig:
    """The default CP settings for a model (built-in name or path) and a prompt name."""
    return DEFAULT_CP.get((model, prompt)) or DEFAULT_CP[("*", prompt)]
