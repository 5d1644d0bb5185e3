"""Where the time goes: torch.profiler over the paper's grid in one pass (PromptEOL, default model).

    python benchmarks/profile_grid.py [--sentences 32] [--threads 2]

Prints the operators that take the most CPU time. docs/performance/NOTES.md quotes its shares.
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from cpembed import CPEncoder, load_model
from cpembed.benchmark import sentences_of
from cpembed.search import grid_settings
from cpembed.variants import encode_variants


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--sentences", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    encoder = CPEncoder(load_model(args.model, "float32", "cpu"), cp=None)
    texts = sentences_of(15, args.sentences)
    encode_variants(encoder, texts[:4], grid_settings(), batch_size=16)  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        encode_variants(encoder, texts, grid_settings(), batch_size=16)
    print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=8))


if __name__ == "__main__":
    main()
