"""Token Prepending on the dev splits: does it help these models, as its paper found on LLaMA2-7B?

Per model and prompt: the plain prompt embedding, the shipped default CP, TP at a few layer
ranges, and TP with that CP, on SentEval STS-B dev and raw STS-B dev, all read at the prompt's
output layer in the same dtype (the paper's code also reads TP at an earlier layer, 27 of 32 for
PromptEOL; here the layer stays the baseline's, so a difference is TP's alone). Raw dev
differences from the plain baseline get a 95% paired-bootstrap interval. Dev splits only: this
step chooses nothing. One JSON per model and prompt: <results>/<model>/<prompt>/tp_dev.json.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from cpembed.cache import EmbeddingCache, encode_cached
from cpembed.config import TPConfig, default_cp
from cpembed.encoder import CPEncoder
from cpembed.evaluation.data import load_raw_stsb, load_stsb
from cpembed.evaluation.metrics import bootstrap_spearman_difference, paired_cosine, spearman
from cpembed.evaluation.search import label

from .beyond_steps import INTERVAL_RESAMPLES, _write

# The paper's code replaces layers 2..7 of LLaMA2-7B's 32; shorter and longer ranges beside it, and
# ranges from layer 1, where layer 1 never reads the placeholder's random embedding (norm about
# sqrt(d), against about 3 for SmolLM2's token embeddings).
TP_RANGES = ("1-4", "1-7", "2-4", "2-7", "2-10")
TP_WITH_CP = "2-7"  # the range also run with the default CP


def run_tp(model_name: str, lm, prompt: str, data_dir: Path, raw_dir: Path, out: Path, batch_size: int = 16) -> None:
    """The step for one model and prompt, unless its JSON holds every range of `TP_RANGES` (the
    embedding cache serves the rows an earlier run computed)."""
    path = out / model_name / prompt / "tp_dev.json"
    if path.is_file() and set(TP_RANGES) <= {row["tp"] for row in json.loads(path.read_text())["rows"]}:
        return
    started = time.perf_counter()
    splits = {"STS-B dev": load_stsb(data_dir, "dev"), "raw STS-B dev": load_raw_stsb(raw_dir, "dev")}
    cp = default_cp(model_name, prompt)
    runs = [(None, [None, cp] if cp else [None])]
    runs += [(TPConfig.parse(r), [None, cp] if cp and r == TP_WITH_CP else [None]) for r in TP_RANGES]
    cache = EmbeddingCache()
    similarities = []  # (tp, setting, {split: cosines})
    for tp, settings in runs:
        encoder = CPEncoder(lm, prompt, cp=None, tp=tp)
        found = {split: [] for split in splits}
        for split, pairs in splits.items():
            unique = list(dict.fromkeys(pairs.sentences1 + pairs.sentences2))
            index = {s: i for i, s in enumerate(unique)}
            vectors = encode_cached(encoder, unique, settings, cache, batch_size)
            for v in vectors:
                first, second = v[[index[s] for s in pairs.sentences1]], v[[index[s] for s in pairs.sentences2]]
                found[split].append(paired_cosine(first, second))
        similarities += [(tp, s, {split: found[split][j] for split in splits}) for j, s in enumerate(settings)]
    raw = splits["raw STS-B dev"].scores
    base = similarities[0][2]["raw STS-B dev"]
    rows = []
    for tp, setting, cosines in similarities:
        row = {"tp": None if tp is None else f"{tp.first}-{tp.last}", "cp": label(setting)}
        row |= {split: 100 * spearman(cosines[split], splits[split].scores) for split in splits}
        if rows:
            row["raw low"], row["raw high"] = bootstrap_spearman_difference(
                raw, base, cosines["raw STS-B dev"], INTERVAL_RESAMPLES
            )
        rows.append(row)
    result = {
        "model": model_name,
        "prompt": prompt,
        "output_layer": CPEncoder(lm, prompt, cp=None).output_layer,
        "dtype": str(lm.dtype).removeprefix("torch."),
        "rows": rows,
        "resamples": INTERVAL_RESAMPLES,
        "seconds": round(time.perf_counter() - started, 1),
    }
    _write(path, result)


def tp_markdown(out: Path, models, prompts) -> list[str]:
    """The section of docs/RESULTS.md: one table per model and prompt that has run."""
    lines = []
    for model_name in models:
        for prompt in prompts:
            path = out / model_name / prompt / "tp_dev.json"
            if not path.is_file():
                continue
            step = json.loads(path.read_text())
            base = step["rows"][0]
            lines += [
                f"**{model_name}, {prompt}** (output layer {step['output_layer']}, {step['dtype']}, "
                f"{step['seconds']:.0f} s):",
                "",
                "| TP layers | CP | STS-B dev | raw STS-B dev | raw dev vs plain, 95% interval |",
                "|---|---|---|---|---|",
            ]
            for row in step["rows"]:
                difference = "—"
                if "raw low" in row:
                    gain = row["raw STS-B dev"] - base["raw STS-B dev"]
                    difference = f"{gain:+.2f} [{row['raw low']:+.2f}, {row['raw high']:+.2f}]"
                lines.append(
                    f"| {row['tp'] or '—'} | {row['cp']} | {row['STS-B dev']:.2f} | {row['raw STS-B dev']:.2f} "
                    f"| {difference} |"
                )
            lines.append("")
    if not lines:
        return []
    return [
        "## Token Prepending on the dev splits",
        "",
        "`python -m experiments --tp`. TP (Fu et al., 2024) copies the last token's state onto a placeholder",
        "before the sentence at the input of the given layers; read at the prompt's own output layer, in the",
        "same dtype as the baseline. Dev splits only (nothing here is chosen on a test split).",
        "",
        *lines,
    ]
