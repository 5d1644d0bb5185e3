"""A tiny beyond-STS folder written by the tests, in the real files' formats and with their awkward bits.

Texts carry a U+2028 or U+0085 inside them (str.splitlines() would cut the line there), one SciFact
document has no title, one query has no qrels (the loader drops it) and one qrel is graded 2.
"""

from __future__ import annotations

import json
from pathlib import Path

from cpembed.evaluation.beyond import LANGUAGES

# doc id -> (title, text)
CORPUS = {
    "11": ("Aspirin and the heart", "aspirin lowers the risk of heart attack in adults"),
    "12": ("", "vitamin d supplements do not prevent bone fractures"),
    "13": ("Sleep", "short sleep raises blood pressure\u2028in teenagers"),
    "14": ("Coffee", "coffee drinking is linked to less liver disease"),
    "15": ("Exercise", "regular exercise improves memory in older people"),
}
QUERIES = {
    "test": {
        "1": "aspirin lowers heart attack risk",
        "2": "vitamin d supplements prevent fractures",
        "3": "coffee and liver disease",
        "4": "a claim nobody judged",  # no qrels: dropped
    },
    "train": {"7": "exercise improves memory", "8": "sleep and blood pressure"},
}
QRELS = {
    "test": [("1", "11", 1), ("2", "12", 1), ("3", "14", 2), ("3", "11", 1)],
    "train": [("7", "15", 1), ("8", "13", 1)],
}

WIKIQA = {
    "test": [
        {
            "query": "how old is the moon",
            "positive": ["the moon is about 4.5 billion years old ."],
            "negative": ["the moon orbits the earth .", "tides follow the moon\x85s pull ."],
        },
        {
            "query": "who wrote hamlet",
            "positive": ["hamlet was written by william shakespeare .", "shakespeare wrote hamlet around 1600 ."],
            "negative": ["hamlet is set in denmark ."],
        },
        {
            "query": "what is the capital of peru",
            "positive": ["lima is the capital of peru ."],
            "negative": ["peru is in south america .", "the andes cross peru .", "cusco was the inca capital ."],
        },
    ],
    "dev": [
        {
            "query": "when did rome fall",
            "positive": ["western rome fell in 476 ."],
            "negative": ["rome is in italy ."],
        },
        {
            "query": "what do bees make",
            "positive": ["bees make honey and wax ."],
            "negative": ["bees have six legs ."],
        },
    ],
}

TWITTER = [
    (1, "Stocks fall sharply as markets open", "Markets open and stocks fall sharply"),
    (0, "Stocks fall sharply as markets open", "My cat sleeps all day"),
    (1, "New phone released\u2028today by Apple", "Apple released a new phone today"),
    (0, "New phone released\u2028today by Apple", "Rain expected across the north"),
    (0, "Team wins the cup final", "Election results due tonight"),
    (1, "Team wins the cup final", "The team wins the final of the cup"),
]

NEWSGROUPS = {  # each group's subjects share one word, so a bag of words can tell the groups apart
    "sci.space": ["space shuttle launch", "the space station orbit", "a space walk on the moon"],
    "rec.autos": ["car engine oil", "my car brakes squeal", "used car prices"],
    "comp.graphics": ["graphics card drivers", "3d graphics rendering", "graphics file formats"],
}

# (score, sentence1, sentence2) in each language; bag-of-words ranks them as the scores do.
STS = {
    "dev": [
        (5.0, "a man plays a guitar", "a man plays a guitar"),
        (3.2, "a woman cuts an onion", "a woman cuts a tomato"),
        (1.0, "two dogs run on the beach", "two cats sleep on a sofa"),
        (0.0, "the market fell sharply", "a child reads a book"),
    ],
    "test": [
        (4.8, "a girl styles her hair", "a girl styles her hair"),
        (2.4, "a man rides a horse", "a man rides a bike"),
        (0.2, "the train is late", "a bird sings in a tree"),
    ],
}
CJK = {"zh": "一个女孩正在梳头。", "ja": "女の子が髪をとかしている。"}


def _tsv(path: Path, header: str, rows: list[tuple]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *("\t".join(str(c) for c in row) for row in rows)]) + "\n", encoding="utf-8")


def _jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # ensure_ascii=False writes U+2028 and U+0085 raw, as the real files hold non-ASCII text.
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def write_beyond(root: Path) -> Path:
    """Every task folder of the beyond-STS layout, with the sizes the constants above give."""
    scifact = root / "retrieval" / "scifact"
    _jsonl(scifact / "corpus.jsonl", [{"_id": i, "title": t, "text": x} for i, (t, x) in CORPUS.items()])
    for split in ("train", "test"):
        _jsonl(scifact / f"queries-{split}.jsonl", [{"_id": i, "text": t} for i, t in QUERIES[split].items()])
        _tsv(scifact / f"qrels-{split}.tsv", "query-id\tcorpus-id\tscore", QRELS[split])
    for split, items in WIKIQA.items():
        _jsonl(root / "reranking" / "wikiqa" / f"{split}.jsonl", items)
    _tsv(root / "pair-classification" / "twitter-url" / "test.tsv", "label\tsentence1\tsentence2", TWITTER)
    rows = [(group, text) for group, texts in NEWSGROUPS.items() for text in texts]
    _tsv(root / "clustering" / "20ng-subjects" / "test.tsv", "label\ttext", rows)
    _tsv(root / "clustering" / "20ng-subjects" / "train.tsv", "label\ttext", [(g, f"re {t}") for g, t in rows])
    pit = [(label, f"tweet {a}", f"tweet {b}") for label, a, b in TWITTER]
    _tsv(root / "pair-classification" / "pit2015" / "dev.tsv", "label\tsentence1\tsentence2", pit)
    for language in LANGUAGES:
        for split, pairs in STS.items():
            if language in CJK:  # no spaces between words, as in the real zh and ja files
                pairs = [
                    (s, CJK[language] + a.replace(" ", ""), CJK[language] + b.replace(" ", "")) for s, a, b in pairs
                ]
            else:
                pairs = [(s, f"{language} {a}", f"{language} {b}") for s, a, b in pairs]
            _tsv(
                root / "multilingual" / "stsb-multi-mt" / f"{language}-{split}.tsv",
                "score\tsentence1\tsentence2",
                pairs,
            )
    return root
