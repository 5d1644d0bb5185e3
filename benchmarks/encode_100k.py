"""100,000 sentences through `cpembed encode`, once, for real: wall time and resident memory over time.

    python benchmarks/encode_100k.py [--count 100000] [--model smollm2-135m]

The sentences are `cpembed.bench.sentences_of(12, count)`: 12 words each, no two alike (the
length of an average STS sentence). The command runs as a user runs it, in its own process,
writing a .npy file; its RSS is sampled every second, so a memory that grows with the input
shows as a slope. Writes docs/performance/encode_100k.json; docs/PERFORMANCE.md shows it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

from cpembed.bench import machine, sentences_of


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--output", default="docs/PERFORMANCE.md")
    args = parser.parse_args()

    from performance import save_measurement

    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "sentences.txt", Path(tmp) / "embeddings.npy"
        source.write_text("\n".join(sentences_of(12, args.count)) + "\n", encoding="utf-8")
        command = [sys.executable, "-m", "cpembed", "encode", str(source), "-o", str(target), "--model", args.model]
        started = time.perf_counter()
        process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        samples = []  # (seconds, RSS MB)
        watched = psutil.Process(process.pid)
        while process.poll() is None:
            try:
                samples.append((time.perf_counter() - started, watched.memory_info().rss / 2**20))
            except psutil.NoSuchProcess:
                break
            time.sleep(1.0)
        seconds = time.perf_counter() - started
        if process.returncode != 0:
            raise SystemExit(f"cpembed encode failed with exit code {process.returncode}")
        rows = np.load(target, mmap_mode="r").shape[0]
    if rows != args.count:
        raise SystemExit(f"expected {args.count} embeddings, found {rows}")
    rss = [mb for _, mb in samples]
    quarter = len(rss) // 4
    result = {
        "machine": machine(),
        "model": args.model,
        "count": args.count,
        "seconds": seconds,
        "rate": args.count / seconds,
        "peak_rss_mb": max(rss),
        # RSS in the second quarter of the run against the last: flat memory keeps them equal.
        "rss_second_quarter_mb": max(rss[quarter : 2 * quarter]),
        "rss_last_quarter_mb": max(rss[3 * quarter :]),
        "samples": samples[:: max(1, len(samples) // 200)],
        "command": "python " + " ".join(["benchmarks/encode_100k.py", *sys.argv[1:]]),
    }
    print(
        f"{args.count} sentences in {seconds:.0f} s ({result['rate']:.1f}/s), peak RSS {max(rss):.0f} MB",
        file=sys.stderr,
    )
    target = save_measurement(Path(args.output), "encode_100k", result)
    print(f"wrote {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
