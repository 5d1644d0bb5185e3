"""Choose CP settings on STS-B dev, and only there: a grid over (layer, alpha, norm), a layer sweep,
and an ablation of the auxiliary prompt's wording.

Every setting of one search is computed in a single pass over the data (see `variants`), so
the paper's whole 5 x 5 x 2 grid costs a few plain passes, not fifty.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .config import CPConfig
from .encoder import CPEncoder
from .evaluation.data import Pairs, load_stsb
from .evaluation.metrics import paired_cosine, spearman
from .prompts import IRRELEVANT
from .variants import encode_variants

PAPER_LAYERS = (3, 4, 5, 6, 7)
PAPER_ALPHAS = (0.5, 1.0, 2.0, 3.0, 4.0)

# Auxiliary wordings from the paper's ablation, in the same frame as the default.
AUX_TEMPLATES = {
    "irrelevant": IRRELEVANT,
    "redundant": 'The redundant information of this sentence : "{sentence}" means in one word:"',
    "background": 'The background information of this sentence : "{sentence}" means in one word:"',
    "unimportant": 'The unimportant information of this sentence : "{sentence}" means in one word:"',
}


@dataclass
class SearchResult:
    """Spearman x100 on STS-B dev per setting; `None` in `settings` is the plain baseline."""

    settings: list[CPConfig | None]
    scores: list[float]
    labels: list[str] = field(default_factory=list)
    seconds: float = 0.0
    split: str = "STS-B dev"

    @property
    def baseline(self) -> float | None:
        return next((s for v, s in zip(self.settings, self.scores, strict=True) if v is None), None)

    @property
    def best(self) -> tuple[CPConfig | None, float]:
        i = int(np.argmax(self.scores))
        return self.settings[i], self.scores[i]

    def records(self) -> list[dict]:
        rows = []
        for label, setting, score in zip(self.labels, self.settings, self.scores, strict=True):
            row = {"label": label, "spearman": round(score, 4)}
            fields = asdict(setting) if setting else dict.fromkeys(asdict(CPConfig()), None) | {"norm": "none"}
            row.update(fields)
            rows.append(row)
        return rows


def grid_settings(
    layers: Sequence[int] = PAPER_LAYERS,
    alphas: Sequence[float] = PAPER_ALPHAS,
    norms: Sequence[str] = ("scale", "recover"),
    site: str = "heads",
    aux_template: str = IRRELEVANT,
) -> list[CPConfig | None]:
    """The baseline, NS at every (layer, alpha), and NR at every layer (NR has no alpha)."""
    settings: list[CPConfig | None] = [None]
    if "scale" in norms:
        settings += [CPConfig(layer, a, "scale", site, aux_template) for layer in layers for a in alphas]
    if "recover" in norms:
        settings += [CPConfig(layer, 1.0, "recover", site, aux_template) for layer in layers]
    return settings


def label(setting: CPConfig | None) -> str:
    if setting is None:
        return "baseline"
    if setting.norm == "recover":
        return f"NR l={setting.layer}"
    return f"NS l={setting.layer} a={setting.alpha:g}"


def score_settings(
    encoder: CPEncoder,
    pairs: Pairs,
    settings: Sequence[CPConfig | None],
    batch_size: int = 16,
    show_progress_bar: bool | None = None,
    labels: Sequence[str] | None = None,
) -> SearchResult:
    """Spearman x100 of every setting on `pairs`, all settings in one pass over the sentences."""
    started = time.perf_counter()
    unique = list(dict.fromkeys(pairs.sentences1 + pairs.sentences2))
    row = {s: i for i, s in enumerate(unique)}
    first, second = [row[s] for s in pairs.sentences1], [row[s] for s in pairs.sentences2]
    embeddings = encode_variants(encoder, unique, settings, batch_size, show_progress_bar)
    scores = [100 * spearman(paired_cosine(e[first], e[second]), pairs.scores) for e in embeddings]
    return SearchResult(
        list(settings), scores, list(labels or [label(s) for s in settings]), time.perf_counter() - started
    )


def search_grid(encoder: CPEncoder, data_dir: Path, batch_size: int = 16, **grid) -> SearchResult:
    """The paper's grid (by default; `grid` goes to `grid_settings`) on STS-B dev. Never reads a test split."""
    return score_settings(encoder, load_stsb(data_dir, "dev"), grid_settings(**grid), batch_size)


def sweep_layers(
    encoder: CPEncoder,
    data_dir: Path,
    alpha: float = 2.0,
    norm: str = "scale",
    site: str = "heads",
    batch_size: int = 16,
) -> SearchResult:
    """One setting per intervention layer, 1 .. the output layer, at a fixed alpha, on STS-B dev."""
    layers = range(1, encoder.output_layer + 1)
    settings = [None] + [CPConfig(layer, alpha, norm, site) for layer in layers]
    return score_settings(encoder, load_stsb(data_dir, "dev"), settings, batch_size)


def ablate_aux_templates(
    encoder: CPEncoder,
    data_dir: Path,
    layer: int,
    alpha: float,
    norm: str = "scale",
    extra: dict[str, str] | None = None,
    batch_size: int = 16,
) -> SearchResult:
    """The same (layer, alpha) with each auxiliary wording, on STS-B dev."""
    templates = {**AUX_TEMPLATES, **(extra or {})}
    settings = [None] + [CPConfig(layer, alpha, norm, aux_template=t) for t in templates.values()]
    return score_settings(encoder, load_stsb(data_dir, "dev"), settings, batch_size, labels=["baseline", *templates])
