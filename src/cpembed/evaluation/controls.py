"""Controls: is CP's gain the contrast's? Each replaces CP's patch at the same layer and site.

| kind    | the last token's vector at the site becomes          | auxiliary pass |
|---------|------------------------------------------------------|----------------|
| zero    | 0                                                    | none           |
| scale   | alpha * v_nor                                        | none           |
| shuffle | NS or NR with the v_aux of another sentence (`partners`) | per sentence |
| mean    | NS or NR with one fixed v_aux: the mean over REFERENCE_SENTENCES | none |

They are research instruments, not settings of CP: `CPConfig` does not know them. A `Control`
becomes a `steering.Steering`, a `replace` function the engine hands to `steering.patch`.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import Literal

import torch

from ..config import CPConfig
from ..engine import auxiliary_vectors
from ..errors import InvalidValueError
from ..prompts import Template, fit_sentences, preprocess
from ..steering import Steering, steer

Kind = Literal["zero", "scale", "shuffle", "mean"]
KINDS: tuple[Kind, ...] = ("zero", "scale", "shuffle", "mean")
PARTNER = "partner"  # the aux_sentences name under which the shuffle control's partners are passed

# Plain, varied sentences of everyday length and topic. Any fixed set would do; this one is ours,
# short, and ships with the package, so `mean` needs no data.
REFERENCE_SENTENCES = (
    "A man is playing a guitar on the stage.",
    "The children are building a sandcastle at the beach.",
    "Stock markets fell sharply after the announcement.",
    "She poured hot water into the teapot.",
    "The committee will meet again next Tuesday.",
    "A small dog is chasing a red ball across the park.",
    "Heavy rain caused flooding in several towns.",
    "He forgot his keys at the office.",
    "The new phone has a larger battery and a better camera.",
    "Two women are talking in a crowded cafe.",
    "The museum is closed on Mondays.",
    "Scientists found water ice near the moon's south pole.",
    "A chef is slicing onions in a busy kitchen.",
    "The train to the airport was delayed by an hour.",
    "I don't think that answer is correct.",
    "The government announced new rules for electric cars.",
    "A cat is sleeping on a warm windowsill.",
    "They planted tomatoes and beans in the garden.",
    "The match ended in a draw after extra time.",
    "Please send me the report before Friday.",
    "A boy is riding a bicycle down a steep hill.",
    "The bridge was built more than a century ago.",
    "Prices of fresh vegetables rose again this month.",
    "She won the prize for her first novel.",
    "A group of people are hiking up a mountain trail.",
    "The software update fixed several security problems.",
    "Nobody expected the concert to sell out so quickly.",
    "A woman is cutting a piece of paper with scissors.",
    "The river froze during the coldest week of the year.",
    "Our flight was cancelled because of the storm.",
    "The doctor advised him to rest for a few days.",
    "A bird is sitting on a branch outside the window.",
)


def partners(texts: list[str]) -> list[int]:
    """For each text, the index of the next text in input order (cyclically) that differs from it.

    Deterministic, and never a text's own copy, so a sentence is never contrasted with its own
    auxiliary vector.
    """
    if not texts:
        return []
    if len(set(texts)) < 2:
        raise InvalidValueError("the shuffle control needs at least two different sentences in the input")
    n = len(texts)
    # Over the input written twice, so the search wraps around; a run of equal texts shares its end.
    following = [2 * n] * (2 * n)
    for i in range(2 * n - 2, -1, -1):
        following[i] = i + 1 if texts[(i + 1) % n] != texts[i % n] else following[i + 1]
    return [following[i] % n for i in range(n)]


def partner_texts(texts: list[str]) -> list[str]:
    """Each text's shuffle partner itself (see `partners`)."""
    return [texts[i] for i in partners(texts)]


@dataclass(frozen=True)
class Control:
    """A control of CP at `cp`'s layer and site; `cp`'s alpha and norm apply to shuffle and mean as to CP."""

    kind: Kind
    cp: CPConfig

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidValueError(f"a control is one of {', '.join(KINDS)}, got {self.kind!r}")

    @property
    def label(self) -> str:
        """ "zero l=5", "scale l=5 a=2", "shuffle NS l=5 a=2", "mean NR l=5"."""
        cp = self.cp
        if self.kind == "zero":
            return f"zero l={cp.layer}"
        if self.kind == "scale":
            return f"scale l={cp.layer} a={cp.alpha:g}"
        contrast = f"NR l={cp.layer}" if cp.norm == "recover" else f"NS l={cp.layer} a={cp.alpha:g}"
        return f"{self.kind} {contrast}"

    def fields(self) -> dict:
        """The control as a search record's columns: CP's fields and the kind of intervention."""
        return asdict(self.cp) | {"intervention": self.kind}

    def steering(self, encoder) -> Steering:
        """What the engine patches for this control on `encoder`'s model (mean computes its vector here)."""
        cp = self.cp
        if self.kind == "zero":
            return Steering(self.label, cp.layer, cp.site, _zero)
        if self.kind == "scale":
            return Steering(self.label, cp.layer, cp.site, functools.partial(_scaled, alpha=cp.alpha))
        contrast = functools.partial(steer, norm=cp.norm, alpha=cp.alpha)
        if self.kind == "shuffle":
            return Steering(self.label, cp.layer, cp.site, contrast, cp.aux_template, aux_source=PARTNER)
        fixed = reference_aux_vector(encoder, cp)
        return Steering(self.label, cp.layer, cp.site, functools.partial(_against, fixed=fixed, contrast=contrast))


def _zero(v_nor: torch.Tensor, _v_aux) -> torch.Tensor:
    return torch.zeros_like(v_nor, dtype=torch.float32)


def _scaled(v_nor: torch.Tensor, _v_aux, alpha: float) -> torch.Tensor:
    return alpha * v_nor.float()


def _against(v_nor: torch.Tensor, _v_aux, fixed: torch.Tensor, contrast) -> torch.Tensor:
    return contrast(v_nor, fixed.expand_as(v_nor))


def reference_aux_vector(encoder, cp: CPConfig) -> torch.Tensor:
    """The mean control's fixed v_aux: the mean auxiliary vector of REFERENCE_SENTENCES, `(1, width)`
    float32, one sentence at a time so it is exact and independent of any batch."""
    template = Template(cp.aux_template)
    vectors = []
    for sentence in REFERENCE_SENTENCES:
        fitted = fit_sentences(encoder.lm.tokenizer, [template], [preprocess(sentence)], encoder.max_length)
        vectors.append(auxiliary_vectors(encoder.lm, cp.aux_template, cp.site, [cp.layer], fitted)[cp.layer].float())
    return torch.cat(vectors).mean(0, keepdim=True)


def encode_with_controls(
    encoder, sentences: list[str], settings, batch_size: int = 16, show_progress_bar=None, cache=None
):
    """One float32 `(n, d)` array per setting (a `CPConfig`, a `Control`, or None for the baseline),
    from one pass over `sentences`, through `cache` when one is given (so a stopped run resumes).
    The shuffle control's partners are drawn from the whole of `sentences`."""

    steerings = [s.steering(encoder) if isinstance(s, Control) else s for s in settings]
    shuffles = any(isinstance(s, Control) and s.kind == "shuffle" for s in settings)
    aux = {PARTNER: partner_texts([preprocess(s) for s in sentences])} if shuffles else None
    return encoder.encode_settings(
        sentences, steerings, batch_size=batch_size, show_progress_bar=show_progress_bar, aux_sentences=aux, cache=cache
    )
