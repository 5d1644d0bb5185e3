"""Ensembles screened on the dev splits: means and concatenations of two to four prompts or
output layers, each with the fitted post-processing the recipes use.

Dev step (<results>/<model>/ensembles_dev.json). Members are single embeddings: PromptEOL and
CK (itself the mean of Pretended CoT and Knowledge, so an ensemble holds up to four templates) at
their own output layers, and PromptEOL one layer earlier (hidden_states[-2], the lever of averaging
output layers), each plain and with the prompt's shipped default CP. An ensemble combines two or
three members of the same kind (all plain, or all with CP): "mean" averages the members after
scaling each to unit length (members read at different layers have different norms; CK's own mean
is of raw vectors), "concat" joins the unit-length members.
Every single member and ensemble is scored with no post-processing, centering and whitening to
128 and 256 dimensions, each fitted on the tuning corpus (`tuning_corpus`), on SentEval's STS-B dev
and raw STS-B dev. The current best recipe (CK with its default CP, whitened to 128) is the row to
beat: the 20 best candidates' raw-dev differences from it have 95% paired-bootstrap intervals.

The members are the post-processing dev step's embeddings (already in the embedding cache on a
machine that ran it); only PromptEOL's earlier layer is new. No test split is read.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import numpy as np

from cpembed.cache import EmbeddingCache
from cpembed.config import default_cp
from cpembed.encoder import CPEncoder
from cpembed.evaluation.corpus import PER_SOURCE, tuning_corpus
from cpembed.evaluation.data import load_raw_stsb, load_stsb
from cpembed.evaluation.metrics import bootstrap_spearman_difference, paired_cosine, spearman

from .beyond_steps import INTERVAL_RESAMPLES, _write, timed
from .postprocess_steps import RAW_DEV, SENTEVAL_DEV, _apply, _unrelated_cosine, parse_post

MEMBERS = (("prompteol", None), ("ck", None), ("prompteol", -2))  # (prompt, output layer)
POSTS = ("none", "center", "whiten-128", "whiten-256")
TO_BEAT = "ck CP + whiten-128"
INTERVALS = 20  # the best candidates by dev mean that get an interval (each costs a bootstrap)


def member_name(prompt: str, output_layer: int | None) -> str:
    return prompt if output_layer is None else f"{prompt}@{output_layer}"


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)


def combined(members: list[np.ndarray], mode: str) -> np.ndarray:
    """The mean or the concatenation of unit-length members."""
    units = [_unit(m) for m in members]
    return np.mean(units, axis=0) if mode == "mean" else np.concatenate(units, axis=1)


def run_ensembles_dev(
    model: str, lm, data_dir: Path, raw_dir: Path, beyond_root: Path, out: Path, batch_size: int = 16
) -> dict:
    path = out / model / "ensembles_dev.json"
    if path.is_file():
        return json.loads(path.read_text())
    started = time.perf_counter()
    corpus = tuning_corpus(data_dir, beyond_root, PER_SOURCE)
    splits = {SENTEVAL_DEV: load_stsb(data_dir, "dev"), RAW_DEV: load_raw_stsb(raw_dir, "dev")}
    unique = list(dict.fromkeys(corpus + [s for p in splits.values() for s in p.sentences1 + p.sentences2]))
    row = {s: i for i, s in enumerate(unique)}
    cache = EmbeddingCache()
    vectors: dict[tuple[str, str], np.ndarray] = {}  # (member, "plain" | "CP") -> embeddings
    for prompt, layer in MEMBERS:
        encoder = CPEncoder(lm, prompt, cp=None, output_layer=layer)
        settings = [None, default_cp(model, prompt)]
        plain, steered = encoder.encode_settings(
            unique, settings, batch_size=batch_size, show_progress_bar=True, cache=cache
        )
        vectors[member_name(prompt, layer), "plain"], vectors[member_name(prompt, layer), "CP"] = plain, steered
    candidates = {f"{name} {kind}": v for (name, kind), v in vectors.items()}
    names = [member_name(p, layer) for p, layer in MEMBERS]
    for size in range(2, len(names) + 1):
        for group in itertools.combinations(names, size):
            for kind in ("plain", "CP"):
                for mode in ("mean", "concat"):
                    candidates[f"{mode}({', '.join(group)}) {kind}"] = combined(
                        [vectors[name, kind] for name in group], mode
                    )
    fit_rows = [row[s] for s in corpus]
    raw = splits[RAW_DEV]
    raw_first, raw_second = [row[s] for s in raw.sentences1], [row[s] for s in raw.sentences2]
    records = []
    for name, embedding in candidates.items():
        for post in POSTS:
            kind, dimensions = parse_post(post)
            processed = _apply(kind, dimensions, embedding[fit_rows], embedding)
            scores = {
                split: 100
                * spearman(
                    paired_cosine(processed[[row[s] for s in p.sentences1]], processed[[row[s] for s in p.sentences2]]),
                    p.scores,
                )
                for split, p in splits.items()
            }
            records.append(
                {
                    "candidate": name if post == "none" else f"{name} + {post}",
                    "members": 1 if name.count(",") == 0 else name.count(",") + 1,
                    "width": int(processed.shape[1]),
                    **scores,
                    "mean": float(np.mean(list(scores.values()))),
                    "unrelated_cosine": _unrelated_cosine(processed, raw_first, raw_second),
                    "raw_cosines": paired_cosine(processed[raw_first], processed[raw_second]),
                }
            )
    to_beat = next(r for r in records if r["candidate"] == TO_BEAT)
    records.sort(key=lambda r: -r["mean"])
    for record in records[:INTERVALS]:
        record["raw interval vs to_beat"] = bootstrap_spearman_difference(
            raw.scores, to_beat["raw_cosines"], record["raw_cosines"], INTERVAL_RESAMPLES
        )
    for record in records:
        record.pop("raw_cosines")
    result = {
        "model": model,
        "to_beat": TO_BEAT,
        "corpus_sentences": len(corpus),
        "records": records,
    } | timed(started, lm)
    _write(path, result)
    return result


def ensembles_markdown(out: Path, models) -> list[str]:
    """The section of docs/RESULTS.md: the best candidates by dev mean beside the recipe to beat."""
    lines = []
    for model in models:
        path = out / model / "ensembles_dev.json"
        if not path.is_file():
            continue
        step = json.loads(path.read_text())
        records = step["records"]
        to_beat = next(r for r in records if r["candidate"] == step["to_beat"])
        shown = records[:10] + ([to_beat] if to_beat not in records[:10] else [])
        best_ensemble = next((r for r in records if r["members"] > 1), None)
        lines += [
            f"## Ensembles on the dev splits ({model}, float32)",
            "",
            "`python -m experiments --ensembles` (experiments/ensemble_steps.py): means and concatenations of",
            "unit-length members (PromptEOL and CK at their own output layers, PromptEOL at hidden_states[-2]),",
            "all plain or all with each prompt's default CP, each with no post-processing, centering or whitening",
            f"to 128 or 256 fitted on the {step['corpus_sentences']:,} tuning sentences; scored on both STS-B dev",
            f"splits ({step['seconds'] / 60:.0f} min). The ten best by dev mean, and the packaged default",
            f"({step['to_beat']}); the raw-dev difference from it has a 95% paired-bootstrap interval.",
            "",
            "| candidate | width | SentEval STS-B dev | raw STS-B dev | mean | unrelated cosine | raw dev vs default |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in shown:
            interval = r.get("raw interval vs to_beat")
            difference = r[RAW_DEV] - to_beat[RAW_DEV]
            cell = f"{difference:+.2f} ({interval[0]:+.2f}..{interval[1]:+.2f})" if interval else f"{difference:+.2f}"
            lines.append(
                f"| {r['candidate']} | {r['width']} | {r[SENTEVAL_DEV]:.2f} | {r[RAW_DEV]:.2f} | {r['mean']:.2f} | "
                f"{r['unrelated_cosine']:.2f} | {cell} |"
            )
        if best_ensemble is not None:
            gain = best_ensemble["mean"] - to_beat["mean"]
            lines += [
                "",
                f"The best ensemble, {best_ensemble['candidate']}, scores a dev mean of {best_ensemble['mean']:.2f}, "
                f"{gain:+.2f} against the default's {to_beat['mean']:.2f}.",
            ]
        lines.append("")
    return lines
