"""Unlabelled sentences from tuning splits only: what fits (centering, whitening) and
demonstrations are drawn from, so that nothing chosen with them has seen a test split.

Four sources of different kinds of text: STS-B train (captions, news, forums; SentEval's copy,
tokenized and lowercased), 20 Newsgroups train subject lines, SemEval-2015 PIT dev tweets and
SciFact's train claims (the last three as written, from the beyond-STS folder).
"""

from __future__ import annotations

import random
from pathlib import Path

from ..errors import InvalidValueError
from .beyond import _jsonl, _table
from .data import load_stsb

SOURCES = ("stsb-train", "20ng-train", "pit2015-dev", "scifact-train")
PER_SOURCE = 600  # what the packaged fits were made on: 2,400 sentences in all


def tuning_sources(data_dir: Path, beyond_root: Path) -> dict[str, list[str]]:
    """Each source's distinct sentences, in a fixed order."""
    train = load_stsb(data_dir, "train")
    root = Path(beyond_root)
    subjects = _table(root / "clustering" / "20ng-subjects" / "train.tsv", ("label", "text"))
    tweets = _table(root / "pair-classification" / "pit2015" / "dev.tsv", ("label", "sentence1", "sentence2"))
    found = {
        "stsb-train": train.sentences1 + train.sentences2,
        "20ng-train": [row[1] for row in subjects],
        "pit2015-dev": [text for row in tweets for text in row[1:]],
        "scifact-train": [claim["text"] for claim in _jsonl(root / "retrieval" / "scifact" / "queries-train.jsonl")],
    }
    return {name: sorted({s.strip() for s in sentences if s.strip()}) for name, sentences in found.items()}


def tuning_corpus(data_dir: Path, beyond_root: Path, per_source: int, seed: int = 0, sources=SOURCES) -> list[str]:
    """Up to `per_source` sentences drawn from each of `sources`, the same ones on every run."""
    if unknown := [s for s in sources if s not in SOURCES]:
        raise InvalidValueError(f"unknown tuning source(s) {', '.join(unknown)}: choose from {', '.join(SOURCES)}")
    pools = tuning_sources(data_dir, beyond_root)
    picked: dict[str, None] = {}
    for name in sources:
        rng = random.Random(f"{seed}:{name}")  # one source's draw does not depend on the others
        picked.update(dict.fromkeys(rng.sample(pools[name], min(per_source, len(pools[name])))))
    return list(picked)
