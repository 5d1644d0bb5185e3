"""Does CP take weight away from stop words? The paper's first suggested check, on many sentences.

For the first `count` unique sentences of raw STS-B dev (a dev split; nothing is chosen here),
`cpembed.explain` with each prompt's shipped default CP: the share of the last token's attention
to the sentence (mean over the layers from the CP layer to the output layer) and of gradient x
input that falls on stop words, without and with CP, with a 95% paired-bootstrap interval of the
difference over sentences. One picture of one sentence is kept beside the numbers.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from cpembed.config import default_cp
from cpembed.encoder import CPEncoder
from cpembed.evaluation.beyond import paired_interval
from cpembed.evaluation.data import load_raw_stsb
from cpembed.explain import explain, explanation_png

from .beyond_steps import INTERVAL_RESAMPLES, _write

PICTURED = "A man is playing a flute."


def run_explain(model_name: str, lm, prompt: str, raw_dir: Path, out: Path, count: int = 200) -> None:
    path = out / model_name / prompt / "explain.json"
    cp = default_cp(model_name, prompt)
    if path.is_file() or cp is None:
        return
    started = time.perf_counter()
    encoder = CPEncoder(lm, prompt, cp=cp)
    pairs = load_raw_stsb(raw_dir, "dev")
    sentences = list(dict.fromkeys(pairs.sentences1 + pairs.sentences2))[:count]
    shares = [explain(encoder, s).stop_word_share() for s in sentences]
    rows = {}
    for what in ("attention", "saliency"):
        plain = np.array([100 * s["plain"][what] for s in shares])
        steered = np.array([100 * s["CP"][what] for s in shares])
        low, high = paired_interval(np.mean, plain, steered, INTERVAL_RESAMPLES)
        rows[what] = {"plain": plain.mean(), "CP": steered.mean(), "low": low, "high": high}
    explanation_png(explain(encoder, PICTURED), path.with_suffix(".png"), f"{PICTURED!r}: {model_name}, {prompt}, {cp}")
    result = {"model": model_name, "prompt": prompt, "cp": repr(cp), "sentences": len(sentences), "rows": rows}
    _write(path, result | {"seconds": round(time.perf_counter() - started, 1)})


def explain_markdown(out: Path, models, prompts) -> list[str]:
    rows = []
    for model_name in models:
        for prompt in prompts:
            path = out / model_name / prompt / "explain.json"
            if not path.is_file():
                continue
            step = json.loads(path.read_text())
            for what, r in step["rows"].items():
                rows.append(
                    f"| {model_name} | {prompt} | {what} | {r['plain']:.1f}% | {r['CP']:.1f}% "
                    f"| {r['CP'] - r['plain']:+.1f} [{r['low']:+.1f}, {r['high']:+.1f}] |"
                )
            picture = path.with_suffix(".png").relative_to(out.parent)
    if not rows:
        return []
    return [
        "## Does CP take weight away from stop words?",
        "",
        "`python -m experiments --explain` (`cpembed explain` on the first 200 unique sentences of raw STS-B dev,",
        "each prompt's shipped default CP): the share of the last token's attention to the sentence (mean over",
        "the layers from the CP layer on) and of gradient x input that falls on stop words, with a 95%",
        "paired-bootstrap interval of CP minus plain over sentences.",
        "",
        "| model | prompt | measure | plain | CP | CP - plain [95%] |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"![one sentence]({picture})",
        "",
    ]
