"""A tiny SentEval-layout folder written by the tests, with the real files' awkward encodings."""

from __future__ import annotations

from pathlib import Path

from cpembed.evaluation.data import STS_YEARS

WORDS = [
    "a man plays a guitar .",
    "a woman cuts an onion .",
    "two dogs run on the beach .",
    "the market fell sharply .",
    "a child reads a book .",
    "a cat sleeps on the sofa .",
]


def _pair(i: int) -> tuple[str, str]:
    return WORDS[i % len(WORDS)], WORDS[(i * 5 + 1) % len(WORDS)]


def write_senteval(root: Path) -> Path:
    """Every STS subset has 3 scored pairs and one unscored (empty gold line); STS-B 6 pairs, SICK 4."""
    for year, subsets in STS_YEARS.items():
        folder = root / "STS" / f"{year}-en-test"
        folder.mkdir(parents=True)
        for subset in subsets:
            pairs = [_pair(i) for i in range(4)]
            (folder / f"STS.input.{subset}.txt").write_text("".join(f"{a}\t{b}\n" for a, b in pairs), encoding="utf-8")
            (folder / f"STS.gs.{subset}.txt").write_text("4.0\n\n1.5\n3.25\n", encoding="utf-8")
    stsb = root / "STS" / "STSBenchmark"
    stsb.mkdir(parents=True)
    for split in ("train", "dev", "test"):
        # Six distinct pairs with distinct scores, so rank correlations have no accidental ties.
        pairs = [(WORDS[i], WORDS[(i + 1) % len(WORDS)]) for i in range(len(WORDS))]
        rows = [
            f"main-captions\tMSRvid\t2012{split}\t{i:04d}\t{(i * 7) % 6 + 0.5:.3f}\t{a}\t{b}"
            for i, (a, b) in enumerate(pairs)
        ]
        (stsb / f"sts-{split}.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    sick = root / "SICK"
    sick.mkdir()
    header = "pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment"
    rows = [f"{i}\t{a}\t{b}\t{1 + i * 0.9:.1f}\tNEUTRAL" for i, (a, b) in enumerate(_pair(j) for j in range(4))]
    # Only the test file has CRLF line endings, as in the real data.
    (sick / "SICK_test_annotated.txt").write_bytes(("\r\n".join([header, *rows]) + "\r\n").encode())
    for name in ("SICK_train.txt", "SICK_trial.txt"):
        (sick / name).write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return root


def write_raw_stsb(root: Path) -> Path:
    """Raw STS-B rows: original casing, a '"' in the text, and a row with extra trailing columns."""
    root.mkdir(parents=True)
    rows = [
        'main-news\theadlines\t2015\t0001\t4.200\tA man plays the "guitar".\tSomeone plays a guitar.',
        "main-news\theadlines\t2015\t0002\t0.400\tStocks fell on Monday.\tA cat sleeps.\tsource-a\tsource-b",
        "main-captions\tMSRvid\t2012test\t0003\t2.000\tA woman cuts an onion.\tA woman is cooking.",
    ]
    for split in ("dev", "test"):
        (root / f"sts-{split}.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def _sentiment(i: int, positive: bool) -> str:
    word = "good" if positive else "bad"
    return f"the film number {i} was {word} and the cast was {word} ."


def write_transfer(root: Path) -> Path:
    """Small transfer-task files: Latin-1 binary tasks and TREC train, SST-2 splits, MRPC with a BOM."""
    for positive_file, negative_file in (
        ("MR/rt-polarity.pos", "MR/rt-polarity.neg"),
        ("CR/custrev.pos", "CR/custrev.neg"),
        ("SUBJ/subj.objective", "SUBJ/subj.subjective"),
        ("MPQA/mpqa.pos", "MPQA/mpqa.neg"),
    ):
        (root / positive_file).parent.mkdir(parents=True, exist_ok=True)
        pos = [_sentiment(i, True) for i in range(30)] + ["un caf\u00e9 good ."]  # a Latin-1 byte
        (root / positive_file).write_bytes("\n".join(pos).encode("latin-1") + b"\n")
        (root / negative_file).write_bytes("\n".join(_sentiment(i, False) for i in range(30)).encode("latin-1") + b"\n")
    sst = root / "SST" / "binary"
    sst.mkdir(parents=True)
    for split, n in (("train", 40), ("dev", 10), ("test", 10)):
        lines = [f"{_sentiment(i, i % 2 == 0)} \t{int(i % 2 == 0)}" for i in range(n)]
        (sst / f"sentiment-{split}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    trec = root / "TREC"
    trec.mkdir()
    questions = {
        "HUM:ind": "who wrote the caf\u00e9 song ?",
        "LOC:city": "where is the big city ?",
        "NUM:date": "when did the war end ?",
    }
    for name, n in (("train_5500.label", 30), ("TREC_10.label", 9)):
        lines = [
            f"{label} {text.replace('the', f'the {i}')}" for i in range(n // 3) for label, text in questions.items()
        ]
        (trec / name).write_bytes("\n".join(lines).encode("latin-1") + b"\n")
    mrpc = root / "MRPC"
    mrpc.mkdir()
    header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"
    for split, n in (("train", 40), ("test", 20)):
        rows = [
            f"{int(i % 2 == 0)}\t{i}\t{i + 1000}\t{_sentiment(i, True)}\t"
            + (_sentiment(i, True) if i % 2 == 0 else _sentiment(i + 7, False))
            for i in range(n)
        ]
        (mrpc / f"msr_paraphrase_{split}.txt").write_text(
            "\ufeff" + "\n".join([header, *rows]) + "\n", encoding="utf-8"
        )
    return root
