"""Rows per second of the Ray engine with 1 and 2 workers, and projections from them.

    python benchmarks/ray_scaling.py [--rows 400] [--model smollm2-135m]

Embeds the same generated corpus on a local Ray cluster with one worker and with two (one CPU
and one torch thread each), then projects the time for 10M and 1B sentences on N nodes from the
measured per-worker rate. Writes docs/performance/ray.json; docs/PERFORMANCE.md shows it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from performance import save_measurement

from cpembed.bench import machine, sentences_of
from cpembed.distributed import embed_files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--output", default="docs/PERFORMANCE.md")
    args = parser.parse_args()

    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    runs = {}
    with tempfile.TemporaryDirectory() as folder:
        corpus = Path(folder) / "corpus.txt"
        corpus.write_text("\n".join(s for w in (8, 16, 24) for s in sentences_of(w, args.rows // 3 + 1)) + "\n")
        rows = sum(1 for _ in corpus.open())
        for workers in (1, 2):
            summary = embed_files(
                [str(corpus)],
                str(Path(folder) / f"out{workers}"),
                workers=workers,
                cpus_per_worker=1,
                rows_per_shard=25,
                model=args.model,
            )
            per_worker = sorted(summary.per_worker_rows_per_second.values())
            runs[workers] = {"rows": rows, "seconds": summary.seconds, "rows_per_s": summary.rows_per_second}
            runs[workers]["per_worker_rows_per_s"] = per_worker
            print(
                f"{workers} worker(s): {summary.rows_per_second:.2f} rows/s, per worker {per_worker}", file=sys.stderr
            )
    ray.shutdown()
    result = {
        "machine": machine(),
        "model": args.model,
        "runs": runs,
        "command": "python " + " ".join(["benchmarks/ray_scaling.py", *sys.argv[1:]]),
    }
    target = save_measurement(Path(args.output), "ray", result)
    print(f"wrote {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
