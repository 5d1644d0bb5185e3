"""bfloat16 against float32 on STS: Spearman on the first N pairs of STS-B dev, both dtypes.

    python benchmarks/bf16_sts.py [--pairs 300] [--model smollm2-135m]

Writes docs/performance/bf16_sts.json; docs/PERFORMANCE.md shows it. Dev split only.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from performance import save_measurement

from cpembed import CPEncoder, load_model
from cpembed.bench import machine
from cpembed.compiled import keep_eager
from cpembed.evaluation.data import find_data_dir, load_stsb
from cpembed.evaluation.metrics import paired_cosine, spearman


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--data", default=None, help="SentEval 'downstream' folder (or CPEMBED_DATA).")
    parser.add_argument("--output", default="docs/PERFORMANCE.md")
    args = parser.parse_args()

    pairs = load_stsb(find_data_dir(args.data), "dev")
    first, second, gold = pairs.sentences1[: args.pairs], pairs.sentences2[: args.pairs], pairs.scores[: args.pairs]
    rows = {}
    for dtype in ("float32", "bfloat16"):
        encoder = CPEncoder(keep_eager(load_model(args.model, dtype, "cpu")), recipe=None)  # PromptEOL, its default CP
        started = time.perf_counter()
        score = 100 * spearman(paired_cosine(encoder.encode(first), encoder.encode(second)), gold)
        rows[dtype] = {"spearman": score, "seconds": time.perf_counter() - started, "cp": repr(encoder.cp)}
        print(f"{dtype}: {score:.2f} ({rows[dtype]['seconds']:.0f} s)", file=sys.stderr)
    result = {
        "machine": machine(),
        "model": args.model,
        "pairs": len(gold),
        "rows": rows,
        "command": "python " + " ".join(["benchmarks/bf16_sts.py", *sys.argv[1:]]),
    }
    target = save_measurement(Path(args.output), "bf16_sts", result)
    print(f"wrote {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
