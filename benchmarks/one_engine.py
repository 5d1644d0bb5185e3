"""The grid search before and after the one-engine redesign, side by side in one run.

    git worktree add /tmp/cpembed-before 20d35ee      # the commit before the redesign
    python benchmarks/one_engine.py --before /tmp/cpembed-before [--model smollm2-135m] [--rounds 1]

Runs `cpembed search grid` (the paper's 31 settings on SentEval STS-B dev, default dtype, every
flag at its default) from each source tree in a fresh process, alternating, and keeps each
tree's best wall time. Both must pick the same setting with the same Spearman: a redesign that
changes the numbers is a bug, not a speed-up. Writes docs/performance/one_engine.json and the
section of docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from performance import save_measurement

from cpembed.bench import machine

REPO = Path(__file__).resolve().parents[1]


def run_grid(tree: Path, model: str, data: str | None) -> dict:
    """One `cpembed search grid` from `tree`'s sources: wall seconds and the best setting it prints."""
    command = [sys.executable, "-m", "cpembed", "search", "grid", "--model", model]
    command += ["--data", data] if data else []
    env = os.environ | {"PYTHONPATH": str(tree / "src")}
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and "baseline" not in line]
    scores = [(float(cells[2]), cells[1]) for cells in (re.split(r"\s*\|\s*", row) for row in rows[1:])]
    best_score, best = max(scores)
    return {"seconds": seconds, "best": best, "spearman": best_score, "output": done.stdout}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, type=Path, help="A checkout of the commit before the redesign.")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--data", help="SentEval 'downstream' folder (default: where cpembed finds it).")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--output", default=str(REPO / "docs" / "PERFORMANCE.md"))
    args = parser.parse_args()
    trees = {"before": args.before.resolve(), "after": REPO}
    best: dict[str, dict] = {}
    for round_ in range(args.rounds):
        for name in trees if round_ % 2 == 0 else reversed(trees):
            print(f"round {round_ + 1}: {name} ...", file=sys.stderr, flush=True)
            found = run_grid(trees[name], args.model, args.data)
            print(f"  {found['seconds']:.1f} s, best {found['best']} {found['spearman']:.2f}", file=sys.stderr)
            if name not in best or found["seconds"] < best[name]["seconds"]:
                best[name] = found
    for found in best.values():
        found.pop("output")
    result = {
        "command": f"python benchmarks/one_engine.py --before <checkout of 20d35ee> --rounds {args.rounds}",
        "machine": machine(),
        "model": args.model,
        "runs": best,
    }
    save_measurement(Path(args.output), "one_engine", result)


if __name__ == "__main__":
    main()
