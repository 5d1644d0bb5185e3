"""The template-opening cache, measured: CP with and without it, beside plain and the research
code's naive two-pass CP, in one process, configurations interleaved.

    python benchmarks/prefix_cache.py [--count 48] [--rounds 2] [--model smollm2-135m]
        [--prompts prompteol,knowledge,ck] [--words 8,40] [--engine packed|padded]

Writes docs/performance/prefix_cache.json (prefix_cache_padded.json for the padded engine);
docs/PERFORMANCE.md shows it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from cpembed import CPEncoder, load_model
from cpembed.benchmark import encode_opening_per_batch, machine, measure, save_measurement, sentences_of
from cpembed.config import PAPER_CP
from cpembed.naive import NaiveCP


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--count", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--prompts", default="prompteol,knowledge,ck", help="Comma-separated.")
    parser.add_argument("--words", default="8,40", help="Sentence lengths, comma-separated.")
    parser.add_argument("--engine", choices=("packed", "padded"), default="packed")
    parser.add_argument("--output", default="docs/PERFORMANCE.md")
    args = parser.parse_args()

    lm = load_model(args.model, "float32", "cpu")
    cases = []
    for prompt in args.prompts.split(","):
        cp = PAPER_CP[prompt]
        plain, fast = (
            CPEncoder(lm, prompt, cp=None, engine=args.engine),
            CPEncoder(lm, prompt, cp=cp, engine=args.engine),
        )
        naive = NaiveCP(CPEncoder(lm, prompt, cp=cp, engine="padded"))
        for words in map(int, args.words.split(",")):
            texts = sentences_of(words, args.count)
            cases += [
                (prompt, words, "plain", lambda t=texts, e=plain: e.encode(t, batch_size=16)),
                (prompt, words, "CP fast", lambda t=texts, e=fast: e.encode(t, batch_size=16)),
                (
                    prompt,
                    words,
                    "CP fast, opening per pack",
                    lambda t=texts, e=fast: encode_opening_per_batch(e, t, batch_size=16),
                ),
                (prompt, words, "CP naive", lambda t=texts, e=naive: e.encode(t, batch_size=16)),
            ]
    best: dict[tuple, float] = {}
    with tqdm(total=args.rounds * len(cases), desc="prefix cache", unit="run") as bar:
        for round_ in range(args.rounds):
            for prompt, words, name, run in cases if round_ % 2 == 0 else cases[::-1]:
                seconds, _ = measure(run)
                best[(prompt, words, name)] = min(best.get((prompt, words, name), seconds), seconds)
                bar.update()
    rows = [
        {"prompt": p, "words": w, "engine": n, "rate": args.count / s, "seconds": s} for (p, w, n), s in best.items()
    ]
    result = {
        "machine": machine(),
        "engine": args.engine,
        "model": args.model,
        "num_layers": lm.num_layers,
        "count": args.count,
        "rows": rows,
        "command": "python " + " ".join(["benchmarks/prefix_cache.py", *sys.argv[1:]]),
    }
    name = "prefix_cache" if args.engine == "packed" else f"prefix_cache_{args.engine}"
    target = save_measurement(Path(args.output), name, result)
    print(f"wrote {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
