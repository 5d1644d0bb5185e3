"""Token Prepending on the dev splits: does it help these models, as its paper found on LLaMA2-7B?

Per model and prompt: the plain prompt embedding, the shipped default CP, TP at a few layer
ranges, and TP with that CP, on SentEval STS-B dev and raw STS-B dev, read at the prompt's output
layer in the same dtype. The paper's code reads TP's embeddings at an earlier layer (27 of
LLaMA2-7B's 32 for PromptEOL), so a few ranges are also read at the same fraction of depth, beside
a plain baseline read there: every difference is against the baseline at the same layer, so it is
TP's alone. Raw dev differences get a 95% paired-bootstrap interval. Dev splits only: this step
chooses nothing. One JSON per model and prompt: <results>/<model>/<prompt>/tp_dev.json.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from cpembed.cache import EmbeddingCache
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
EARLY_OUTPUT_FRACTION = 27 / 32  # where the paper's code reads PromptEOL with TP on LLaMA2-7B
TP_AT_EARLY_OUTPUT = ("2-4", "2-7")  # the ranges also read there


def run_tp(model_name: str, lm, prompt: str, data_dir: Path, raw_dir: Path, out: Path, batch_size: int = 16) -> None:
    """The step for one model and prompt, unless its JSON holds every row `_runs` asks for (the
    embedding cache serves the rows an earlier run computed)."""
    path = out / model_name / prompt / "tp_dev.json"
    runs = _runs(lm, prompt, default_cp(model_name, prompt))
    wanted = {(_range(tp), layer) for tp, _, layer in runs}
    if path.is_file() and wanted <= {(r["tp"], r.get("output_layer")) for r in json.loads(path.read_text())["rows"]}:
        return
    started = time.perf_counter()
    splits = {"STS-B dev": load_stsb(data_dir, "dev"), "raw STS-B dev": load_raw_stsb(raw_dir, "dev")}
    cache = EmbeddingCache()
    similarities = []  # (tp, setting, output layer, {split: cosines})
    for tp, settings, layer in runs:
        encoder = CPEncoder(lm, prompt, cp=None, tp=tp, output_layer=layer)
        found = {split: [] for split in splits}
        for split, pairs in splits.items():
            unique = list(dict.fromkeys(pairs.sentences1 + pairs.sentences2))
            index = {s: i for i, s in enumerate(unique)}
            vectors = encoder.encode_settings(unique, settings, batch_size=batch_size, cache=cache)
            for v in vectors:
                first, second = v[[index[s] for s in pairs.sentences1]], v[[index[s] for s in pairs.sentences2]]
                found[split].append(paired_cosine(first, second))
        similarities += [(tp, s, layer, {split: found[split][j] for split in splits}) for j, s in enumerate(settings)]
    raw = splits["raw STS-B dev"].scores
    plain = {layer: cos["raw STS-B dev"] for tp, s, layer, cos in similarities if tp is None and s is None}
    rows = []
    for tp, setting, layer, cosines in similarities:
        row = {"tp": _range(tp), "cp": label(setting), "output_layer": layer}
        row |= {split: 100 * spearman(cosines[split], splits[split].scores) for split in splits}
        if tp is not None or setting is not None:
            row["raw low"], row["raw high"] = bootstrap_spearman_difference(
                raw, plain[layer], cosines["raw STS-B dev"], INTERVAL_RESAMPLES
            )
        rows.append(row)
    result = {
        "model": model_name,
        "prompt": prompt,
        "output_layer": runs[0][2],
        "dtype": str(lm.dtype).removeprefix("torch."),
        "rows": rows,
        "resamples": INTERVAL_RESAMPLES,
        "seconds": round(time.perf_counter() - started, 1),
    }
    _write(path, result)


def _runs(lm, prompt: str, cp) -> list[tuple]:
    """(TP or None, CP settings sharing its pass, output layer): the prompt's own layer first, then
    the paper's earlier one, each with its own plain baseline."""
    layer = CPEncoder(lm, prompt, cp=None).output_layer
    runs = [(None, [None, cp] if cp else [None], layer)]
    runs += [(TPConfig.parse(r), [None, cp] if cp and r == TP_WITH_CP else [None], layer) for r in TP_RANGES]
    early = round(lm.num_layers * EARLY_OUTPUT_FRACTION)
    if early != layer:
        runs += [(None, [None], early)] + [(TPConfig.parse(r), [None], early) for r in TP_AT_EARLY_OUTPUT]
    return runs


def _range(tp: TPConfig | None) -> str | None:
    return None if tp is None else f"{tp.first}-{tp.last}"


def tp_markdown(out: Path, models, prompts) -> list[str]:
    """The section of docs/RESULTS.md: one table per model and prompt that has run."""
    lines = []
    for model_name in models:
        for prompt in prompts:
            path = out / model_name / prompt / "tp_dev.json"
            if not path.is_file():
                continue
            step = json.loads(path.read_text())
            plain = {r["output_layer"]: r for r in step["rows"] if r["tp"] is None and r["cp"] == "baseline"}
            lines += [
                f"**{model_name}, {prompt}** ({step['dtype']}, {step['seconds']:.0f} s):",
                "",
                "| read at layer | TP layers | CP | STS-B dev | raw STS-B dev | raw dev vs plain there, 95% interval |",
                "|---|---|---|---|---|---|",
            ]
            for row in step["rows"]:
                difference = "—"
                if "raw low" in row:
                    gain = row["raw STS-B dev"] - plain[row["output_layer"]]["raw STS-B dev"]
                    difference = f"{gain:+.2f} [{row['raw low']:+.2f}, {row['raw high']:+.2f}]"
                lines.append(
                    f"| {row['output_layer']} | {row['tp'] or '—'} | {row['cp']} | {row['STS-B dev']:.2f} "
                    f"| {row['raw STS-B dev']:.2f} | {difference} |"
                )
            lines.append("")
    if not lines:
        return []
    return [
        "## Token Prepending on the dev splits",
        "",
        "`python -m experiments --tp`. TP (Fu et al., 2024) copies the last token's state onto a placeholder",
        "before the sentence at the input of the given layers. Read at the prompt's own output layer and at",
        "27/32 of the depth (where the paper's code reads PromptEOL with TP), each against a plain baseline",
        "read at the same layer, in the same dtype. Dev splits only (nothing here is chosen on a test split).",
        "",
        *lines,
    ]
