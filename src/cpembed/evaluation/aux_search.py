"""A better auxiliary prompt than the paper's "irrelevant information" one, searched on dev splits only.

The candidates come from a small grammar: what the auxiliary prompt asks for (`ASKS`) in each of
a few frames that place the sentence (`FRAMES`), plus wordings written by hand (`HAND_WRITTEN`).
The paper's prompt is the first ask in the first frame. The search has two stages, each one pass
over the dev sentences (every candidate's settings share the normal prompt; each candidate adds
its own auxiliary pass, truncated at the deepest layer searched):

1. screen: every candidate with NR at each searched layer (NR has no alpha to tune);
2. grid: the paper's grid (NS at every layer and alpha, NR at every layer) for the `top` best
   candidates of the screen and for the paper's prompt.

Settings are ranked by the mean of SentEval's STS-B dev and raw STS-B dev; the best candidate's
best setting is compared with the paper prompt's best setting on raw STS-B dev with a 95%
paired-bootstrap interval. `check_on_beyond_dev` then compares the two (and the plain baseline)
on the beyond-STS dev splits, SciFact's train queries and stsb-multi-mt dev: a check of whether
the winner carries to other jobs and languages, which chooses nothing. No test split is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import CPConfig
from ..encoder import CPEncoder
from ..errors import InvalidValueError
from ..prompts import IRRELEVANT, Template
from .search import PAPER_ALPHAS, PAPER_LAYERS, RAW_DEV, SearchResult, dev_splits, grid_settings, label, score_settings

# What the auxiliary prompt asks the model to put in one word: information a sentence embedding
# should not carry (the paper's first four), or the sentence's form rather than its meaning.
ASKS = (
    "irrelevant information",
    "redundant information",
    "background information",
    "unimportant information",
    "stop words",
    "writing style",
    "syntax",
    "tone",
    "filler words",
)
# Where the sentence sits; "{ask}" and "{sentence}" are filled in. The first is the paper's frame.
FRAMES = {
    "of": 'The {ask} of this sentence : "{sentence}" means in one word:"',
    "after": 'This sentence : "{sentence}" , its {ask} means in one word:"',
    "ignoring": 'Ignoring its meaning , the {ask} of this sentence : "{sentence}" in one word:"',
}
HAND_WRITTEN = {
    "surface": 'The words of this sentence : "{sentence}" , not what it means, in one word:"',
    "generic": 'What any sentence like this one : "{sentence}" has in common, in one word:"',
    "noise": 'Everything in this sentence : "{sentence}" except its meaning, in one word:"',
}


def aux_candidates(asks=ASKS, frames=FRAMES, hand_written=HAND_WRITTEN) -> dict[str, str]:
    """Name -> auxiliary template: each ask in each frame ("stop words / of"), then the hand-written ones."""
    candidates = {f"{ask} / {frame}": text.replace("{ask}", ask) for frame, text in frames.items() for ask in asks} | {
        f"hand: {name}": text for name, text in hand_written.items()
    }
    for text in candidates.values():
        Template(text)  # exactly one {sentence} each, or an error that shows the template
    if IRRELEVANT not in candidates.values():
        raise InvalidValueError("the candidates must include the paper's auxiliary prompt, to compare against")
    return candidates


@dataclass
class AuxSearch:
    """Both stages' results, and the best candidate's best setting against the paper prompt's."""

    screen: SearchResult
    grid: SearchResult
    best: CPConfig | None
    paper_best: CPConfig | None
    best_name: str
    interval: tuple[float, float] | None  # raw STS-B dev: best minus paper_best, 95%

    def records(self) -> dict:
        return {
            "screen": self.screen.records(),
            "grid": self.grid.records(),
            "best": {"candidate": self.best_name, "setting": label(self.best), "aux_template": _aux(self.best)},
            "paper_best": label(self.paper_best),
            "raw_dev_interval": self.interval,
            "seconds": self.screen.seconds + self.grid.seconds,
        }


def search_aux_prompts(
    encoder: CPEncoder,
    data_dir: Path | None,
    raw_dir: Path | None = None,
    candidates: dict[str, str] | None = None,
    layers=PAPER_LAYERS,
    alphas=PAPER_ALPHAS,
    top: int = 3,
    site: str = "heads",
    batch_size: int = 16,
    cache=None,
) -> AuxSearch:
    """The two-stage search on SentEval STS-B dev and raw STS-B dev (never a test split)."""
    candidates = candidates or aux_candidates()
    if top < 1 or len(candidates) < 2:
        raise InvalidValueError("the search needs top >= 1 and at least one candidate besides the paper's prompt")
    names = {text: name for name, text in candidates.items()}
    splits = dev_splits(data_dir, "mean", raw_dir)
    screen_settings = [None] + [
        CPConfig(layer, 1.0, "recover", site, t) for t in candidates.values() for layer in layers
    ]
    screen = score_settings(
        encoder, splits, screen_settings, batch_size, labels=[_name(s, names) for s in screen_settings], cache=cache
    )
    best_score: dict[str, float] = {}
    for setting, score in zip(screen.settings[1:], screen.scores[1:], strict=True):
        best_score[setting.aux_template] = max(score, best_score.get(setting.aux_template, float("-inf")))
    finalists = [IRRELEVANT] + [t for t in sorted(best_score, key=best_score.get, reverse=True) if t != IRRELEVANT]
    finalists = finalists[: top + 1]
    grid = [None] + [s for t in finalists for s in grid_settings(layers, alphas, site=site, aux_template=t)[1:]]
    result = score_settings(encoder, splits, grid, batch_size, labels=[_name(s, names) for s in grid], cache=cache)
    ranked = sorted(zip(result.scores, range(len(grid)), strict=True), reverse=True)
    best = next(grid[i] for _, i in ranked if grid[i] is not None and grid[i].aux_template != IRRELEVANT)
    paper_best = next(grid[i] for _, i in ranked if grid[i] is not None and grid[i].aux_template == IRRELEVANT)
    interval = result.interval(RAW_DEV, best, against=paper_best)
    return AuxSearch(screen, result, best, paper_best, names[best.aux_template], interval)


def _name(setting, names: dict[str, str]) -> str:
    return "baseline" if setting is None else f"{names[setting.aux_template]}: {label(setting)}"


def _aux(setting) -> str | None:
    return None if setting is None else setting.aux_template


@dataclass
class BeyondDevCheck:
    """The search's winner against the paper prompt's best on the beyond-STS dev splits."""

    settings: dict  # the two settings compared, by label, and the winner's auxiliary template
    tasks: dict[str, dict]  # dev split -> baseline, paper, best, best - paper, interval

    def records(self) -> dict:
        return {"settings": self.settings, "tasks": self.tasks}


def check_on_beyond_dev(
    encoder: CPEncoder,
    root: Path,
    paper_best: CPConfig,
    best: CPConfig,
    batch_size: int = 16,
    cache=None,
    resamples: int = 2000,
) -> BeyondDevCheck:
    """The plain baseline, the paper prompt's best setting and the search's best on SciFact's train
    queries over the whole corpus (nDCG@10) and on stsb-multi-mt dev in every language (the mean
    Spearman), with 95% paired-bootstrap intervals of best minus paper (over queries; over source
    pairs, the same in every language). Both are dev splits; the check chooses nothing."""
    from . import beyond
    from .metrics import paired_cosine, spearman
    from .sts import precomputed_embed

    settings = [None, paper_best, best]

    def embed_all(texts: list[str]) -> list:
        unique = list(dict.fromkeys(texts))
        return [
            precomputed_embed(unique, v)
            for v in encoder.encode_settings(unique, settings, batch_size=batch_size, cache=cache)
        ]

    # Both splits load (and the languages' pairs are checked) before the hour of encoding.
    scifact = beyond.load_scifact(root, "train")
    pairs = {lang: beyond.load_stsb_multi(root, lang, "dev") for lang in beyond.LANGUAGES}
    gold = pairs["en"].scores
    if not all(np.array_equal(p.scores, gold) for p in pairs.values()):
        raise InvalidValueError("stsb-multi-mt dev holds other pairs in some language; the interval needs one set")
    found = [
        beyond.evaluate_retrieval(e, e, scifact)
        for e in embed_all([*scifact.queries.values(), *scifact.corpus.values()])
    ]
    per_query = [100 * np.asarray(r["per_query"]["ndcg@10"]) for r in found]
    retrieval = _compared([r["ndcg@10"] for r in found], beyond.paired_interval(np.mean, *per_query[1:], resamples))

    embeds = embed_all([s for p in pairs.values() for s in (*p.sentences1, *p.sentences2)])
    cosines = [{lang: paired_cosine(e(p.sentences1), e(p.sentences2)) for lang, p in pairs.items()} for e in embeds]
    means = [float(np.mean([100 * spearman(c[lang], p.scores) for lang, p in pairs.items()])) for c in cosines]
    interval = beyond.multilingual_intervals(gold, cosines[1], cosines[2], resamples)["mean"]
    return BeyondDevCheck(
        settings={"paper": label(paper_best), "best": label(best), "best_aux_template": best.aux_template},
        tasks={"SciFact train nDCG@10": retrieval, "stsb-multi-mt dev mean Spearman": _compared(means, interval)},
    )


def _compared(scores: list[float], interval: tuple[float, float]) -> dict:
    baseline, paper, best = scores
    return {"baseline": baseline, "paper": paper, "best": best, "best - paper": best - paper, "interval": interval}
