"""The measurements behind docs/PERFORMANCE.md: each benchmarks/ script keeps its result as
docs/performance/<name>.json and `render_markdown` draws the page from all of them and
docs/performance/NOTES.md. `python benchmarks/performance.py` draws it again without measuring.

Sections whose JSON came from an engine since removed (the packed engine) are kept as measured,
and say so.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cpembed import engine
from cpembed.config import PAPER_CP
from cpembed.encoder import CPEncoder


def encode_opening_per_batch(encoder: CPEncoder, texts: list[str], batch_size: int):
    """`encoder.encode` as the engine ran before the template-opening cache: every batch computes
    its template's opening itself. For measuring what the cache is worth."""
    real = engine._cached_opening
    engine._cached_opening = lambda lm, template, ids: (0, [])
    try:
        return encoder.encode(texts, batch_size=batch_size)
    finally:
        engine._cached_opening = real


# -- the report --------------------------------------------------------------------------------


def _rate(result: dict, prompt: str, words: int, batch_size: int, name: str) -> float | None:
    for t in result["timings"]:
        if (t["prompt"], t["words"], t["batch_size"], t["name"]) == (prompt, words, batch_size, name):
            return t["rate"]
    return None


def save_measurement(path: Path, name: str, result: dict) -> Path:
    """Keep `result` as performance/<name>.json beside `path` (docs/PERFORMANCE.md), then render it."""
    folder = path.parent / "performance"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    return render_markdown(path)


# Measured with the packed and padded engines that the one engine replaced; the scripts that made
# them went with those engines, and their numbers stay as they were measured.
BEFORE_ONE_ENGINE = {  # the file, and the heading of a section that has none of its own
    "bench.json": "Plain, CP and naive CP side by side",
    "prefix_cache.json": "",
    "prefix_cache_padded.json": "",
    "engines.json": "",
    "gpu.json": "",
}
BEFORE_ONE_ENGINE_NOTE = (
    "*Measured before the one-engine redesign (commit 20d35ee), with the packed and padded engines it "
    "replaced; kept as measured, no script of today reproduces it.*"
)


def sections(folder: Path) -> tuple:
    """Each measurement the page can draw, by file name, and what draws its section, in the page's order."""
    return (
        *((f.name, _side_by_side_lines) for f in sorted(folder.glob("side_by_side-*.json"))),
        *((f.name, _recipes_lines) for f in sorted(folder.glob("recipes-*.json"))),
        ("encode_100k.json", _encode_100k_lines),
        ("one_engine.json", _one_engine_lines),
        ("bench.json", _bench_lines),
        ("service.json", _service_lines),
        ("soak.json", _soak_lines),
        ("ray.json", _ray_lines),
        ("bf16_sts.json", _bf16_sts_lines),
        ("compiled.json", _compiled_lines),
        ("prefix_cache.json", _prefix_cache_lines),
        ("prefix_cache_padded.json", _prefix_cache_lines),
        ("engines.json", _engines_lines),
        ("gpu_one_engine.json", _gpu_one_engine_lines),
        ("gpu.json", _gpu_lines),
    )


def render_markdown(path: Path) -> Path:
    """docs/PERFORMANCE.md from the measurements kept beside it, one section per JSON, each made by
    a script in benchmarks/ (the script's command is in its section)."""
    folder = path.parent / "performance"
    lines = ["# Performance", ""]
    if (folder / "NOTES.md").is_file():  # what the numbers alone do not say, written by whoever ran them
        lines += [(folder / "NOTES.md").read_text().strip(), ""]
    for name, draw in sections(folder):
        if (folder / name).is_file():
            section = draw(json.loads((folder / name).read_text()))
            if name in BEFORE_ONE_ENGINE:
                if not section[0].startswith("## "):
                    section[0:0] = [f"## {BEFORE_ONE_ENGINE[name]}", ""]
                section[2:2] = [BEFORE_ONE_ENGINE_NOTE, ""]
            lines += section
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _side_by_side_lines(result: dict) -> list[str]:
    m, ceiling = result["machine"], result["ceiling"]
    rate = {r["engine"]: r["rate"] for r in result["rows"]}
    lines = [
        f"## Side by side: {result['model']} against llama.cpp and all-MiniLM-L6-v2",
        "",
        f"`{result['command']}` on {m['cpu']}, {m['threads']} threads: the first {result['count']} unique "
        f"sentences of raw STS-B dev in the PromptEOL template (MiniLM takes them bare), batch {result['batch_size']}, "
        "each engine in a process of its own (peak RSS includes loading the model). Spearman: all 1,500 raw "
        "STS-B dev pairs. CP: the shipped PromptEOL default.",
        "",
        "| engine | sentences/s | vs llama.cpp | peak RSS (MB) | Spearman (raw dev) | min cosine to float32 |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        versus = f"{r['rate'] / rate['llama.cpp']:.2f}x" if "llama.cpp" in rate else "—"
        cosine = f"{r['min_cosine_to_float32']:.4f}" if "min_cosine_to_float32" in r else "—"
        lines.append(
            f"| {r['engine']} | {r['rate']:.1f} | {versus} | {r['peak_rss_mb']:.0f} | {r['spearman']:.2f} | {cosine} |"
        )
    lines += [
        "",
        f"The ceiling: {ceiling['real_tokens_per_sentence']:.1f} real tokens per sentence after the template's "
        f"cached opening, {ceiling['gflop_per_sentence']:.2f} GFLOP of matrix products each; bare products of the "
        "model's shapes (the same tokens per batch) run at "
        + ", ".join(
            f"{ceiling[d]['gflops']:.0f} GFLOP/s in {d} ({ceiling[d]['sentences_per_s']:.0f} sentences/s)"
            for d in ("float32", "bfloat16")
        )
        + ".",
        "",
    ]
    for dtype in ("float32", "bfloat16"):
        plain, cp = rate.get(f"cpembed plain {dtype}"), rate.get(f"cpembed CP {dtype}")
        if plain:
            lines.append(
                f"- {dtype}: plain reaches **{plain / ceiling[dtype]['sentences_per_s']:.0%}** of the ceiling"
                + (f"; CP / plain **{cp / plain:.2f}**" if cp else "")
                + (f"; plain / MiniLM {plain / rate['all-MiniLM-L6-v2']:.2f}" if "all-MiniLM-L6-v2" in rate else "")
                + "."
            )
    return [*lines, ""]


def _encode_100k_lines(result: dict) -> list[str]:
    m = result["machine"]
    return [
        f"## {result['count']:,} sentences through `cpembed encode`",
        "",
        f"`{result['command']}` on {m['cpu']} ({m['cores']} logical cores): `cpembed encode` with its defaults "
        f"(`{result['model']}`, PromptEOL, the shipped CP setting, default dtype) on {result['count']:,} different "
        f"12-word sentences into a .npy file, in its own process: **{result['seconds']:.0f} s** "
        f"({result['rate']:.1f} sentences/s, model load included), peak RSS **{result['peak_rss_mb']:.0f} MB**. "
        f"Memory {_flat_or_growing(result)}: the most resident in the run's second quarter was "
        f"{result['rss_second_quarter_mb']:.0f} MB, in its last {result['rss_last_quarter_mb']:.0f} MB.",
        "",
    ]


def _flat_or_growing(result: dict) -> str:
    # Flat: the last quarter holds within 5% of the second, whatever the input's length.
    grown = result["rss_last_quarter_mb"] / result["rss_second_quarter_mb"] - 1
    return "is flat" if grown <= 0.05 else f"**grows** ({grown:+.0%} from the second quarter to the last)"


def _gpu_one_engine_lines(result: dict) -> list[str]:
    m = result["machine"]
    rate = {(r["prompt"], r["words"], r["batch_size"], r["run"]): r for r in result["rows"]}
    lines = [
        "## A 7B-sized model on a GPU, one engine",
        "",
        f"`{result['command']}` on {m['gpu']} (torch {m['torch_cuda']}): random weights, LLaMA-2-7B shape, "
        f"bfloat16, {result['count']} sentences per run, best of {result['rounds']} rounds in alternating order. "
        "Sentences per second; **naive** is the research code's way (two whole passes, LM head included); "
        f"**grid** is the paper's {result['settings']} settings in one pass. Paper CP settings.",
        "",
        "| prompt | words | batch | plain | CP | CP naive | grid | CP / plain | CP / naive | grid / plain (time) "
        "| peak GiB, CP |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for prompt, words, batch in dict.fromkeys(k[:3] for k in rate):
        r = {run: rate[(prompt, words, batch, run)]["rate"] for run in ("plain", "CP", "CP naive", "grid")}
        peak = rate[(prompt, words, batch, "CP")]["peak_gib"]
        rates = " | ".join(f"{r[run]:.0f}" for run in ("plain", "CP", "CP naive", "grid"))
        ratios = f"{r['CP'] / r['plain']:.2f} | {r['CP'] / r['CP naive']:.2f}x | {r['plain'] / r['grid']:.2f}x"
        lines.append(f"| {prompt} | {words} | {batch} | {rates} | {ratios} | {peak:.1f} |")
    return [*lines, ""]


def _one_engine_lines(result: dict) -> list[str]:
    m, before, after = result["machine"], result["runs"]["before"], result["runs"]["after"]
    return [
        "## One engine: the grid search before and after",
        "",
        f"`{result['command']}` on {m['cpu']} ({m['cores']} logical cores, {m['threads']} torch threads):",
        f"`cpembed search grid` (the grid command then) on `{result['model']}`, PromptEOL, the paper's 31",
        "settings on SentEval STS-B dev,",
        "default dtype, each source tree in a fresh process (model load included), best of the rounds. The",
        "script and the command it timed were removed when `cpembed tune` took over the searches; both are",
        "in the history at b0d6a40.",
        "",
        "| engine | seconds | best setting | Spearman |",
        "|---|---|---|---|",
        f"| before: packed, 768-token packs | {before['seconds']:.1f} | {before['best']} | {before['spearman']:.2f} |",
        f"| after: one padded engine, k copies | {after['seconds']:.1f} | {after['best']} | {after['spearman']:.2f} |",
        "",
        f"After / before: **{after['seconds'] / before['seconds']:.2f}** of the time.",
        "",
    ]


def _prefix_cache_lines(result: dict) -> list[str]:
    m = result["machine"]
    rate = {(r["prompt"], r["words"], r["engine"]): r["rate"] for r in result["rows"]}
    padded = result.get("engine", "packed") == "padded"
    cp, unit = ("CP padded", "batch") if padded else ("CP fast", "pack")
    lines = [
        "## The template's opening, computed once per model" + (": the padded engine" if padded else ""),
        "",
        f"`{result['command']}` on {m['cpu']} ({m['cores']} logical cores), `{result['model']}`, float32, batch 16,",
        f"{result['count']} sentences per run, best of the rounds. **{cp}** reads the opening's keys and values",
        f"from the model's cache; **opening per {unit}** is the same engine computing them in every {unit}, as",
        f"it did before the cache. Paper CP settings; plain runs the {'padded' if padded else 'packed'} engine too. "
        "Rates are sentences per second.",
        "",
        f"| prompt | words | plain | {cp} | opening per {unit} | CP naive | cache gain | {cp} / plain | {cp} / naive |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for prompt, words in dict.fromkeys((r["prompt"], r["words"]) for r in result["rows"]):
        plain, fast, per_pack, naive = (
            rate[(prompt, words, e)] for e in ("plain", "CP fast", "CP fast, opening per pack", "CP naive")
        )
        lines.append(
            f"| {prompt} | {words} | {plain:.1f} | {fast:.1f} | {per_pack:.1f} | {naive:.1f} | "
            f"{fast / per_pack:.2f}x | {fast / plain:.2f} | {fast / naive:.1f}x |"
        )
    return [*lines, ""]


def _engines_lines(result: dict) -> list[str]:
    m = result["machine"]
    rate = {(r["prompt"], r["setting"], r["words"], r["batch_size"], r["engine"]): r["rate"] for r in result["rows"]}
    lines = [
        "## Packed against padded",
        "",
        f"`{result['command']}` on {m['cpu']} ({m['cores']} logical cores), `{result['model']}`, float32,",
        f"{result['count']} sentences per run, best of {result['rounds']} rounds in alternating order. Both engines "
        "read the template's opening from the cache; paper CP settings. Rates are sentences per second.",
        "",
        "| prompt | run | words | batch | packed | padded | padded / packed |",
        "|---|---|---|---|---|---|---|",
    ]
    ratios = []
    for prompt, setting, words, batch in dict.fromkeys(k[:4] for k in rate):
        packed, padded = (rate[(prompt, setting, words, batch, engine)] for engine in ("packed", "padded"))
        ratios.append(padded / packed)
        lines.append(
            f"| {prompt} | {setting} | {words} | {batch} | {packed:.1f} | {padded:.1f} | {padded / packed:.2f} |"
        )
    faster = sum(r > 1 for r in ratios)
    lines += ["", f"Padded is the faster engine in {faster} of {len(ratios)} configurations.", ""]
    return lines


_GPU_ENGINES = ("plain (padded)", "plain", "CP padded", "CP fast", "CP naive")
_GPU_HEADERS = ("plain (padded)", "plain (packed)", "CP padded", "CP packed", "CP naive")


def _gpu_lines(result: dict) -> list[str]:
    m = result["machine"]
    rate = {(r["prompt"], r["words"], r["batch_size"], r["engine"]): r["rate"] for r in result["rows"]}
    peak = {(r["prompt"], r["words"], r["batch_size"], r["engine"]): r["peak_gib"] for r in result["rows"]}
    lines = [
        "## A 7B-sized model on a GPU",
        "",
        f"`{result['command']}` on {m.get('gpu', m['cpu'])} (torch {m['torch']}, CUDA {m.get('cuda')}): "
        f"{result['model']} ({result['num_layers']} layers),",
        f"{result['dtype']}, {result['count']} sentences per run, best of {result['rounds']} rounds in alternating "
        "order. Paper CP settings. Rates are sentences per second; **CP / plain** compares each engine",
        "with its own plain pass; **naive** is the research code's way (two whole passes, LM head included).",
        "",
        "| prompt | words | batch | " + " | ".join(_GPU_HEADERS) + " | CP / plain (padded) | CP / plain (packed) "
        "| fastest CP / naive | peak GiB, CP padded / naive |",
        "|---|---|---|" + "---|" * (len(_GPU_ENGINES) + 4),
    ]
    for prompt, words, batch in dict.fromkeys(k[:3] for k in rate):
        r = {e: rate[(prompt, words, batch, e)] for e in _GPU_ENGINES}
        fastest_cp = max(r["CP fast"], r["CP padded"])
        lines.append(
            f"| {prompt} | {words} | {batch} | "
            + " | ".join(f"{r[e]:.0f}" for e in _GPU_ENGINES)
            + f" | {r['CP padded'] / r['plain (padded)']:.2f} | {r['CP fast'] / r['plain']:.2f} "
            f"| {fastest_cp / r['CP naive']:.2f}x "
            f"| {peak[(prompt, words, batch, 'CP padded')]:.1f} / {peak[(prompt, words, batch, 'CP naive')]:.1f} |"
        )
    grid = result["grid"]
    seconds = grid["seconds"]
    fastest_plain = min(v for k, v in seconds.items() if k.startswith("plain"))
    grid_s = next(v for k, v in seconds.items() if k.startswith("grid"))
    lines += [
        "",
        f"**The paper's grid** ({grid['settings']} settings in one pass, {grid['sentences']} {grid['prompt']} "
        "sentences of 8-32 words): "
        + ", ".join(f"{name} {s:.2f} s" for name, s in seconds.items())
        + f"; the grid costs **{grid_s / fastest_plain:.2f}x** the fastest plain pass.",
        "",
    ]
    return lines + _pack_budget_lines(result["pack_budget"]) + _opening_cache_lines(result["opening_cache"])


def _pack_budget_lines(sweep: dict) -> list[str]:
    rate = {(str(r["budget"]), r["run"]): r["rate"] for r in sweep["rows"]}
    budgets = [b for b in dict.fromkeys(str(r["budget"]) for r in sweep["rows"]) if b != "padded"]
    lines = [
        f"**Tokens per pack.** {sweep['sentences']} {sweep['prompt']} sentences of {sweep['words']} words in one "
        f"batch, so only the budget splits it (the table above used {sweep['default']}); the padded engine at",
        f"batch 256 beside it: plain {rate[('padded', 'plain')]:.0f}, CP {rate[('padded', 'CP')]:.0f} sentences/s.",
        "",
        "| tokens per pack | plain (packed) | CP packed | the grid (31 settings) |",
        "|---|---|---|---|",
    ]
    for budget in budgets:
        lines.append(
            f"| {budget} | {rate[(budget, 'plain')]:.0f} | {rate[(budget, 'CP')]:.0f} | {rate[(budget, 'grid')]:.0f} |"
        )
    return [*lines, ""]


def _opening_cache_lines(sweep: dict) -> list[str]:
    rate = {(r["prompt"], r["run"], r["opening"]): r["rate"] for r in sweep["rows"]}
    lines = [
        f"**The template's opening, cached.** The padded engine, {sweep['sentences']} sentences of "
        f"{sweep['words']} words at batch {sweep['batch_size']}: the opening read from the cache against computed",
        "in every batch. Sentences per second.",
        "",
        "| prompt | run | cached | per batch | cached / per batch |",
        "|---|---|---|---|---|",
    ]
    for prompt, run in dict.fromkeys(k[:2] for k in rate):
        cached, per_batch = rate[(prompt, run, "cached")], rate[(prompt, run, "per batch")]
        lines.append(f"| {prompt} | {run} | {cached:.0f} | {per_batch:.0f} | {cached / per_batch:.2f}x |")
    return [*lines, ""]


def _recipes_lines(result: dict) -> list[str]:
    m = result["machine"]
    lines = [
        f"## What each recipe costs: {result['model']}, {result['dtype']}",
        "",
        f"`{result['command']}`: {result['sentences']} sentences of {result['source']}, {result['dtype']}, batch "
        f"{result['batch_size']}, each encoder in turn for {len(result['rounds']['plain PromptEOL'])} rounds "
        f"(median); {m['cpu']}, {m['cores']} cores.",
        "",
        "| encoder | sentences/s | vs plain PromptEOL |",
        "|---|---|---|",
    ]
    for name, rate in result["rates"].items():
        lines.append(f"| {name} | {rate:.1f} | {result['relative'][name]:.2f}x |")
    return [*lines, "", *(f"- {line}" for line in result["recipes"].values()), ""]


def _bf16_sts_lines(result: dict) -> list[str]:
    f32, b16 = result["rows"]["float32"], result["rows"]["bfloat16"]
    return [
        "## bfloat16 on STS",
        "",
        f"`{result['command']}`: `{result['model']}` with {f32['cp']}, the first {result['pairs']} pairs of",
        f"STS-B dev: Spearman x100 float32 **{f32['spearman']:.2f}** ({f32['seconds']:.0f} s), bfloat16 "
        f"**{b16['spearman']:.2f}** ({b16['seconds']:.0f} s), a difference of "
        f"{b16['spearman'] - f32['spearman']:+.2f}.",
        "",
    ]


def _compiled_lines(result: dict) -> list[str]:
    lines = [
        "## The compiled path",
        "",
        f"`{result['command']}`: `{result['model']}`, {result['threads']} threads, batch {result['batch_size']}, "
        f"{result['sentences']} raw STS-B dev sentences a round, {result['rounds']} rounds with the same loaded "
        f"model's feed-forward blocks and norms switched between eager and compiled forwards (torch "
        f"{result['torch']}). The ratio is compiled over eager: the median of the rounds' ratios, and a 95% "
        "bootstrap interval of their geometric mean. Compiling's cost is a fresh process's first compiled call "
        "less the same call eager, with an empty graph cache (cold) and with the one that run filled (warm); "
        "break-even is that cost over the seconds a sentence saves on the default recipe.",
        "",
        "| dtype | setting | eager sentences/s | compiled sentences/s | compiled / eager |",
        "|---|---|---|---|---|",
    ]
    for dtype, row in result["rows"].items():
        for name, s in row["speeds"].items():
            lines.append(
                f"| {dtype} | {name} | {_median(s['eager']):.1f} | {_median(s['compiled']):.1f} | "
                f"**{s['ratio']:.2f}** ({s['ratio low']:.2f}..{s['ratio high']:.2f}) |"
            )
    lines += [
        "",
        "| dtype | compiling, cold | compiling, warm | break-even, cold | break-even, warm |",
        "|---|---|---|---|---|",
    ]
    for dtype, row in result["rows"].items():
        cost, even = row["compile seconds"], row["break-even"]
        cells = [f"{even[k]:,.0f} sentences" if even[k] is not None else "never" for k in ("cold", "warm")]
        lines.append(f"| {dtype} | {cost['cold']:.1f} s | {cost['warm']:.1f} s | {cells[0]} | {cells[1]} |")
    m = result["machine"]
    return [*lines, "", f"Machine: {m['cpu']}, {m['cores']} logical cores, transformers {m['transformers']}.", ""]


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def _ray_lines(result: dict) -> list[str]:
    m, runs = result["machine"], result["runs"]
    lines = [
        "## Scale-out on Ray",
        "",
        f"`{result['command']}` on {m['cpu']} ({m['cores']} logical cores): `{result['model']}`, the default",
        "prompt and CP setting, a local Ray cluster, one CPU and one torch thread per worker. Rows/s include",
        "starting the workers (each loads the model once) and writing the shards.",
        "",
        "| workers | rows | seconds | rows/s | per worker rows/s (while embedding) |",
        "|---|---|---|---|---|",
    ]
    for workers, run in runs.items():
        per = ", ".join(f"{r:.2f}" for r in run["per_worker_rows_per_s"])
        lines.append(f"| {workers} | {run['rows']} | {run['seconds']:.1f} | {run['rows_per_s']:.2f} | {per} |")
    rate = min(r for run in runs.values() for r in run["per_worker_rows_per_s"])
    lines += [
        "",
        f"**Projection, not a measurement**: at {rate:.2f} rows/s per worker (the slowest worker above),",
        "with 16 such workers per node and perfect scaling:",
        "",
        "| sentences | 1 node | 10 nodes | 100 nodes |",
        "|---|---|---|---|",
    ]
    for n, name in ((10_000_000, "10M"), (1_000_000_000, "1B")):
        cells = " | ".join(_duration(n / (rate * 16 * nodes)) for nodes in (1, 10, 100))
        lines.append(f"| {name} | {cells} |")
    return [*lines, ""]


def _duration(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} h"


def _service_lines(result: dict) -> list[str]:
    m = result["machine"]
    lines = [
        "## The embeddings service",
        "",
        f"`{result['command']}` on {m['cpu']} ({m['cores']} logical cores, {m['threads']} torch threads): "
        f"`{result['model']}` ({result.get('dtype', 'float32')}) with {result['cp']}, {result['requests']} requests "
        "of 1-4 sentences "
        f"({result['sentences']} sentences) from {result['concurrency']} concurrent clients on loopback, "
        f"dynamic batching (up to 32 sentences a batch, 5 ms wait), admission by queue time "
        f"(--max-queue-seconds {result.get('max_queue_seconds', 'unset')}). A refused request got a 503 with "
        "Retry-After at once instead of an answer late; latencies are those of the served requests.",
        "",
        "| batching | served | refused early | errors | requests/s | sentences/s | p50 ms | p95 ms | p99 ms "
        "| refusal p99 ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, run in result["runs"].items():
        refusal = run.get("refusal_p99_ms")
        lines.append(
            f"| {label} | {run.get('served', '-')} | {run.get('refused', '-')} | {run.get('errors', '-')} "
            f"| {run['requests_per_s']:.2f} | {run['sentences_per_s']:.1f} | {run['p50_ms']:.0f} "
            f"| {run['p95_ms']:.0f} | {run['p99_ms']:.0f} | {'-' if refusal is None else f'{refusal:.0f}'} |"
        )
    gain = result.get("gain")
    return [*lines, "", *([f"Dynamic batching's gain in sentences/s: **{gain:.2f}x**.", ""] if gain else [])]


def _soak_lines(result: dict) -> list[str]:
    m, rss = result["machine"], result["rss_mb"]
    first, last = result["windows"][0], result["windows"][-1]
    lines = [
        "## The service under a steady load",
        "",
        f"`{result['command']}` on {m['cpu']} ({m['cores']} logical cores, {m['threads']} torch threads): "
        f"`cpembed serve --model {result['model']}` as its own process, {result['recipe']}. Capacity, measured "
        f"first (concurrency 32, closed loop): {result['capacity_requests_per_s']:.2f} requests/s of 1-4 sentences. "
        f"Then {result['rate_requests_per_s']:.2f} requests/s ({result['share']:.0%} of it), evenly spaced, for "
        f"{result['minutes']:g} minutes: {result['requests']} requests, **{result['errors']} errors**, "
        f"{result['refused']} refused (503); latency p50 {result['p50_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms. "
        f"Server RSS {rss['first']:.0f} MiB at the start, peak {rss['peak']:.0f}, {rss['last']:.0f} at the end "
        f"(the first window's peak {first['peak_rss_mb']:.0f}, the last's {last['peak_rss_mb']:.0f}); p99 "
        f"{first['p99_ms']:.0f} ms in the first window, {last['p99_ms']:.0f} in the last.",
        "",
        "| minutes | requests | errors | refused | p50 ms | p99 ms | peak RSS MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for w in result["windows"]:
        p50, p99 = (f"{w[k]:.0f}" if w[k] is not None else "-" for k in ("p50_ms", "p99_ms"))
        lines.append(
            f"| {w['minutes'][0]:g}-{w['minutes'][1]:g} | {w['requests']} | {w['errors']} | {w['refused']} "
            f"| {p50} | {p99} | {w['peak_rss_mb']:.0f} |"
        )
    return [*lines, "", "![Server memory and latency over the soak](performance/soak.png)", ""]


def _bench_lines(result: dict) -> list[str]:
    """The tables, the plot, the command and the machine of `cpembed bench`."""
    m, layers, command = result["machine"], result["num_layers"], result["command"]
    lines = [
        f"Made by `{command}` on {m['cpu']} ({m['cores']} logical cores, {m['memory_gb']} GB, "
        f"{m['threads']} torch threads), Python {m['python']}, torch {m['torch']}, transformers "
        f"{m['transformers']}; model `{result['model']}` ({layers} layers), float32 unless stated.",
        "Every number comes from the same process, configurations interleaved, best of the rounds; ",
        "compare ratios rather than absolute rates, which drift with the machine's load.",
        "",
        "Engines: **plain** = no CP, packed engine (a batch's prompts in one sequence without padding, the",
        "shared template prefix computed once); **plain (padded)** = no CP, one padded row per prompt;",
        "**CP fast** = CP on the packed engine (auxiliary prompt through layers 1..l only, then the",
        "normal prompt once with the last token patched); **CP padded** = the same on padded rows;",
        "**CP naive** = the research code's way: both prompts whole through every layer and the LM head,",
        "`output_hidden_states=True`, nothing shared. CP settings are the paper's (PromptEOL l=5,",
        "Knowledge and CK l=7). The bound is 0.95 x L / (L + l): the auxiliary pass's own cost.",
        "",
        "| prompt | words | batch | plain | plain (padded) | CP fast | CP padded | CP naive "
        "| CP fast / plain | bound | CP fast / naive |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    keys = sorted({(t["prompt"], t["words"], t["batch_size"]) for t in result["timings"]}, key=lambda k: k)
    for prompt, words, batch_size in keys:
        rates = {n: _rate(result, prompt, words, batch_size, n) for n in ENGINE_NAMES}
        if rates["plain (padded)"] is None:
            continue  # the length sweep's rows are in the plot
        layer = PAPER_CP[prompt].layer
        bound = 0.95 * layers / (layers + layer)
        cells = " | ".join(f"{rates[n]:.1f}" for n in ENGINE_NAMES)
        lines.append(
            f"| {prompt} | {words} | {batch_size} | {cells} | {rates['CP fast'] / rates['plain']:.2f} "
            f"| {bound:.2f} | {rates['CP fast'] / rates['CP naive']:.1f}x |"
        )
    grid = result["grid"]
    lines += [
        "",
        "Rates are sentences per second.",
        "",
        "## The search grid",
        "",
        f"The paper's grid ({grid['settings']} settings: the baseline, NS at every (l, alpha), NR at every l), "
        f"{grid['prompt']}, {grid['sentences']} sentences of 8-32 words, all settings in one pass: "
        f"{grid['grid_s']:.1f} s against {grid['plain_s']:.1f} s for one plain pass, "
        f"**{grid['grid_s'] / grid['plain_s']:.2f}x**.",
        "",
    ]
    bf16 = result["bfloat16"]
    if "skipped" not in bf16:
        lines += [
            "## bfloat16",
            "",
            f"Plain {result['timings'][0]['prompt']}, {bf16['sentences']} sentences: float32 "
            f"{bf16['float32_s']:.1f} s, bfloat16 {bf16['bfloat16_s']:.1f} s "
            f"(**{bf16['float32_s'] / bf16['bfloat16_s']:.2f}x** the speed of float32); the smallest "
            f"cosine between a float32 and a bfloat16 embedding is {bf16['min_cosine']:.4f}.",
            "",
        ]
    lines += [
        "## Memory",
        "",
        "Peak resident memory of the whole process (model included) while `cpembed encode` streams a",
        "file (CP fast, PromptEOL, chunks of 256 lines):",
        "",
        "| lines | seconds | peak RSS (MB) |",
        "|---|---|---|",
        *(f"| {m['lines']} | {m['seconds']:.1f} | {m['peak_rss_mb']:.0f} |" for m in result["memory"]),
        "",
        "![throughput against sentence length](performance/throughput.png)",
        "",
    ]
    return lines


ENGINE_NAMES = ("plain", "plain (padded)", "CP fast", "CP padded", "CP naive")


def throughput_plot(result: dict, path: Path) -> Path:
    """Sentences per second against sentence length (PromptEOL, batch 16)."""
    from cpembed.evaluation.plots import _pyplot

    plt = _pyplot()
    prompt = result["timings"][0]["prompt"]
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for name in ("plain", "CP fast", "CP naive"):
        points = sorted(
            (t["words"], t["rate"])
            for t in result["timings"]
            if t["name"] == name and t["prompt"] == prompt and t["batch_size"] == 16
        )
        ax.plot([w for w, _ in points], [r for _, r in points], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("sentence length (words)")
    ax.set_ylabel("sentences per second")
    ax.set_title(f"{result['model']}, {prompt}, batch 16, {result['machine']['threads']} threads", fontsize=9)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


PAGE = Path(__file__).resolve().parents[1] / "docs" / "PERFORMANCE.md"

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Draw docs/PERFORMANCE.md again from the kept measurements.")
    parser.add_argument("--output", default=str(PAGE), help="the page; its measurements are in performance/ beside it")
    print(f"wrote {render_markdown(Path(parser.parse_args().output))}")
