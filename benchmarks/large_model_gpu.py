"""CP at the paper's model size on a GPU: plain, CP and the research code's naive two-pass CP side
by side in one process, then the paper's 31-setting grid in one pass against one plain pass.

The model has LLaMA-2-7B's shape (32 layers, width 4096, MLP 11008, 32 heads) and random weights,
in bfloat16: how fast a forward pass runs does not depend on the weights' values, so no 13 GB
download is needed to time it. The tokenizer is a saved one (--tokenizer DIR: the default model's,
49,152 words, from its cache folder); sentences are cut from the same reference text as `cpembed bench`.

    python benchmarks/large_model_gpu.py --tokenizer DIR [--count 512] [--rounds 3]

Writes docs/performance/gpu_one_engine.json and its section of docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from naive import NaiveCP
from performance import save_measurement
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

from cpembed import CPEncoder, LanguageModel
from cpembed.bench import machine, sentences_of
from cpembed.config import PAPER_CP
from cpembed.evaluation.search import PAPER_LAYERS, grid_settings

# (prompt, words per sentence, batch size): batch sizes a GPU user would pick, and the sentence
# lengths of STS (about 12 words) and of longer text.
CASES = [("prompteol", 12, 64), ("prompteol", 12, 256), ("prompteol", 40, 128), ("knowledge", 12, 128)]


def llama2_7b_shaped(tokenizer, layers: int = 32) -> LanguageModel:
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=layers,
        num_attention_heads=32,
        num_key_value_heads=32,
        max_position_embeddings=4096,
        rms_norm_eps=1e-5,
    )
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    return LanguageModel("random weights, LLaMA-2-7B shape", model, tokenizer)


def timed(run) -> tuple[float, float]:
    """Seconds and peak GPU memory (GiB) of `run()`, the GPU's queue drained before and after."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    run()
    torch.cuda.synchronize()
    return time.perf_counter() - started, torch.cuda.max_memory_allocated() / 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenizer", required=True, help="A saved tokenizer's folder.")
    parser.add_argument("--count", type=int, default=512, help="Sentences per measurement.")
    parser.add_argument("--rounds", type=int, default=3, help="Each configuration's best round counts.")
    parser.add_argument("--output", default="docs/PERFORMANCE.md")
    args = parser.parse_args()
    lm = llama2_7b_shaped(AutoTokenizer.from_pretrained(args.tokenizer))
    rows = []
    for prompt, words, batch in CASES:
        texts = sentences_of(words, args.count)
        plain, cp = CPEncoder(lm, prompt, cp=None), CPEncoder(lm, prompt, cp=PAPER_CP[prompt])
        settings = grid_settings(layers=[x for x in PAPER_LAYERS if x <= plain.output_layer])
        runs = {
            "plain": lambda e=plain, t=texts, b=batch: e.encode(t, batch_size=b),
            "CP": lambda e=cp, t=texts, b=batch: e.encode(t, batch_size=b),
            "CP naive": lambda e=cp, t=texts, b=batch: NaiveCP(e).encode(t, batch_size=b),
            "grid": lambda e=plain, t=texts, b=batch, s=settings: e.encode_settings(t, s, batch_size=b),
        }
        best = {}
        for round_ in range(args.rounds):
            for name in runs if round_ % 2 == 0 else reversed(runs):
                seconds, peak = timed(runs[name])
                if name not in best or seconds < best[name][0]:
                    best[name] = (seconds, peak)
        for name, (seconds, peak) in best.items():
            rows.append(
                dict(prompt=prompt, words=words, batch_size=batch, run=name, rate=args.count / seconds, peak_gib=peak)
            )
        print(prompt, words, batch, {n: round(args.count / s, 1) for n, (s, _) in best.items()}, flush=True)
    gpu = torch.cuda.get_device_name()
    result = {
        "command": "python benchmarks/large_model_gpu.py --tokenizer <the default model's cache folder>",
        "machine": machine() | {"gpu": gpu, "torch_cuda": f"{torch.__version__}, CUDA {torch.version.cuda}"},
        "model": lm.name,
        "count": args.count,
        "rounds": args.rounds,
        "settings": len(grid_settings()),
        "rows": rows,
    }
    save_measurement(Path(args.output), "gpu_one_engine", result)


if __name__ == "__main__":
    main()
