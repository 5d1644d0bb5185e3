"""Load check of `cpembed serve`: N requests at concurrency C on loopback, with and without batching.

    python benchmarks/load_check.py [--requests 200] [--concurrency 16] [--model smollm2-135m]

Starts the service in this process on a free loopback port, fires the requests from C threads,
and stops by itself. Runs the same load twice, side by side: dynamic batching on (batches of up
to 32 sentences gathered across requests) and off (each request alone). Prints requests/s,
sentences/s and latency percentiles, and writes docs/performance/service.json, which
docs/PERFORMANCE.md includes when `cpembed bench` (or this script) renders it.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from performance import save_measurement

from cpembed import CPEncoder, load_model
from cpembed.bench import machine, sentences_of
from cpembed.service import BackgroundServer, Limits, create_app


def _requests(n: int, seed: int = 0) -> list[list[str]]:
    """n requests of 1-4 sentences of 6-24 words, the same for every run."""
    rng = random.Random(seed)
    pool = [s for words in (6, 12, 24) for s in sentences_of(words, 40)]
    return [rng.sample(pool, rng.randint(1, 4)) for _ in range(n)]


def _load(url: str, requests: list[list[str]], concurrency: int) -> dict:
    def call(texts: list[str]) -> float:
        body = json.dumps({"model": "served", "input": texts}).encode()
        request = urllib.request.Request(url + "/v1/embeddings", body, {"Content-Type": "application/json"})
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=600) as response:
            assert response.status == 200 and len(json.loads(response.read())["data"]) == len(texts)
        return time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = np.array(list(pool.map(call, requests)))
    seconds = time.perf_counter() - started
    sentences = sum(len(r) for r in requests)
    return {
        "seconds": seconds,
        "requests_per_s": len(requests) / seconds,
        "sentences_per_s": sentences / seconds,
        **{f"p{q}_ms": float(np.percentile(latencies, q) * 1000) for q in (50, 95, 99)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--output", default="docs/PERFORMANCE.md")
    args = parser.parse_args()

    encoder = CPEncoder(load_model(args.model, "float32", "cpu"))
    requests = _requests(args.requests)
    runs = {}
    for label, batch in (("batched", 32), ("one by one", 1)):
        app = create_app(encoder, "served", Limits(max_batch_size=batch, max_wait_ms=5.0))
        with BackgroundServer(app) as url:
            _load(url, requests[:8], args.concurrency)  # warm-up
            runs[label] = _load(url, requests, args.concurrency)
        print(f"{label:>10}: " + ", ".join(f"{k} {v:.1f}" for k, v in runs[label].items()), file=sys.stderr)
    result = {
        "machine": machine(),
        "model": args.model,
        "cp": repr(encoder.cp),
        "requests": args.requests,
        "concurrency": args.concurrency,
        "sentences": sum(len(r) for r in requests),
        "runs": runs,
        "gain": runs["batched"]["sentences_per_s"] / runs["one by one"]["sentences_per_s"],
        "command": "python " + " ".join(["benchmarks/load_check.py", *sys.argv[1:]]),
    }
    target = save_measurement(Path(args.output), "service", result)
    print(f"batching gain: {result['gain']:.2f}x; wrote {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
