"""`python -m experiments --tune-check`: how close a 10-minute `cpembed tune` comes to the whole grid.

Two steps per model and dtype, both on the STS job's tuning splits (SentEval STS-B dev and raw
STS-B dev), each written to <results>/<model>/tune-check/ as it finishes:

1. `budget-<dtype>.json`: the user's command, `cpembed tune MODEL --job sts --budget 10m --dtype D`,
   in a fresh process with an empty embedding cache (the model's weights are shared), timed from
   the outside, model load included. Not resumable: a stopped run starts again.
2. `grid-<dtype>.json`: the same candidates, every one scored on the whole of both splits in one
   round with no budget (whitening fitted on all their texts), so each candidate has its score on
   the whole dev set. Resumable through the embedding cache.

The check: the budget run's choice, scored in step 2, against step 2's best; the target is a gap
of at most 0.3.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cpembed.bench import machine
from cpembed.io import atomic_write

TARGET = 0.3  # points of the dev mean the 10-minute choice may lose to the whole grid's best
BUDGET = "10m"


def run_tune_check(model_name: str, dtype: str, out: Path, batch_size: int = 32) -> None:
    folder = out / model_name / "tune-check"
    folder.mkdir(parents=True, exist_ok=True)
    budget_path, grid_path = folder / f"budget-{dtype}.json", folder / f"grid-{dtype}.json"
    if not budget_path.is_file():
        _run_budget(model_name, dtype, budget_path)
    if not grid_path.is_file():
        _run_grid(model_name, dtype, grid_path, batch_size)


def _run_budget(model_name: str, dtype: str, path: Path) -> None:
    from cpembed.models import cache_dir

    with tempfile.TemporaryDirectory() as empty:
        for entry in cache_dir().iterdir():  # the weights, not the embeddings
            if entry.is_dir():
                (Path(empty) / entry.name).symlink_to(entry, target_is_directory=True)
        spec_path = Path(empty) / "spec.json"
        command = ["tune", model_name, "--job", "sts", "--budget", BUDGET, "--dtype", dtype, "-o", str(spec_path)]
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "cpembed", *command],
            env=os.environ | {"CPEMBED_CACHE": empty},
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"cpembed {' '.join(command)} failed:\n{done.stderr[-2000:]}")
        spec = json.loads(spec_path.read_text())
    record = {
        "command": "cpembed " + " ".join(command[:-2]),
        "wall_seconds": round(wall, 1),
        "spec": spec,
        "machine": machine(),
    }
    _save(path, record)


def _run_grid(model_name: str, dtype: str, path: Path, batch_size: int) -> None:
    from cpembed.cache import EmbeddingCache
    from cpembed.evaluation import tune as tuning
    from cpembed.models import load_model

    lm = load_model(model_name, dtype=dtype)
    tasks = tuning.shared_tasks("sts")
    result = tuning.tune(
        lm,
        "sts",
        tasks,
        math.inf,
        start_units=max(t.units for t in tasks),
        batch_size=batch_size,
        cache=EmbeddingCache(),
        report=lambda line: print(f"  {line}", file=sys.stderr),
    )
    best = max(result.scores, key=result.scores.get)
    record = {
        "units": [f"{t.name} ({t.units})" for t in tasks],
        "seconds": round(result.seconds, 1),
        "baseline": result.baseline,
        "best": {"candidate": best, "score": result.scores[best]},
        "scores": result.scores,
    }
    _save(path, record)


def _save(path: Path, record: dict) -> None:
    atomic_write(path, lambda stream: stream.write((json.dumps(record, indent=2) + "\n").encode()))


def tune_check_markdown(out: Path, models: list[str]) -> list[str]:
    rows = []
    for model_name in models:
        for budget_path in sorted((out / model_name / "tune-check").glob("budget-*.json")):
            dtype = budget_path.stem.removeprefix("budget-")
            grid_path = budget_path.with_name(f"grid-{dtype}.json")
            if not grid_path.is_file():
                continue
            budget, grid = json.loads(budget_path.read_text()), json.loads(grid_path.read_text())
            origin = budget["spec"]["origin"]
            chosen = origin["chosen"]  # plain PromptEOL's label where nothing beat it
            whole = grid["scores"][chosen]
            gap = grid["best"]["score"] - whole
            rounds = " / ".join(f"{r['units']}" for r in origin["rounds"])
            rows.append(
                f"| {model_name} | {dtype} | {budget['wall_seconds']:.0f} s ({origin['seconds']:.0f} s searching) | "
                f"{rounds} | {chosen} | {origin['score']:.2f} | {whole:.2f} | {grid['best']['candidate']} | "
                f"{grid['best']['score']:.2f} | {gap:.2f} ({'met' if gap <= TARGET else 'not met'}) |"
            )
    if not rows:
        return []
    return [
        "## Tuning in 10 minutes against the whole grid",
        "",
        "`python -m experiments --tune-check` (experiments/tune_check.py). First the user's command,",
        f"`cpembed tune MODEL --job sts --budget {BUDGET}`, in a fresh process with an empty embedding cache",
        "(wall time includes the model load); then every candidate of the same search scored on the whole",
        "of SentEval STS-B dev and raw STS-B dev in one round (the mean of the two Spearmans; whitening",
        "fitted on all their texts). The target: the 10-minute choice within",
        f"{TARGET} of the whole grid's best on the whole dev set. Dev splits only.",
        "",
        "| model | dtype | 10-minute run | pairs per split, by round | its choice | its dev score (its pairs) | "
        "the choice on the whole dev | whole grid's best | best's score | gap (target <= 0.3) |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]
