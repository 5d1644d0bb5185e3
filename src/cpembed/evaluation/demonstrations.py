"""One in-context demonstration for a prompt, chosen on dev splits only (Jiang et al., 2023,
"Scaling Sentence Embeddings with Large Language Models", arXiv 2307.16645).

A demonstration is a tuning sentence with the one word that sums it up, put before the template
(`prompts.demonstrate`). The candidates' sentences come from tuning splits (`corpus.tuning_corpus`);
each answer word is the model's own greedy continuation of the prompt, or given.
Every candidate is scored on the dev split(s) against the prompt without one, and the spread over
candidates says whether searching pays. No test split is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch

from ..encoder import CPEncoder
from ..errors import InvalidValueError
from ..prompts import preprocess
from .search import RAW_DEV, SearchResult, score_settings

_WORD = re.compile(r"[^\W_][\w'-]*")


@torch.inference_mode()
def answer_word(encoder: CPEncoder, sentence: str, max_new_tokens: int = 6) -> str | None:
    """The model's own one-word answer to the encoder's (first) template for `sentence`: its greedy
    continuation up to the closing quote, first word; None when it gives no word."""
    lm = encoder.lm
    text = encoder.prompt.templates[0].fill(preprocess(sentence))
    ids = lm.tokenizer(text, return_tensors="pt").input_ids.to(lm.device)
    out = lm.model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=lm.tokenizer.pad_token_id or lm.tokenizer.eos_token_id,
    )
    continuation = lm.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True).split('"')[0]
    word = _WORD.search(continuation)
    return word.group(0) if word else None


@dataclass
class DemonstrationSearch:
    """Each candidate's dev scores beside the prompt without a demonstration."""

    candidates: list[tuple[str, str]]
    result: SearchResult  # row 0: no demonstration; row i: candidate i - 1

    def records(self) -> dict:
        scores = np.array(self.result.scores[1:])
        best = int(np.argmax(scores))
        return {
            "none": {"score": self.result.scores[0]} | _splits(self.result, 0),
            "candidates": [
                {"sentence": s, "answer": a, "score": self.result.scores[i + 1]} | _splits(self.result, i + 1)
                for i, (s, a) in enumerate(self.candidates)
            ],
            "best": {"sentence": self.candidates[best][0], "answer": self.candidates[best][1]},
            "spread": {
                "min": float(scores.min()),
                "median": float(np.median(scores)),
                "max": float(scores.max()),
                "share_above_none": float(np.mean(scores > self.result.scores[0])),
            },
            "split": self.result.split,
            "seconds": self.result.seconds,
        }


def _splits(result: SearchResult, row: int) -> dict:
    return {"splits": {name: scores[row] for name, scores in result.splits.items()}}


def search_demonstrations(
    encoder: CPEncoder,
    splits: dict,
    candidates: list[tuple[str, str]],
    batch_size: int = 16,
    cache=None,
) -> DemonstrationSearch:
    """Score the encoder's prompt without a demonstration and with each candidate, on `splits`
    (dev splits), with the encoder's CP setting and output layer."""
    if not candidates:
        raise InvalidValueError("give at least one candidate demonstration")
    if any(name not in (RAW_DEV, "STS-B dev") for name in splits):
        raise InvalidValueError(f"demonstrations are chosen on the STS-B dev splits only, got {', '.join(splits)}")
    results = []
    for demonstrations in [None, *([c] for c in candidates)]:
        variant = CPEncoder(
            encoder.lm,
            encoder.prompt.with_demonstrations(demonstrations),
            cp=encoder.cp,
            output_layer=encoder.output_layer,
            max_length=encoder.max_length,
            tp=encoder.tp,
        )
        results.append(score_settings(variant, splits, [variant.cp], batch_size, cache=cache))
    merged = SearchResult(
        [encoder.cp] * len(results),
        [r.scores[0] for r in results],
        ["none"] + [f"{s} -> {a}" for s, a in candidates],
        sum(r.seconds for r in results),
        split=results[0].split,
        splits={name: [r.splits[name][0] for r in results] for name in results[0].splits},
        similarities={name: [r.similarities[name][0] for r in results] for name in results[0].splits},
        gold=results[0].gold,
    )
    return DemonstrationSearch(list(candidates), merged)
