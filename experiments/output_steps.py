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

Retrieval step (<results>/<model>/output_retrieval_dev.json): the same variants on SciFact's train
queries (its tuning split), nDCG@10 of each, its difference from float32 with a 95% paired-bootstrap
interval over queries. Binary rows are ranked by their +-1 cosine, which orders documents as the
number of equal bits does. The rows are encoded as the recipes' beyond-STS test step encodes them
(same encoders, settings and cache), so that step reuses the abstracts encoded here. Abstracts are
long (SmolLM2-135M's CK recipe and plain PromptEOL together took 2,888 s for 979 of them on 2 CPU
cores), so the step ranks a seeded sample: SUBSET_QUERIES train queries against their judged
abstracts and SUBSET_DISTRACTORS others. A smaller corpus makes ranking easier, so these nDCG@10
are not the whole corpus' (the test split's are, in the beyond-STS steps); what the step measures
is each variant's difference from float32 on the same ranking.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from cpembed.cache import EmbeddingCache
from cpembed.encoder import CPEncoder
from cpembed.evaluation import beyond
from cpembed.evaluation.corpus import PER_SOURCE, tuning_corpus
from cpembed.evaluation.data import load_raw_stsb
from cpembed.evaluation.metrics import bootstrap_spearman_difference, paired_cosine, spearman
from cpembed.quantize import calibration_ranges, quantize

from .beyond_steps import INTERVAL_RESAMPLES, Row, _slice_embeddings, _write, timed


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


def _variants(rows: np.ndarray, ranges: np.ndarray) -> dict[str, np.ndarray]:
    """Unit rows of each quantized or shortened form of unit `rows`, to rank by cosine."""
    width = rows.shape[1]
    forms = {"float32": rows}
    for precision in ("int8", "uint8"):
        forms[precision] = quantize(rows, precision, ranges).astype(np.float32)
    signs = np.where(rows > 0, 1.0, -1.0)  # the bits binary and ubinary keep (they differ only in packing)
    forms |= {"binary": signs, "ubinary": signs}
    for k in (width // 2, width // 4):
        forms[f"first {k} dimensions"] = rows[:, :k]
    return {name: x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12) for name, x in forms.items()}


def _retrieval_metrics(data, queries: np.ndarray, documents: np.ndarray) -> dict:
    ids = list(data.corpus)
    tally = beyond.RetrievalTally.start(data, queries, dict(zip(ids, documents, strict=True)))
    tally.count(queries, ids, documents)
    return tally.metrics()


SUBSET_QUERIES, SUBSET_DISTRACTORS = 300, 700


def scifact_subset(data, queries: int = SUBSET_QUERIES, distractors: int = SUBSET_DISTRACTORS, seed: int = 0):
    """A seeded sample of `data`: `queries` of its queries, their judged documents, and `distractors` others."""
    rng = np.random.default_rng(seed)
    kept = sorted(rng.choice(sorted(data.queries), size=min(queries, len(data.queries)), replace=False).tolist())
    judged = {d for q in kept for d in data.qrels[q]}
    others = sorted(set(data.corpus) - judged)
    extra = rng.choice(others, size=min(distractors, len(others)), replace=False).tolist() if others else []
    chosen = judged | set(extra)
    corpus = {d: text for d, text in data.corpus.items() if d in chosen}  # the corpus' own order
    return beyond.Retrieval({q: data.queries[q] for q in kept}, corpus, {q: data.qrels[q] for q in kept})


def run_output_retrieval_dev(model: str, lm, data_dir: Path, beyond_root: Path, out: Path, batch_size=16):
    """The retrieval step of the module's docstring (SciFact train: a tuning split)."""
    path = out / model / "output_retrieval_dev.json"
    if path.is_file():
        return json.loads(path.read_text())
    started = time.perf_counter()
    data = scifact_subset(beyond.load_scifact(beyond_root, "train"))
    default = CPEncoder(lm)
    rows = [Row("default recipe", default, default.cp, default.postprocess)]
    rows.append(Row("plain PromptEOL", CPEncoder(lm, "prompteol", cp=None)))
    corpus = tuning_corpus(data_dir, beyond_root, PER_SOURCE)
    records = []
    for row, embed in zip(rows, _slice_embeddings(rows, batch_size, EmbeddingCache()), strict=True):
        documents = beyond.embed_rows(embed, list(data.corpus.values())).astype(np.float32)
        queries = beyond.embed_rows(embed, list(data.queries.values())).astype(np.float32)
        ranges = calibration_ranges(beyond.embed_rows(embed, corpus).astype(np.float32))
        doc_forms, query_forms = _variants(documents, ranges), _variants(queries, ranges)
        results = {name: _retrieval_metrics(data, query_forms[name], doc_forms[name]) for name in doc_forms}
        base = results["float32"]
        for variant, result in results.items():
            interval = (
                beyond.paired_interval(
                    np.mean,
                    100 * base["per_query"]["ndcg@10"],
                    100 * result["per_query"]["ndcg@10"],
                    INTERVAL_RESAMPLES,
                )
                if variant != "float32"
                else (0.0, 0.0)
            )
            records.append(
                {
                    "embedding": row.name,
                    "width": documents.shape[1],
                    "variant": variant,
                    "nDCG@10": result["ndcg@10"],
                    "difference": result["ndcg@10"] - base["ndcg@10"],
                    "interval": interval,
                }
            )
    split = (
        f"SciFact train: {len(data.queries)} queries, a corpus of their judged abstracts and "
        f"{len(data.corpus) - len({d for q in data.qrels for d in data.qrels[q]})} others "
        f"({len(data.corpus)} documents), seeded sample"
    )
    result = {"model": model, "split": split, "records": records} | timed(started, lm)
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
        ]
        lines += _variant_table(step["records"], "raw STS-B dev", "Spearman")
        lines += _retrieval_lines(out, model)
    return lines


def _retrieval_lines(out: Path, model: str) -> list[str]:
    path = out / model / "output_retrieval_dev.json"
    if not path.is_file():
        return []
    step = json.loads(path.read_text())
    lines = [
        f"**The same on retrieval** ({step['split']}, nDCG@10 of cosine ranking; binary and ubinary rank",
        "alike, by the number of equal bits)",
        "",
    ]
    return lines + _variant_table(step["records"], "nDCG@10", "nDCG@10")


def _variant_table(records: list[dict], key: str, metric: str) -> list[str]:
    """A step's records: each variant's score and its difference from float32 with the interval."""
    lines = [f"| embedding | width | variant | {metric} | difference from float32 |", "|---|---|---|---|---|"]
    for r in records:
        low, high = r["interval"]
        cell = "" if r["variant"] == "float32" else f"{r['difference']:+.2f} ({low:+.2f}..{high:+.2f})"
        lines.append(f"| {r['embedding']} | {r['width']} | {r['variant']} | {r[key]:.2f} | {cell} |")
    return lines + [""]
