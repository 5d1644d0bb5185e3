"""Readers for the SentEval data layout (and the raw STS-B release), read in place.

The data is not redistributable, so cpembed never ships or copies it: it reads the folder a
user points it at (`--data DIR` or `CPEMBED_DATA`), or the usual places.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputNotFoundError, InvalidValueError

SEARCH_PATHS = ("data/senteval/downstream", "../shared/data/senteval/downstream")
RAW_STSB_PATHS = ("data/stsb-raw", "../shared/data/stsb-raw")

STS_YEARS: dict[str, tuple[str, ...]] = {
    "STS12": ("MSRpar", "MSRvid", "SMTeuroparl", "surprise.OnWN", "surprise.SMTnews"),
    "STS13": ("FNWN", "headlines", "OnWN"),
    "STS14": ("deft-forum", "deft-news", "headlines", "images", "OnWN", "tweet-news"),
    "STS15": ("answers-forums", "answers-students", "belief", "headlines", "images"),
    "STS16": ("answer-answer", "headlines", "plagiarism", "postediting", "question-question"),
}


class DataNotFoundError(InputNotFoundError):
    """The evaluation data folder or one of its files is missing."""


@dataclass(frozen=True)
class Pairs:
    """Sentence pairs with gold similarity scores."""

    sentences1: list[str]
    sentences2: list[str]
    scores: np.ndarray  # float64, one per pair

    def __post_init__(self) -> None:
        if not len(self.sentences1) == len(self.sentences2) == len(self.scores):
            raise InvalidValueError("pairs and scores differ in length")

    def __len__(self) -> int:
        return len(self.scores)

    def sample(self, count: int, seed: int = 0) -> Pairs:
        """`count` of the pairs drawn without replacement, in a fixed order for a seed (all if fewer)."""
        if count >= len(self):
            return self
        keep = np.random.default_rng(seed).permutation(len(self))[:count]
        return Pairs([self.sentences1[i] for i in keep], [self.sentences2[i] for i in keep], self.scores[keep])

    @staticmethod
    def concatenate(parts: list[Pairs]) -> Pairs:
        return Pairs(
            [s for p in parts for s in p.sentences1],
            [s for p in parts for s in p.sentences2],
            np.concatenate([p.scores for p in parts]),
        )


def find_data_dir(data: str | os.PathLike | None = None) -> Path:
    """The SentEval `downstream/` folder: `data`, else `CPEMBED_DATA`, else the usual places."""
    return _find(
        data,
        "CPEMBED_DATA",
        SEARCH_PATHS,
        lambda c: (c / "STS").is_dir() or (c / "SICK").is_dir() or (c / "MR").is_dir(),
        "no SentEval data at {}: expected a SentEval 'downstream' folder (STS/, SICK/, MR/, ...). Get it with "
        "SentEval's data/downstream/get_transfer_data.bash and pass --data DIR or set CPEMBED_DATA.",
    )


def find_raw_stsb_dir(raw: str | os.PathLike | None = None) -> Path:
    """The raw STS Benchmark folder: `raw`, else `CPEMBED_RAW_DATA`, else the usual places."""
    return _find(
        raw,
        "CPEMBED_RAW_DATA",
        RAW_STSB_PATHS,
        lambda c: (c / "sts-dev.csv").is_file(),
        "no raw STS Benchmark at {}: expected sts-dev.csv and sts-test.csv as released (tab-separated, original "
        "casing; the 'stsbenchmark' folder of the STS Benchmark archive). Pass --raw-data DIR or set CPEMBED_RAW_DATA.",
    )


def _find(given, variable: str, usual: tuple[str, ...], holds_it, message: str) -> Path:
    """The folder given, else the one the environment names, else the first usual one that holds the data."""
    if given:
        candidates = [Path(given)]
    elif os.environ.get(variable):
        candidates = [Path(os.environ[variable])]
    else:
        candidates = [Path(p) for p in usual]
    for candidate in candidates:
        if holds_it(candidate):
            return candidate
    where = ", ".join(str(c) for c in candidates) or "none of the usual places"
    raise DataNotFoundError(message.replace("{}", where, 1))  # not format(): layouts name files as {dev,test}


def _read_lines(path: Path, encoding: str = "utf-8") -> list[str]:
    if not path.is_file():
        raise DataNotFoundError(f"missing data file {path}")
    # splitlines() also drops the CR of CRLF files (SICK test).
    return path.read_text(encoding=encoding).splitlines()


def _tokens(text: str) -> str:
    """SentEval splits on whitespace and the PromptEOL family joins with one space."""
    return " ".join(text.split())


def load_sts_subset(data_dir: Path, year: str, subset: str) -> Pairs:
    """One STS12-16 subset; pairs whose gold line is empty are unscored and left out, as SentEval does."""
    folder = data_dir / "STS" / f"{year}-en-test"
    inputs = _read_lines(folder / f"STS.input.{subset}.txt")
    gold = _read_lines(folder / f"STS.gs.{subset}.txt")
    if len(inputs) != len(gold):
        raise InvalidValueError(f"{year} {subset}: {len(inputs)} input lines but {len(gold)} gold lines")
    first, second, scores = [], [], []
    for line, score in zip(inputs, gold, strict=True):
        if score.strip() == "":
            continue
        a, b = line.split("\t")[:2]
        first.append(_tokens(a))
        second.append(_tokens(b))
        scores.append(float(score))
    return Pairs(first, second, np.array(scores))


def load_sts_year(data_dir: Path, year: str) -> dict[str, Pairs]:
    return {subset: load_sts_subset(data_dir, year, subset) for subset in STS_YEARS[year]}


def load_stsb(data_dir: Path, split: str) -> Pairs:
    """STS Benchmark train/dev/test: score in column 5, sentences in 6 and 7 (tab-separated)."""
    if split not in ("train", "dev", "test"):
        raise InvalidValueError(f"STS-B split must be train, dev or test, got {split!r}")
    return _read_stsb_file(data_dir / "STS" / "STSBenchmark" / f"sts-{split}.csv", _tokens)


def _read_stsb_file(path: Path, clean) -> Pairs:
    first, second, scores = [], [], []
    for line in _read_lines(path):
        # Some raw rows carry extra source columns: use the first seven. No CSV quoting: text has '"'.
        columns = line.split("\t")
        scores.append(float(columns[4]))
        first.append(clean(columns[5]))
        second.append(clean(columns[6]))
    return Pairs(first, second, np.array(scores))


def load_sick(data_dir: Path, split: str = "test") -> Pairs:
    """SICK relatedness: train, trial (its dev split) or test; each file has a header line."""
    names = {
        "train": "SICK_train.txt",
        "trial": "SICK_trial.txt",
        "dev": "SICK_trial.txt",
        "test": "SICK_test_annotated.txt",
    }
    if split not in names:
        raise InvalidValueError(f"SICK split must be one of {', '.join(names)}, got {split!r}")
    rows = [line.split("\t") for line in _read_lines(data_dir / "SICK" / names[split])[1:] if line.strip()]
    return Pairs([_tokens(r[1]) for r in rows], [_tokens(r[2]) for r in rows], np.array([float(r[3]) for r in rows]))


def load_raw_stsb(raw_dir: Path, split: str) -> Pairs:
    """The STS Benchmark as released: original casing and punctuation, untokenized."""
    if split not in ("dev", "test"):
        raise InvalidValueError(f"raw STS-B split must be dev or test, got {split!r}")
    return _read_stsb_file(raw_dir / f"sts-{split}.csv", str.strip)


@dataclass(frozen=True)
class Labeled:
    """Sentences (or sentence pairs, for MRPC) with integer labels."""

    sentences: list[str]
    labels: np.ndarray  # int64
    second: list[str] | None = None  # the other sentence of each pair


BINARY_TASKS = {
    # task: (positive file, negative file); SentEval reads these as Latin-1.
    "MR": ("MR/rt-polarity.pos", "MR/rt-polarity.neg"),
    "CR": ("CR/custrev.pos", "CR/custrev.neg"),
    "SUBJ": ("SUBJ/subj.objective", "SUBJ/subj.subjective"),
    "MPQA": ("MPQA/mpqa.pos", "MPQA/mpqa.neg"),
}
TREC_CLASSES = ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")


def load_binary(data_dir: Path, task: str) -> Labeled:
    positive, negative = BINARY_TASKS[task]
    pos = [_tokens(s) for s in _read_lines(data_dir / positive, "latin-1")]
    neg = [_tokens(s) for s in _read_lines(data_dir / negative, "latin-1")]
    return Labeled(pos + neg, np.array([1] * len(pos) + [0] * len(neg)))


def load_sst2(data_dir: Path, split: str) -> Labeled:
    """SST-2 train/dev/test: `sentence<TAB>label` lines."""
    rows = [line.rsplit("\t", 1) for line in _read_lines(data_dir / "SST" / "binary" / f"sentiment-{split}")]
    return Labeled([_tokens(r[0]) for r in rows], np.array([int(r[1]) for r in rows]))


def load_trec(data_dir: Path, split: str) -> Labeled:
    """TREC train (`train_5500.label`) or test (`TREC_10.label`), Latin-1, coarse classes."""
    name = {"train": "train_5500.label", "test": "TREC_10.label"}[split]
    sentences, labels = [], []
    for line in _read_lines(data_dir / "TREC" / name, "latin-1"):
        target, sample = line.strip().split(":", 1)
        sentences.append(_tokens(sample.split(" ", 1)[1]))
        labels.append(TREC_CLASSES.index(target))
    return Labeled(sentences, np.array(labels))


def load_mrpc(data_dir: Path, split: str) -> Labeled:
    """MRPC train/test pairs; the files start with a BOM and a header line."""
    path = data_dir / "MRPC" / f"msr_paraphrase_{split}.txt"
    rows = [line.split("\t") for line in _read_lines(path, "utf-8-sig")[1:] if line.strip()]
    return Labeled([_tokens(r[3]) for r in rows], np.array([int(r[0]) for r in rows]), [_tokens(r[4]) for r in rows])
