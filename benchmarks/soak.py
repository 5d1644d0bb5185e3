"""Soak of `cpembed serve`: a steady share of its measured capacity for a long time, watching memory and latency.

    python benchmarks/soak.py [--minutes 30] [--share 0.5] [--model smollm2-135m]

Starts `cpembed serve` as its own process (the command users run, default recipe) on a free
loopback port. First it measures capacity: requests of 1-4 sentences at concurrency 32 for
--capacity-seconds, the served requests/s. Then it sends requests at --share of that rate, at
evenly spaced times (open loop: a slow answer does not slow the arrivals), for --minutes, and
samples the server's resident memory every 10 s. Reports, per window of --window-minutes: the
requests, errors (anything but a 200 with every row), refusals (503 with Retry-After), p50/p99 latency and the
peak RSS; and overall whether RSS stayed flat (last window's peak against the first's) and p99
stable. Writes docs/performance/soak.json, soak.png and its PERFORMANCE.md section.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psutil
from load_check import _requests, call  # the load check's mix of 1-4 sentences and its request
from performance import save_measurement

from cpembed.bench import machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(model: str, port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "cpembed", "serve", "--model", model, "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}: {server.stderr.read()[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=5) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(1)
    server.kill()
    raise SystemExit("the server did not answer /health within 10 minutes")


def _capacity(url: str, model: str, seconds: float, seed: int) -> float:
    """Served requests/s at concurrency 32, closed loop, for `seconds`."""
    requests = iter(_requests(1_000_000, seed))
    lock, served, stop = threading.Lock(), [0], time.monotonic() + seconds

    def worker() -> None:
        while time.monotonic() < stop:
            with lock:
                texts = next(requests)
            if call(url, model, texts, timeout=120)[0] == "served":
                with lock:
                    served[0] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return served[0] / (time.monotonic() - started)


def _soak(
    url: str, model: str, pid: int, rate: float, seconds: float, seed: int
) -> tuple[list[dict], list[tuple[float, float]]]:
    """Requests at `rate` per second for `seconds`: each one's start, outcome and latency; RSS samples."""
    count = int(rate * seconds)
    requests = _requests(count, seed + 1)
    process = psutil.Process(pid)
    memory: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            memory.append((time.monotonic() - started, process.memory_info().rss / 2**20))
            done.wait(10)

    records: list[dict] = []

    def fire(index: int) -> None:
        outcome, latency = call(url, model, requests[index], timeout=120)
        records.append({"at": index / rate, "outcome": outcome, "latency": latency})

    started = time.monotonic()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with ThreadPoolExecutor(256) as pool:
        for index in range(count):
            delay = started + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(fire, index)
    done.set()
    sampler.join()
    memory.append((time.monotonic() - started, process.memory_info().rss / 2**20))
    return sorted(records, key=lambda r: r["at"]), memory


def _windows(records: list[dict], memory: list[tuple[float, float]], window: float) -> list[dict]:
    rows = []
    end = max(r["at"] for r in records)
    for start in np.arange(0, end + 1e-9, window):
        mine = [r for r in records if start <= r["at"] < start + window]
        if not mine:
            continue
        latencies = np.array([r["latency"] for r in mine if r["outcome"] == "served"]) * 1000
        rss = [m for t, m in memory if start <= t < start + window] or [memory[-1][1]]
        rows.append(
            {
                "minutes": [round(start / 60, 1), round((start + window) / 60, 1)],
                "requests": len(mine),
                "errors": sum(r["outcome"] == "error" for r in mine),
                "refused": sum(r["outcome"] == "refused" for r in mine),
                "p50_ms": float(np.percentile(latencies, 50)) if len(latencies) else None,
                "p99_ms": float(np.percentile(latencies, 99)) if len(latencies) else None,
                "peak_rss_mb": max(rss),
            }
        )
    return rows


def _plot(memory: list[tuple[float, float]], windows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True, layout="constrained")
    top.plot([t / 60 for t, _ in memory], [m for _, m in memory])
    top.set_ylabel("server RSS (MiB)")
    top.set_ylim(0, 1.15 * max(m for _, m in memory))  # the line stays clear of the frame
    middle = [sum(w["minutes"]) / 2 for w in windows]
    bottom.plot(middle, [w["p99_ms"] for w in windows], "o-", label="p99")
    bottom.plot(middle, [w["p50_ms"] for w in windows], "o-", label="p50")
    bottom.set_ylabel("latency (ms)")
    bottom.set_xlabel("minutes")
    bottom.set_ylim(bottom=0)
    bottom.legend()
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--share", type=float, default=0.5, help="Of the measured capacity.")
    parser.add_argument("--capacity-seconds", type=float, default=60.0)
    parser.add_argument("--window-minutes", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="docs/PERFORMANCE.md")
    args = parser.parse_args()

    port = _free_port()
    server = _start_server(args.model, port)
    url = f"http://127.0.0.1:{port}"
    try:
        for texts in _requests(16, args.seed):  # warm-up: template openings, kernels
            call(url, args.model, texts)
        capacity = _capacity(url, args.model, args.capacity_seconds, args.seed)
        rate = args.share * capacity
        print(f"capacity {capacity:.2f} requests/s; soaking at {rate:.2f} for {args.minutes:g} min", file=sys.stderr)
        records, memory = _soak(url, args.model, server.pid, rate, args.minutes * 60, args.seed)
    finally:
        server.terminate()
        server.wait(timeout=120)
    windows = _windows(records, memory, args.window_minutes * 60)
    latencies = np.array([r["latency"] for r in records if r["outcome"] == "served"]) * 1000
    result = {
        "machine": machine(),
        "model": args.model,
        "recipe": "the model's default (cpembed serve with no embedding flags)",
        "capacity_requests_per_s": capacity,
        "share": args.share,
        "rate_requests_per_s": rate,
        "minutes": args.minutes,
        "requests": len(records),
        "errors": sum(r["outcome"] == "error" for r in records),
        "refused": sum(r["outcome"] == "refused" for r in records),
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
        "rss_mb": {"first": memory[0][1], "peak": max(m for _, m in memory), "last": memory[-1][1]},
        "windows": windows,
        "command": "python " + " ".join(["benchmarks/soak.py", *sys.argv[1:]]),
    }
    folder = Path(args.output).parent / "performance"
    title = f"cpembed serve, {args.model}: {rate:.2f} requests/s ({args.share:.0%} of capacity), {args.minutes:g} min"
    _plot(memory, windows, folder / "soak.png", title)
    target = save_measurement(Path(args.output), "soak", result)
    print(f"wrote {target} and {folder / 'soak.png'}", file=sys.stderr)


if __name__ == "__main__":
    main()
