"""The model's own answer word for an in-context demonstration (Jiang et al., 2023, "Scaling
Sentence Embeddings with Large Language Models", arXiv 2307.16645).

A demonstration is a tuning sentence with the one word that sums it up, put before the template
(`prompts.demonstrate`); `cpembed tune --demonstrations N` tries N of them, each answered here.
"""

from __future__ import annotations

import re

import torch

from ..encoder import CPEncoder
from ..prompts import preprocess

_WORD = re.compile(r"[^\W_][\w'-]*")


@torch.inference_mode()
def answer_word(encoder: CPEncoder, sentence: str, max_new_tokens: int = 6) -> str | None:
    """The model's own one-word answer to the encoder's (first) template for `sentence`: its greedy
    continuation up to the closing quote, first word; None when it gives no word."""
    lm = encoder.lm
    text = encoder.prompt.templates[0].fill(preprocess(sentence))
    ids = torch.tensor([lm.tokenizer(text)["input_ids"]], device=lm.device)
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
