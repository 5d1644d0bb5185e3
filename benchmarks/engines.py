"""The packed engine against the padded one, side by side: plain and CP, for each prompt, sentence
length and batch size, in one process, configurations interleaved. The encoder's default engine
comes from this table.

    python benchmarks/engines.py [--count 32] [--rounds 3] [--model smollm2-135m]
        [--prompts prompteol,knowledge,ck] [--words 8,40] [--batch-sizes 16,64]

Writes docs/performance/engines.json; docs/PERFORMANCE.md shows it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from cpembed import CPEncoder, load_model
from cpembed.benchmark import machine, measure, save_measurement, sentences_of
from cpembed.config import PAPER_CP


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--count", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prompts", default="prompteol,knowledge,ck", help="Comma-separated.")
    parser.add_argument("--words", default="8,40", help="Sentence lengths, comma-separated.")
    parser.add_argument("--batch-sizes", default="16,64", help="Comma-separated.")
    parser.add_argument("--output", default="docs/PERFORMANCE.md")
    args = parser.parse_args()

    lm = load_model(args.model, "float32", "cpu")
    cases = []
    for prompt in args.prompts.split(","):
        for setting, cp in (("plain", None), ("CP", PAPER_CP[prompt])):
            encoders = {engine: CPEncoder(lm, prompt, cp=cp, engine=engine) for engine in ("packed", "padded")}
            for words in map(int, args.words.split(",")):
                texts = sentences_of(words, args.count)
                for batch_size in map(int, args.batch_sizes.split(",")):
                    for engine, encoder in encoders.items():
                        run = lambda e=encoder, t=texts, b=batch_size: e.encode(t, batch_size=b)  # noqa: E731
                        cases.append(((prompt, setting, words, batch_size, engine), run))
    best: dict[tuple, float] = {}
    with tqdm(total=args.rounds * len(cases), desc="engines", unit="run") as bar:
        for round_ in range(args.rounds):  # alternate the order, so drift favours no configuration
            for key, run in cases if round_ % 2 == 0 else cases[::-1]:
                seconds, _ = measure(run)
                best[key] = min(best.get(key, seconds), seconds)
                bar.update()
    rows = [
        dict(prompt=p, setting=s, words=w, batch_size=b, engine=e, seconds=sec, rate=args.count / sec)
        for (p, s, w, b, e), sec in best.items()
    ]
    result = {
        "machine": machine(),
        "model": args.model,
        "count": args.count,
        "rounds": args.rounds,
        "rows": rows,
        "command": "python " + " ".join(["benchmarks/engines.py", *sys.argv[1:]]),
    }
    target = save_measurement(Path(args.output), "engines", result)
    print(f"wrote {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
