"""The compiled path against eager: sentences/s of plain PromptEOL and of the model's default
recipe with the same loaded model's forwards switched between eager and compiled round by round
(so a busy machine slows both alike), and what compiling costs a fresh process with an empty and
with a filled graph cache; from these, the sentences after which compiling has paid for itself.

    python benchmarks/compiled.py [--model smollm2-135m] [--dtypes bfloat16,float32] [--rounds 6]

Writes docs/performance/compiled.json; docs/PERFORMANCE.md shows it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from performance import save_measurement
from scipy.stats import bootstrap
from side_by_side import dev_sentences

from cpembed import CPEncoder, load_model
from cpembed.bench import machine
from cpembed.compiled import compile_model, hook_free_modules


def rate(encoder: CPEncoder, sentences: list[str], batch_size: int) -> float:
    started = time.perf_counter()
    encoder.encode(sentences, batch_size=batch_size, show_progress_bar=False)
    return len(sentences) / (time.perf_counter() - started)


def speeds(args, dtype: str, sentences: list[str]) -> dict:
    """Per setting: the eager and compiled rates of each round, and the compiled/eager ratio
    (median of the rounds' ratios, 95% bootstrap interval of their geometric mean)."""
    lm = load_model(args.model, dtype, "cpu")
    encoders = {
        "plain PromptEOL": CPEncoder(lm, recipe=None, cp=None, postprocess=None, compile=False),
        "default recipe": CPEncoder(lm, compile=False),
    }
    modules = hook_free_modules(lm)
    eager = [m.forward for m in modules]
    compile_model(lm)
    compiled = [m.forward for m in modules]

    def use(forwards):
        for module, forward in zip(modules, forwards, strict=True):
            module.forward = forward

    warm, timed = sentences[: args.batch_size * 2], sentences[args.batch_size * 2 :][: args.count]
    for forwards in (eager, compiled):  # the first calls (and the compiling) are not timed
        use(forwards)
        for encoder in encoders.values():
            encoder.encode(warm, batch_size=args.batch_size, show_progress_bar=False)
    result = {}
    for name, encoder in encoders.items():
        rounds = {"eager": [], "compiled": []}
        for _ in range(args.rounds):
            for mode, forwards in (("eager", eager), ("compiled", compiled)):
                use(forwards)
                rounds[mode].append(rate(encoder, timed, args.batch_size))
        ratios = np.array(rounds["compiled"]) / np.array(rounds["eager"])
        interval = bootstrap((np.log(ratios),), np.mean, random_state=0).confidence_interval
        result[name] = rounds | {
            "ratio": float(np.median(ratios)),
            "ratio low": float(np.exp(interval.low)),
            "ratio high": float(np.exp(interval.high)),
        }
        print(f"{dtype} {name}: compiled/eager {result[name]['ratio']:.2f}", file=sys.stderr)
    return result


def compile_cost(args, dtype: str, cache: str) -> float:
    """Seconds a fresh process spends compiling with graph cache `cache`: its first compiled call
    of the default recipe less the same call eager."""
    command = [sys.executable, __file__, "--cost-of", dtype, "--model", args.model, "--raw", args.raw or ""]
    environment = os.environ | {"TORCHINDUCTOR_CACHE_DIR": cache}
    output = subprocess.run(command, env=environment, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])["seconds"]


def cost_child(args) -> None:
    sentences, _ = dev_sentences(args.raw or None)
    batch = sentences[: args.batch_size]
    encoder = CPEncoder(load_model(args.model, args.cost_of, "cpu"), compile=False)
    encoder.encode(batch, batch_size=args.batch_size)  # first-call costs that are not compiling
    eager = rate(encoder, batch, args.batch_size)
    compile_model(encoder.lm)
    compiled = rate(encoder, batch, args.batch_size)
    print(json.dumps({"seconds": len(batch) / compiled - len(batch) / eager}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--dtypes", default="bfloat16,float32")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--count", type=int, default=512, help="Sentences timed per round.")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--raw", default=None, help="Raw STS-B folder (or CPEMBED_RAW_STSB).")
    parser.add_argument("--output", default="docs/PERFORMANCE.md")
    parser.add_argument("--cost-of", help=argparse.SUPPRESS)  # the child process of compile_cost
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.cost_of:
        return cost_child(args)

    sentences, _ = dev_sentences(args.raw)
    rows = {}
    for dtype in args.dtypes.split(","):
        with tempfile.TemporaryDirectory() as cache:
            cold, warm = compile_cost(args, dtype, cache), compile_cost(args, dtype, cache)
        rows[dtype] = {"speeds": speeds(args, dtype, sentences), "compile seconds": {"cold": cold, "warm": warm}}
        recipe = rows[dtype]["speeds"]["default recipe"]
        eager, compiled = np.median(recipe["eager"]), np.median(recipe["compiled"])
        saved = 1 / eager - 1 / compiled  # seconds per sentence
        rows[dtype]["break-even"] = {k: (s / saved if saved > 0 else None) for k, s in (("cold", cold), ("warm", warm))}
        print(f"{dtype}: compiling costs {cold:.1f} s cold, {warm:.1f} s warm", file=sys.stderr)
    result = {
        "machine": machine(),
        "torch": torch.__version__,
        "model": args.model,
        "threads": args.threads,
        "batch_size": args.batch_size,
        "sentences": args.count,
        "rounds": args.rounds,
        "rows": rows,
        "command": "python " + " ".join(["benchmarks/compiled.py", *sys.argv[1:]]),
    }
    print(f"wrote {save_measurement(Path(args.output), 'compiled', result)}", file=sys.stderr)


if __name__ == "__main__":
    main()
