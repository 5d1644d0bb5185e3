"""Re-run one STS task and one search step of the report and compare them with the stored JSON.

    python -m experiments.recheck [--model smollm2-135m] [--prompt prompteol] [--task STS13]

A change to the engine must not move a number of docs/RESULTS.md: every setting of the stored
grid (SentEval STS-B dev) and every row of the stored STS step, on one task, is recomputed in
float32 and must agree to 0.01. Prints each difference; exits 1 if one is larger.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from cpembed import CPConfig, CPEncoder, load_model
from cpembed.evaluation.data import find_data_dir, find_raw_stsb_dir, load_stsb
from cpembed.evaluation.search import score_settings
from cpembed.evaluation.sts import evaluate_sts_settings

TOLERANCE = 0.01


def _setting(record: dict) -> CPConfig | None:
    if record["norm"] == "none":
        return None
    return CPConfig(record["layer"], record["alpha"], record["norm"], record["site"], record["aux_template"])


def _from_label(label: str) -> CPConfig | None:
    """ "baseline", "NS l=5 a=2" or "NR l=5" (the labels the STS step keeps) as a setting."""
    if label == "baseline":
        return None
    norm, *fields = label.split()
    values = dict(field.split("=") for field in fields)
    alpha = float(values.get("a", 1.0))
    return CPConfig(int(values["l"]), alpha, "scale" if norm == "NS" else "recover")


@click.command()
@click.option("--model", default="smollm2-135m", show_default=True)
@click.option("--prompt", default="prompteol", show_default=True)
@click.option("--task", default="STS13", show_default=True)
@click.option("--results", default="docs/results", show_default=True, type=click.Path(file_okay=False))
@click.option("--data", type=click.Path(file_okay=False), help="SentEval 'downstream' folder (or CPEMBED_DATA).")
def recheck(model, prompt, task, results, data):
    folder = Path(results) / model / prompt
    data_dir = find_data_dir(data)
    encoder = CPEncoder(load_model(model, "float32", "cpu"), prompt, cp=None)
    worst = 0.0

    grid = json.loads((folder / "grid.json").read_text())
    settings = [_setting(r) for r in grid["records"]]
    result = score_settings(encoder, load_stsb(data_dir, "dev"), settings, batch_size=16, show_progress_bar=True)
    for record, score in zip(grid["records"], result.scores, strict=True):
        worst = max(worst, abs(score - record["spearman"]))
        click.echo(f"grid  {record['label']:>14}: stored {record['spearman']:.4f}, now {score:.4f}")

    sts = json.loads((folder / "sts.json").read_text())
    rows = sts["rows"]
    settings = [_from_label(r["setting"]) for r in rows]
    reports = evaluate_sts_settings(encoder, settings, [task], data_dir, find_raw_stsb_dir(None), 16, True)
    for row, report in zip(rows, reports, strict=True):
        stored, now = row["report"]["tasks"][task]["spearman"], report["tasks"][task]["spearman"]
        worst = max(worst, abs(now - stored))
        click.echo(f"{task} {row['setting']:>14}: stored {stored:.4f}, now {now:.4f}")

    click.echo(f"largest difference {worst:.4f} (tolerance {TOLERANCE})")
    sys.exit(0 if worst <= TOLERANCE else 1)


if __name__ == "__main__":
    recheck()
