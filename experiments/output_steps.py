"""What quantized and shorter embeddings cost, on raw STS-B dev (a dev split: nothing is chosen here).

Dev step (<results>/<model>/output_dev.json), for the model's default recipe (its packaged fit
applied) and for plain PromptEOL:
- precision: float32, then int8 and uint8 (steps from `calibration_ranges` of the tuning corpus'
  rows, as a service would fix them once) scored by cosine, and binary / ubinary scored by the
  number of equal bits (1 - normalized Hamming distance), as sentence-transformers' binary
  search does;
- dimensions: the first d/2 and d/4 coordinates, cosine of what is kept. For the recipe these are
  its whitening's strongest components; for plain PromptEOL, the first coordinates of a hidden
  state, which carry no order.
Each row: Spearman x100 and its difference from the same embedding in float32 at full width,
with a 95% paired-bootstrap interval.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from cpembed.cache import EmbeddingCache
from cpembed.encoder import CPEncoder
from cpembed.evaluation.corpus import PER_SOURCE, tuning_corpus
from cpembed.evaluation.data import load_raw_stsb
from cpembed.evaluation.metrics import bootstrap_spearman_difference, paired_cosine, spearman
from cpembed.quantize import calibration_ranges, quantize

from .beyond_steps import INTERVAL_RESAMPLES, _write, timed


def _bit_agreement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The share of equal bits of packed rows: 1 - Hamming distance / bits."""
    a, b = (np.unpackbits(x.view(np.uint8), axis=1) for x in (a, b))
    return (a == b).mean(axis=1)


def run_output_dev(model: str, lm, data_dir: Path, raw_dir: Path, beyond_root: Path, out: Path, batch_size=16):
    path = out / model / "output_dev.json"
    if path.is_file():
        return json.loads(path.read_text())
    started = time.perf_counter()
    raw = load_raw_stsb(raw_dir, "dev")
    corpus = tuning_corpus(data_dir, beyond_root, PER_SOURCE)
    texts = list(dict.fromkeys(corpus + raw.sentences1 + raw.sentences2))
    row = {s: i for i, s in enumerate(texts)}
    first, second = [row[s] for s in raw.sentences1], [row[s] for s in raw.sentences2]
    fit_rows = [row[s] for s in corpus]
    cache = EmbeddingCache()
    embeddings = {}
    for name, encoder in (("default recipe", CPEncoder(lm)), ("plain PromptEOL", CPEncoder(lm, cp=None))):
        rows = encoder.encode_settings(texts, [encoder.cp], batch_size, True, cache=cache)[0]
        embeddings[name] = encoder.postprocess.apply(rows) if encoder.postprocess else rows
    records = []
    for name, rows in embeddings.items():
        width = rows.shape[1]
        full = paired_cosine(rows[first], rows[second])
        variants = {"float32": full}
        ranges = calibration_ranges(rows[fit_rows])
        for precision in ("int8", "uint8"):
            q = quantize(rows, precision, ranges).astype(np.float32)
            variants[precision] = paired_cosine(q[first], q[second])
        for precision in ("binary", "ubinary"):
            q = quantize(rows, precision)
            variants[precision] = _bit_agreement(q[first], q[second])
        for k in (width // 2, width // 4):
            variants[f"first {k} dimensions"] = paired_cosine(rows[first][:, :k], rows[second][:, :k])
        base = 100 * spearman(full, raw.scores)
        for variant, scores in variants.items():
            value = 100 * spearman(scores, raw.scores)
            interval = (
                bootstrap_spearman_difference(raw.scores, full, scores, INTERVAL_RESAMPLES)
                if variant != "float32"
                else (0.0, 0.0)
            )
            records.append(
                {
                    "embedding": name,
                    "width": width,
                    "variant": variant,
                    "raw STS-B dev": value,
                    "difference": value - base,
                    "interval": interval,
                }
            )
    result = {"model": model, "split": "raw STS-B dev", "records": records} | timed(started, lm)
    _write(path, result)
    return result


def output_markdown(out: Path, models) -> list[str]:
    lines = []
    for model in models:
        path = out / model / "output_dev.json"
        if not path.is_file():
            continue
        step = json.loads(path.read_text())
        lines += [
            f"## Quantized and shorter embeddings ({model}, raw STS-B dev)",
            "",
            "`python -m experiments --output-costs` (experiments/output_steps.py): each embedding in float32 at full",
            "width, then int8 / uint8 (steps from the tuning corpus' ranges), binary / ubinary (scored by the share",
            "of equal bits), and its first d/2 and d/4 coordinates; the difference from float32 at full width",
            "with a 95% paired-bootstrap interval. The default recipe's coordinates are whitened components,",
            "strongest first; plain PromptEOL's are a hidden state's, in no order.",
            "",
            "| embedding | width | variant | Spearman | difference from float32 |",
            "|---|---|---|---|---|",
        ]
        for r in step["records"]:
            low, high = r["interval"]
            cell = "" if r["variant"] == "float32" else f"{r['difference']:+.2f} ({low:+.2f}..{high:+.2f})"
            lines.append(f"| {r['embedding']} | {r['width']} | {r['variant']} | {r['raw STS-B dev']:.2f} | {cell} |")
        lines.append("")
    return lines
