"""Side by side on the same sentences: llama.cpp on the model's own GGUF file, cpembed plain and CP
in float32 and bfloat16, all-MiniLM-L6-v2 through sentence-transformers, and the compute ceiling.

    python benchmarks/side_by_side.py [--model smollm2-135m] [--count 1000] [--threads 2]

Every engine runs in a process of its own (its peak RSS is its own, model load included), embeds
the first `count` unique sentences of raw STS-B dev in the PromptEOL template (timed, after a
warm-up batch), then the rest of the split untimed, for the Spearman on all 1,500 dev pairs. The
ceiling is the model's own matrix shapes as bare products over the real tokens of those
sentences (after the template's cached opening), in the same run. Writes
docs/performance/side_by_side-<model>.json; docs/PERFORMANCE.md shows it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ENGINES = (
    "llama.cpp",
    "cpembed plain float32",
    "cpembed CP float32",
    "cpembed plain bfloat16",
    "cpembed CP bfloat16",
    "all-MiniLM-L6-v2",
)
BATCH = 32


def dev_sentences(raw: str | None) -> tuple[list[str], object]:
    """The unique sentences of raw STS-B dev in file order, and the pairs."""
    from cpembed.evaluation.data import find_raw_stsb_dir, load_raw_stsb

    pairs = load_raw_stsb(find_raw_stsb_dir(raw), "dev")
    return list(dict.fromkeys(pairs.sentences1 + pairs.sentences2)), pairs


class LlamaCppEncoder:
    """llama.cpp's last-token embedding of the model's GGUF file, through llama-cpp-python, configured
    as its documentation advises for embeddings: `embedding=True`, last-token pooling, threads =
    cores, many sequences per batch. Of the batch sizes and flash-attention settings tried here
    (64-2048 tokens), 512 with flash attention was the fastest."""

    def __init__(self, model: str, threads: int):
        import llama_cpp

        from cpembed.models import BUILTIN_MODELS, installed_parts

        parts = installed_parts(BUILTIN_MODELS[model])
        if parts is None or len(parts) != 1:
            gguf = Path(tempfile.mkdtemp()) / f"{model}.gguf"  # joined as cpembed joins chunked packages
            with gguf.open("wb") as joined:
                for part in parts:
                    with part.open("rb") as chunk:
                        shutil.copyfileobj(chunk, joined, 1 << 20)  # streamed: the peak RSS is llama.cpp's
        else:
            gguf = parts[0]
        self.llm = llama_cpp.Llama(
            str(gguf),
            embedding=True,
            pooling_type=llama_cpp.LLAMA_POOLING_TYPE_LAST,
            n_ctx=512,
            n_batch=512,
            n_ubatch=512,
            flash_attn=True,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )

    def encode(self, sentences: list[str]) -> np.ndarray:
        from cpembed.prompts import PLACEHOLDER, PROMPTEOL, preprocess

        prompts = [PROMPTEOL.replace(PLACEHOLDER, preprocess(s)) for s in sentences]
        return np.asarray(self.llm.embed(prompts, normalize=False), dtype=np.float32)


def make_encoder(engine: str, model: str, threads: int):
    import torch

    torch.set_num_threads(threads)
    if engine == "llama.cpp":
        return LlamaCppEncoder(model, threads).encode
    if engine == "all-MiniLM-L6-v2":
        from sentence_transformers import SentenceTransformer

        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from experiments.baselines import minilm_folder

        minilm = SentenceTransformer(str(minilm_folder()), device="cpu")
        return lambda texts: minilm.encode(texts, batch_size=BATCH, convert_to_numpy=True)
    from cpembed import CPEncoder, load_model
    from cpembed.compiled import keep_eager
    from cpembed.config import default_cp

    _, kind, dtype = engine.split()
    cp = default_cp(model, "prompteol") if kind == "CP" else None
    encoder = CPEncoder(keep_eager(load_model(model, dtype, "cpu")), prompt="prompteol", cp=cp)
    return lambda texts: encoder.encode(texts, batch_size=BATCH)


def worker(args) -> dict:
    """One engine in this process: time `count` sentences, then score the whole dev split."""
    from cpembed.evaluation.metrics import paired_cosine, spearman

    sentences, pairs = dev_sentences(args.raw)
    encode = make_encoder(args.worker, args.model, args.threads)
    encode(sentences[-BATCH:])  # warm-up: first-call costs (and the template's opening) are not timed
    started = time.perf_counter()
    timed = encode(sentences[: args.count])
    seconds = time.perf_counter() - started
    vectors = np.concatenate([timed, encode(sentences[args.count :])])
    np.save(args.vectors, vectors[:200])
    index = {s: i for i, s in enumerate(sentences)}
    first = vectors[[index[s] for s in pairs.sentences1]]
    second = vectors[[index[s] for s in pairs.sentences2]]
    return {
        "engine": args.worker,
        "rate": args.count / seconds,
        "seconds": seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "spearman": 100 * spearman(paired_cosine(first, second), pairs.scores),
    }


def prepare(args) -> dict:
    """Load the model once in each dtype, so that no measured process pays for converting its GGUF
    file or storing the bfloat16 copy (what a user pays once, on the first load)."""
    from cpembed import load_model

    for dtype in ("float32", "bfloat16"):
        load_model(args.model, dtype, "cpu")
    return {}


def ceiling(args) -> dict:
    """Sentences/s if every real token's matrix products ran at the bare product's rate, per dtype."""
    import torch

    from cpembed import load_model
    from cpembed.prompts import PLACEHOLDER, PROMPTEOL, preprocess

    torch.set_num_threads(args.threads)
    sentences, _ = dev_sentences(args.raw)
    lm = load_model(args.model, "float32", "cpu")
    config = lm.model.config
    rows = lm.tokenizer([PROMPTEOL.replace(PLACEHOLDER, preprocess(s)) for s in sentences[: args.count]])["input_ids"]
    shared = next(i for i in range(min(map(len, rows))) if len({row[i] for row in rows}) > 1)
    real_tokens = sum(len(row) - shared for row in rows) / len(rows)
    h, inner = config.hidden_size, config.intermediate_size
    kv = config.num_key_value_heads * getattr(config, "head_dim", h // config.num_attention_heads)
    shapes = [(h, h), (h, kv), (h, kv), (h, h), (h, inner), (h, inner), (inner, h)]  # q k v o gate up down
    flops_per_token = 2 * sum(k * n for k, n in shapes) * config.num_hidden_layers
    tokens = int(BATCH * real_tokens)
    out = {"real_tokens_per_sentence": real_tokens, "gflop_per_sentence": flops_per_token * real_tokens / 1e9}
    for dtype in (torch.float32, torch.bfloat16):
        weights = [torch.randn(k, n, dtype=dtype) for k, n in shapes]
        x = {k: torch.randn(tokens, k, dtype=dtype) for k, _ in shapes}
        for w, (k, _) in zip(weights, shapes, strict=True):
            x[k] @ w  # warm-up
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(config.num_hidden_layers):
                for w, (k, _) in zip(weights, shapes, strict=True):
                    x[k] @ w
            best = min(best, time.perf_counter() - started)
        gflops = flops_per_token * tokens / best / 1e9
        name = str(dtype).removeprefix("torch.")
        out[name] = {"gflops": gflops, "sentences_per_s": gflops / out["gflop_per_sentence"]}
    return out


def _run_worker(args, engine: str, vectors: Path) -> dict:
    command = [sys.executable, __file__, "--worker", engine, "--vectors", str(vectors)]
    command += ["--model", args.model, "--count", str(args.count), "--threads", str(args.threads)]
    command += ["--raw", args.raw] if args.raw else []
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ | {"TOKENIZERS_PARALLELISM": "false"})
    if done.returncode != 0:
        raise SystemExit(f"{engine} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--raw", default=None, help="Raw STS-B folder (or CPEMBED_RAW_STSB).")
    parser.add_argument("--engines", default=",".join(ENGINES), help="Comma-separated, from: " + ", ".join(ENGINES))
    parser.add_argument("--output", default="docs/PERFORMANCE.md")
    parser.add_argument(
        "--update", action="store_true", help="Replace only these engines' rows in the kept result (and the ceiling)."
    )
    parser.add_argument("--worker", choices=[*ENGINES, "ceiling", "prepare"], help=argparse.SUPPRESS)
    parser.add_argument("--vectors", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps({"ceiling": ceiling, "prepare": prepare}.get(args.worker, worker)(args)))
        return

    from performance import save_measurement

    from cpembed.bench import machine
    from cpembed.evaluation.metrics import paired_cosine

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        _run_worker(args, "prepare", Path(tmp) / "prepare.npy")
        for engine in args.engines.split(","):
            rows.append(_run_worker(args, engine, Path(tmp) / f"{len(rows)}.npy"))
            print(
                f"{engine}: {rows[-1]['rate']:.1f} sentences/s, Spearman {rows[-1]['spearman']:.2f}, "
                f"peak {rows[-1]['peak_rss_mb']:.0f} MB",
                file=sys.stderr,
            )
        reference = next((i for i, r in enumerate(rows) if r["engine"] == "cpembed plain float32"), None)
        if reference is not None:
            base = np.load(Path(tmp) / f"{reference}.npy")
            for i, row in enumerate(rows):
                if row["engine"] in ("llama.cpp", "cpembed plain bfloat16"):
                    other = np.load(Path(tmp) / f"{i}.npy")
                    row["min_cosine_to_float32"] = float(paired_cosine(base, other).min())
        bound = _run_worker(args, "ceiling", Path(tmp) / "ceiling.npy")
    command = "python " + " ".join(["benchmarks/side_by_side.py", *sys.argv[1:]])
    kept = Path(args.output).parent / "performance" / f"side_by_side-{Path(args.model).name}.json"
    if args.update and kept.is_file():  # another run's rows, replaced engine by engine
        old = json.loads(kept.read_text())
        rerun = {r["engine"]: r for r in rows}
        rows = [rerun.pop(r["engine"], r) for r in old["rows"]] + list(rerun.values())
        command = f"{old['command']}, then {command}"
    result = {
        "machine": machine() | {"threads": args.threads},
        "model": args.model,
        "count": args.count,
        "batch_size": BATCH,
        "rows": rows,
        "ceiling": bound,
        "command": command,
    }
    target = save_measurement(Path(args.output), f"side_by_side-{Path(args.model).name}", result)
    print(f"wrote {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
