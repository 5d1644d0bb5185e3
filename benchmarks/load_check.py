"""Load check of `cpembed serve`: N requests at concurrency C on loopback, with and without batching.

    python benchmarks/load_check.py [--requests 1000] [--concurrency 32] [--model smollm2-135m] [--unbatched]

Starts the service in this process on a free loopback port with its default limits, fires the
requests from C threads, and stops by itself. Counts the requests served, those refused early
(503 with Retry-After, the admission by queue time) and errors; prints requests/s, sentences/s
and latency percentiles of the served ones. `--unbatched` runs the same load again with each
request alone, side by side. Writes docs/performance/service.json and its PERFORMANCE.md section.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from performance import save_measurement

from cpembed import CPEncoder, load_model
from cpembed.bench import machine, sentences_of
from cpembed.compiled import keep_eager
from cpembed.service import BackgroundServer, Limits, create_app


def _requests(n: int, seed: int = 0) -> list[list[str]]:
    """n requests of 1-4 sentences of 6-24 words, the same for every run."""
    rng = random.Random(seed)
    pool = [s for words in (6, 12, 24) for s in sentences_of(words, 40)]
    return [rng.sample(pool, rng.randint(1, 4)) for _ in range(n)]


def call(url: str, model: str, texts: list[str], timeout: float = 600) -> tuple[str, float]:
    """One embeddings request: its outcome ("served", "refused": a 503 with Retry-After, or "error")
    and its latency in seconds."""
    body = json.dumps({"model": model, "input": texts}).encode()
    request = urllib.request.Request(url + "/v1/embeddings", body, {"Content-Type": "application/json"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            whole = response.status == 200 and len(json.loads(response.read())["data"]) == len(texts)
            outcome = "served" if whole else "error"
    except urllib.error.HTTPError as error:
        with error:
            outcome = "refused" if error.code == 503 and error.headers.get("Retry-After") else "error"
    except OSError:
        outcome = "error"
    return outcome, time.perf_counter() - started


def _load(url: str, requests: list[list[str]], concurrency: int) -> dict:
    """Every request once; a 503 counts as refused early (the client would retry after Retry-After),
    anything else that is not a 200 with the right rows as an error."""
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        outcomes = list(pool.map(lambda texts: call(url, "served", texts), requests))
    seconds = time.perf_counter() - started
    served = [
        (texts, latency) for texts, (outcome, latency) in zip(requests, outcomes, strict=True) if outcome == "served"
    ]
    latencies = np.array([latency for _, latency in served])
    refused = np.array([latency for outcome, latency in outcomes if outcome == "refused"])
    return {
        "seconds": seconds,
        "served": len(served),
        "refused": len(refused),
        "errors": sum(outcome == "error" for outcome, _ in outcomes),
        "requests_per_s": len(served) / seconds,
        "sentences_per_s": sum(len(texts) for texts, _ in served) / seconds,
        **{f"p{q}_ms": float(np.percentile(latencies, q) * 1000) for q in (50, 95, 99)},
        "refusal_p99_ms": float(np.percentile(refused, 99) * 1000) if len(refused) else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-queue-seconds", type=float, default=Limits.max_queue_seconds)
    parser.add_argument("--unbatched", action="store_true", help="Also run the load with each request alone.")
    parser.add_argument("--dtype", default="auto", help="The service's own default: auto.")
    parser.add_argument("--output", default="docs/PERFORMANCE.md")
    args = parser.parse_args()

    lm = keep_eager(load_model(args.model, args.dtype, "cpu"))
    encoder = CPEncoder(lm, recipe=None)  # as measured: PromptEOL + its CP
    requests = _requests(args.requests)
    runs = {}
    for label, batch in (("batched", 32), ("one by one", 1))[: 2 if args.unbatched else 1]:
        limits = Limits(max_batch_size=batch, max_wait_ms=5.0, max_queue_seconds=args.max_queue_seconds)
        app = create_app(encoder, "served", limits)
        with BackgroundServer(app) as url:
            _load(url, requests[:8], args.concurrency)  # warm-up
            runs[label] = _load(url, requests, args.concurrency)
        print(f"{label:>10}: " + ", ".join(f"{k} {v}" for k, v in runs[label].items()), file=sys.stderr)
    result = {
        "machine": machine(),
        "model": args.model,
        "cp": repr(encoder.cp),
        "dtype": str(encoder.lm.dtype).removeprefix("torch."),
        "requests": args.requests,
        "concurrency": args.concurrency,
        "max_queue_seconds": args.max_queue_seconds,
        "sentences": sum(len(r) for r in requests),
        "runs": runs,
        "gain": runs["batched"]["sentences_per_s"] / runs["one by one"]["sentences_per_s"] if args.unbatched else None,
        "command": "python " + " ".join(["benchmarks/load_check.py", *sys.argv[1:]]),
    }
    target = save_measurement(Path(args.output), "service", result)
    print(f"wrote {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
