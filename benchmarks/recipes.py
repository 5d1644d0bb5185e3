"""What each recipe costs: sentences/s of plain PromptEOL, "fast" and "best" side by side.

    python benchmarks/recipes.py [--model smollm2-135m] [--dtype bfloat16] [--sentences 256] [--rounds 3]

One loaded model, in the recipes' dtype, encodes the same sentences (the first N of raw STS-B dev,
or cpembed's built-in sentences where that data is not beside the repo) with each encoder in
turn, round after round, so that whatever else the machine does falls on all of them alike; the
rate of each is its median over the rounds. Writes docs/performance/recipes-<model>.json in the
recipes' first dtype, which the recipes' `about` lines quote and docs/PERFORMANCE.md and
docs/RESULTS.md ("The defaults") show; in another dtype (`--dtype`), the recipes fitted for it
only, into recipes-<model>-<dtype>.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from performance import save_measurement

from cpembed import CPEncoder, load_model
from cpembed.bench import machine
from cpembed.compiled import keep_eager
from cpembed.config import MODEL_RECIPES, reported_dtype
from cpembed.evaluation.data import DataNotFoundError, find_raw_stsb_dir, load_raw_stsb
from cpembed.postprocess import BUILT_IN_SENTENCES


def sentences(n: int) -> tuple[list[str], str]:
    try:
        dev = load_raw_stsb(find_raw_stsb_dir(), "dev")
    except DataNotFoundError:
        return (BUILT_IN_SENTENCES * (n // len(BUILT_IN_SENTENCES) + 1))[:n], "built-in sentences"
    return (dev.sentences1 + dev.sentences2)[:n], "raw STS-B dev"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--sentences", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--dtype", help="Default: the best recipe's first dtype.")
    parser.add_argument("--output", default="docs/PERFORMANCE.md")
    args = parser.parse_args()

    primary = reported_dtype(args.model)
    dtype = args.dtype or primary
    recipes = {name: r for name, r in MODEL_RECIPES[args.model].items() if not r.dtypes or dtype in r.dtypes}
    lm = keep_eager(load_model(args.model, dtype, "cpu"))  # eager, as every earlier measurement
    encoders = {"plain PromptEOL": CPEncoder(lm, cp=None)}
    # A recipe that is another's (a model whose best is already one prompt) is measured once.
    same = {name: next(n for n in recipes if recipes[n] == recipes[name]) for name in recipes}
    encoders |= {name: CPEncoder(lm, recipe=name) for name in recipes if same[name] == name}
    texts, source = sentences(args.sentences)
    for encoder in encoders.values():
        encoder.encode(texts[: args.batch_size], batch_size=args.batch_size)  # warm-up: template openings, kernels
    rates = {name: [] for name in encoders}
    for _ in range(args.rounds):
        for name, encoder in encoders.items():
            started = time.perf_counter()
            encoder.encode(texts, batch_size=args.batch_size)
            rates[name].append(len(texts) / (time.perf_counter() - started))
    rate = {name: statistics.median(r) for name, r in rates.items()}
    rate |= {name: rate[first] for name, first in same.items()}
    for name in rate:
        print(f"{name}: {rate[name]:.1f} sentences/s", file=sys.stderr)
    result = {
        "machine": machine(),
        "model": args.model,
        "dtype": str(lm.dtype).removeprefix("torch."),
        "sentences": len(texts),
        "source": source,
        "batch_size": args.batch_size,
        "rounds": rates,
        "rates": rate,
        "relative": {name: rate[name] / rate["plain PromptEOL"] for name in rate},
        "recipes": {name: encoders[same[name]].describe_recipe() for name in recipes},
        "command": "python " + " ".join(["benchmarks/recipes.py", *sys.argv[1:]]),
    }
    name = f"recipes-{args.model}" + ("" if dtype == primary else f"-{dtype}")
    target = save_measurement(Path(args.output), name, result)
    print(f"wrote {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
