"""`cpembed bench`: plain against CP (and the paper's grid against one plain pass) on your model and machine.

Every configuration runs in the same process, in rounds whose order alternates, and each keeps its
best round: on a shared, noisy machine the ratios hold even when the absolute rates drift. The
project's own measurements, against other engines, are the scripts in benchmarks/.
"""

from __future__ import annotations

import itertools
import platform
import threading
import time
from collections.abc import Callable

import psutil
import torch

from .encoder import CPEncoder
from .evaluation.controls import REFERENCE_SENTENCES
from .evaluation.search import PAPER_LAYERS, grid_settings

_WORDS = " ".join(s.rstrip(".") for s in REFERENCE_SENTENCES).split()


def sentences_of(words: int, count: int, first: int = 0) -> list[str]:
    """`count` different sentences of `words` words each, cut from the reference sentences at
    different places (sentence i starts 7 * i words in), so no two share an opening."""
    return [
        " ".join(itertools.islice(itertools.cycle(_WORDS), 7 * i, 7 * i + words)) + "."
        for i in range(first, first + count)
    ]


class PeakRSS:
    """The process's largest resident set size while the block runs, sampled every 5 ms."""

    def __enter__(self):
        self.process, self.peak, self.running = psutil.Process(), 0, True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.005)

    def __exit__(self, *_):
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def measure(run: Callable[[], object]) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of `run()`."""
    with PeakRSS() as rss:
        started = time.perf_counter()
        run()
        seconds = time.perf_counter() - started
    return seconds, rss.peak / 2**20


def machine() -> dict:
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": psutil.cpu_count(logical=True),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


def run(lm, prompts=("prompteol", "cot"), words: int = 12, count: int = 64, batch_size: int = 32, rounds: int = 2):
    """Per prompt: sentences/s of plain and of CP (the default setting for the model and prompt, or
    the paper's), the grid's 31 settings in one pass against one plain pass, and peak RSS."""
    rows = []
    texts = sentences_of(words, count)
    for prompt in prompts:
        plain = CPEncoder(lm, prompt, cp=None)
        cp = CPEncoder(lm, prompt)  # the defaults table's CP for this model and prompt
        settings = grid_settings(layers=[x for x in PAPER_LAYERS if x <= plain.output_layer])
        runs = {
            "plain": lambda e=plain: e.encode(texts, batch_size=batch_size),
            "CP": lambda e=cp: e.encode(texts, batch_size=batch_size),
            "grid": lambda e=plain, s=settings: e.encode_settings(texts, s, batch_size=batch_size),
        }
        best = {name: (float("inf"), 0.0) for name in runs}
        for round_ in range(rounds):
            for name in runs if round_ % 2 == 0 else reversed(runs):
                seconds, peak = measure(runs[name])
                best[name] = min(best[name], (seconds, peak))
        rows.append(
            {
                "prompt": prompt,
                "cp": repr(cp.cp),
                "plain_rate": count / best["plain"][0],
                "cp_rate": count / best["CP"][0],
                "grid_settings": len(settings),
                "grid_over_plain": best["grid"][0] / best["plain"][0],
                "peak_rss_mb": max(peak for _, peak in best.values()),
            }
        )
    return {
        "machine": machine(),
        "model": lm.name,
        "dtype": str(lm.dtype),
        "words": words,
        "count": count,
        "rows": rows,
    }


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        f"{result['model']}, {result['dtype']}, {result['count']} sentences of {result['words']} words; "
        f"{m['cpu']}, {m['threads']} torch threads.",
        "",
        "| prompt | plain (sent/s) | CP (sent/s) | CP / plain | grid / one plain pass | peak RSS (MB) | CP setting |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['prompt']} | {r['plain_rate']:.1f} | {r['cp_rate']:.1f} | {r['cp_rate'] / r['plain_rate']:.2f} "
            f"| {r['grid_over_plain']:.2f}x ({r['grid_settings']} settings) | {r['peak_rss_mb']:.0f} | {r['cp']} |"
        )
    return "\n".join(lines)
