"""Choose CP settings on STS-B dev, and only there: a grid over (layer, alpha, norm), a layer sweep,
and an ablation of the auxiliary prompt's wording.

Every setting of one search is computed in a single pass over the data (engine.py: one copy
of the last token per setting), so the paper's whole 5 x 5 x 2 grid costs a few plain passes,
not fifty; with a cache, a stopped search resumes where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..cache import EmbeddingCache
from ..config import CPConfig
from ..encoder import CPEncoder
from ..errors import InvalidValueError
from ..prompts import IRRELEVANT
from .controls import Control, encode_with_controls
from .data import Pairs, find_raw_stsb_dir, load_raw_stsb, load_stsb
from .metrics import bootstrap_spearman_difference, paired_cosine, spearman

Setting = CPConfig | Control | None

SENTEVAL_DEV, RAW_DEV = "STS-B dev", "STS-B raw dev"
# What a search ranks settings by: SentEval's (tokenized, lowercased) STS-B dev, the raw release's
# dev split (cased, untokenized, as users' text is), or the mean of the two.
RANKINGS = ("senteval", "raw", "mean")
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
    """Spearman x100 per setting on the dev split(s); `None` in `settings` is the plain baseline.

    `scores` rank the settings (one split's, or the mean of several); `splits` keeps each split's.
    `similarities[split]` holds each setting's cosine per pair, `gold[split]` the pairs' gold
    scores: what `intervals` resamples.
    """

    settings: list[Setting]
    scores: list[float]
    labels: list[str] = field(default_factory=list)
    seconds: float = 0.0
    split: str = SENTEVAL_DEV
    splits: dict[str, list[float]] = field(default_factory=dict)
    similarities: dict[str, list[np.ndarray]] = field(default_factory=dict, repr=False)
    gold: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def intervals(
        self, split: str, resamples: int = 2000, seed: int = 0, against: Setting = None
    ) -> list[tuple[float, float] | None]:
        """Per setting, `interval` against the setting `against` (the baseline by default) on
        `split`; None for `against` itself."""
        return [
            None if setting == against else self.interval(split, setting, against, resamples, seed)
            for setting in self.settings
        ]

    def interval(
        self,
        split: str,
        setting: Setting,
        against: Setting = None,
        resamples: int = 2000,
        seed: int = 0,
    ) -> tuple[float, float]:
        """A 95% paired-bootstrap interval of `setting`'s Spearman x100 minus that of `against`
        (the baseline by default) on `split`."""
        for wanted in (setting, against):
            if wanted not in self.settings:
                what = "the baseline: include None" if wanted is None else f"{label(wanted)}: include it"
                raise InvalidValueError(f"intervals need {what} among the settings")
        sims, gold = self.similarities[split], self.gold[split]
        base, other = sims[self.settings.index(against)], sims[self.settings.index(setting)]
        return bootstrap_spearman_difference(gold, base, other, resamples, seed=seed)

    @property
    def baseline(self) -> float | None:
        return next((s for v, s in zip(self.settings, self.scores, strict=True) if v is None), None)

    @property
    def best(self) -> tuple[Setting, float]:
        i = int(np.argmax(self.scores))
        return self.settings[i], self.scores[i]

    def records(self) -> list[dict]:
        rows = []
        for i, (label, setting, score) in enumerate(zip(self.labels, self.settings, self.scores, strict=True)):
            row = {"label": label, "spearman": round(score, 4)}
            if len(self.splits) > 1:
                row.update({name: round(values[i], 4) for name, values in self.splits.items()})
            if setting is None:
                row.update(dict.fromkeys(asdict(CPConfig()), None) | {"norm": "none"})
            else:
                row.update(setting.fields() if isinstance(setting, Control) else asdict(setting))
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


def label(setting: Setting) -> str:
    """A short name: "baseline", "NS l=5 a=2", "NR l=5", or a control's ("zero l=5", "shuffle NS l=5 a=2")."""
    if setting is None:
        return "baseline"
    if isinstance(setting, Control):
        return setting.label
    return f"NR l={setting.layer}" if setting.norm == "recover" else f"NS l={setting.layer} a={setting.alpha:g}"


def control_settings(layer: int, alpha: float, site: str = "heads", aux_template: str = IRRELEVANT) -> list[Setting]:
    """CP at one (layer, alpha) beside every control of it: is the gain the contrast's?

    The baseline; CP-NS and CP-NR; zero; scale (alpha * v_nor); NS and NR with another sentence's
    auxiliary vector (shuffle) and with a fixed mean one (mean).
    """
    ns, nr = (CPConfig(layer, alpha, norm, site, aux_template) for norm in ("scale", "recover"))
    return [
        None,
        ns,
        nr,
        Control("zero", ns),
        Control("scale", ns),
        Control("shuffle", ns),
        Control("shuffle", nr),
        Control("mean", ns),
        Control("mean", nr),
    ]


def score_settings(
    encoder: CPEncoder,
    pairs: Pairs | dict[str, Pairs],
    settings: Sequence[Setting],
    batch_size: int = 16,
    show_progress_bar: bool | None = None,
    labels: Sequence[str] | None = None,
    cache: EmbeddingCache | None = None,
) -> SearchResult:
    """Spearman x100 of every setting on `pairs` (or on each of several named splits, ranked by
    their mean), all settings and splits in one pass over the sentences. With `cache`, a stopped
    search resumes where it stopped."""
    started = time.perf_counter()
    named = pairs if isinstance(pairs, dict) else {SENTEVAL_DEV: pairs}
    unique = list(dict.fromkeys(s for p in named.values() for s in p.sentences1 + p.sentences2))
    row = {s: i for i, s in enumerate(unique)}
    embeddings = encode_with_controls(encoder, unique, settings, batch_size, show_progress_bar, cache)
    splits, similarities = {}, {}
    for name, split in named.items():
        first, second = [row[s] for s in split.sentences1], [row[s] for s in split.sentences2]
        similarities[name] = [paired_cosine(e[first], e[second]) for e in embeddings]
        splits[name] = [100 * spearman(sims, split.scores) for sims in similarities[name]]
    scores = list(np.mean(list(splits.values()), axis=0))
    return SearchResult(
        list(settings),
        [float(x) for x in scores],
        list(labels or [label(s) for s in settings]),
        time.perf_counter() - started,
        split=" + ".join(named) if len(named) == 1 else f"mean of {' and '.join(named)}",
        splits=splits,
        similarities=similarities,
        gold={name: np.asarray(split.scores) for name, split in named.items()},
    )


def dev_splits(data_dir: Path | None, rank_by: str = "senteval", raw_dir: Path | None = None) -> dict[str, Pairs]:
    """The dev split(s) a ranking needs: SentEval's STS-B dev, the raw release's, or both (mean, raw).

    Ranking by raw dev still scores SentEval dev beside it, so the two can be compared.
    """
    if rank_by not in RANKINGS:
        raise InvalidValueError(f"rank_by must be one of {', '.join(RANKINGS)}, got {rank_by!r}")
    splits = {}
    if rank_by != "raw" or data_dir is not None:
        splits[SENTEVAL_DEV] = load_stsb(data_dir, "dev")
    if rank_by != "senteval":
        splits[RAW_DEV] = load_raw_stsb(find_raw_stsb_dir(raw_dir), "dev")
    return splits


def _ranked(result: SearchResult, rank_by: str) -> SearchResult:
    """Rank by one split when asked to, keeping every split's scores."""
    if rank_by == "raw" and len(result.splits) > 1:
        result.scores, result.split = list(result.splits[RAW_DEV]), RAW_DEV
    return result


def compare_controls(
    encoder: CPEncoder,
    data_dir: Path | None,
    layer: int,
    alpha: float,
    batch_size: int = 16,
    site: str = "heads",
    aux_template: str = IRRELEVANT,
    rank_by: str = "senteval",
    raw_dir: Path | None = None,
) -> SearchResult:
    """`control_settings(layer, alpha)` on dev split(s). Never reads a test split."""
    splits = dev_splits(data_dir, rank_by, raw_dir)
    settings = control_settings(layer, alpha, site, aux_template)
    return _ranked(score_settings(encoder, splits, settings, batch_size), rank_by)


def sweep_layers(
    encoder: CPEncoder,
    data_dir: Path,
    alpha: float = 2.0,
    norm: str = "scale",
    site: str = "heads",
    batch_size: int = 16,
    show_progress_bar: bool | None = None,
    aux_template: str = IRRELEVANT,
    cache: EmbeddingCache | None = None,
) -> SearchResult:
    """One setting per intervention layer, 1 .. the output layer, at a fixed alpha, on STS-B dev."""
    layers = range(1, encoder.output_layer + 1)
    settings = [None] + [CPConfig(layer, alpha, norm, site, aux_template) for layer in layers]
    pairs = load_stsb(data_dir, "dev")
    return score_settings(encoder, pairs, settings, batch_size, show_progress_bar, cache=cache)


def ablate_aux_templates(
    encoder: CPEncoder,
    data_dir: Path,
    layer: int,
    alpha: float,
    norm: str = "scale",
    extra: dict[str, str] | None = None,
    batch_size: int = 16,
    show_progress_bar: bool | None = None,
    site: str = "heads",
    cache: EmbeddingCache | None = None,
) -> SearchResult:
    """The same (layer, alpha, site) with each auxiliary wording, on STS-B dev."""
    templates = {**AUX_TEMPLATES, **(extra or {})}
    settings = [None] + [CPConfig(layer, alpha, norm, site, aux_template=t) for t in templates.values()]
    pairs = load_stsb(data_dir, "dev")
    labels = ["baseline", *templates]
    return score_settings(encoder, pairs, settings, batch_size, show_progress_bar, labels, cache)
