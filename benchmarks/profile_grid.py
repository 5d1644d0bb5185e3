"""Where the time goes: torch.profiler over the paper's grid in one pass, beside one plain pass.

    python benchmarks/profile_grid.py [--model smollm2-135m] [--prompt prompteol]
        [--sentences 32] [--words 12] [--threads 2] [--dev-sentences 2909]

Prints the operators that take the most CPU time in the grid pass, then for the plain pass and
the grid pass (same sentences, one process): seconds, the floating-point operations the
profiler counts, and the rate they ran at, beside the rate a bare matrix product reaches on this
machine. A pass near that rate is bound by arithmetic, and only computing fewer token-layers can
make it faster. It ends with what the rates predict for the whole STS-B dev grid (2,909 unique
sentences). docs/PERFORMANCE.md quotes its numbers.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from cpembed import CPEncoder, load_model
from cpembed.bench import sentences_of
from cpembed.evaluation.search import grid_settings


def matmul_peak(hidden: int, intermediate: int, tokens: int = 800, repeats: int = 20) -> float:
    """GFLOP/s of a bare float32 product the size of one MLP projection over `tokens` tokens."""
    a, b = torch.randn(tokens, hidden), torch.randn(hidden, intermediate)
    for _ in range(3):
        a @ b
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * tokens * hidden * intermediate * repeats / (time.perf_counter() - started) / 1e9


def profiled(encoder: CPEncoder, texts: list[str], settings: list):
    """(seconds, GFLOP counted, the profiler) of one `encode_settings` pass."""
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as profiler:
        started = time.perf_counter()
        encoder.encode_settings(texts, settings, batch_size=16)
        seconds = time.perf_counter() - started
    flops = sum(event.flops for event in profiler.key_averages() if event.flops)
    return seconds, flops / 1e9, profiler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--prompt", default="prompteol")
    parser.add_argument("--sentences", type=int, default=32)
    parser.add_argument("--words", type=int, default=12, help="STS-B dev's unique sentences average about 13 words")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dev-sentences", type=int, default=2909, help="unique sentences of STS-B dev")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    encoder = CPEncoder(load_model(args.model, "float32", "cpu"), prompt=args.prompt, cp=None)
    texts = sentences_of(args.words, args.sentences)
    encoder.encode_settings(texts[:4], grid_settings(), batch_size=16)  # warm-up
    config = encoder.lm.model.config
    peak = matmul_peak(config.hidden_size, config.intermediate_size)
    rows = {}
    for name, settings in (("plain", [None]), ("grid", grid_settings())):
        rows[name] = profiled(encoder, texts, settings)
    print(rows["grid"][2].key_averages().table(sort_by="self_cpu_time_total", row_limit=8))
    print(f"{args.model}, {args.prompt}, {args.sentences} sentences of {args.words} words, {args.threads} threads")
    print(f"bare matrix product: {peak:.1f} GFLOP/s")
    for name, (seconds, gflop, _) in rows.items():
        print(
            f"{name:5}: {seconds:6.1f} s, {args.sentences / seconds:5.2f} sentences/s, "
            f"{gflop / args.sentences:5.2f} GFLOP per sentence, {gflop / seconds:5.1f} GFLOP/s "
            f"({gflop / seconds / peak:.0%} of the bare product)"
        )
    ratio = rows["grid"][0] / rows["plain"][0]
    predicted = args.dev_sentences * rows["grid"][0] / args.sentences
    print(f"grid / plain: {ratio:.2f}x; the STS-B dev grid at this rate: {predicted / 60:.1f} min")


if __name__ == "__main__":
    main()
