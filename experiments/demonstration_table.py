"""The demonstration search's section of docs/RESULTS.md, from the demonstrations.json it wrote.

The search (a command of its own until `cpembed tune --demonstrations` took it over) wrote
<results>/<model>/<prompt>/demonstrations.json; this renders, per model and prompt
that has one, the score without an example, each candidate's (its sentence, the model's own answer
word) and the spread over candidates. Dev splits only.
"""

from __future__ import annotations

import json
from pathlib import Path


def demonstration_markdown(out: Path, models, prompts) -> list[str]:
    lines = []
    for model in models:
        for prompt in prompts:
            path = out / model / prompt / "demonstrations.json"
            if path.is_file():
                lines += _one(json.loads(path.read_text()), model, prompt)
    if not lines:
        return []
    return [
        "## One in-context demonstration",
        "",
        "The former `cpembed search demonstrations --output docs/results/<model>/<prompt>` (`cpembed tune",
        "--demonstrations N` now tries examples among its candidates): each candidate is a tuning",
        "sentence (STS-B train, 20 Newsgroups train, PIT2015 dev, SciFact train claims) with the model's own",
        "greedy one-word answer, put before the template; each is scored on both STS-B dev splits (the",
        "mean) against no example. The best candidate is picked on the splits it is scored on, so its lead",
        "is not a test; the spread says how much the choice of example matters.",
        "",
        *lines,
    ]


def _one(step: dict, model: str, prompt: str) -> list[str]:
    none, spread = step["none"], step["spread"]
    names = list(none["splits"])
    lines = [
        f"**{model}, {prompt}** ({step['split']}; {step['settings'].get('dtype', 'float32')}, {step['seconds']:.0f} s)",
        "",
        f"| example | answer | {' | '.join(names)} | mean |",
        "|---|---|" + "---|" * (len(names) + 1),
    ]
    none_cells = " | ".join(f"{none['splits'][n]:.2f}" for n in names)
    lines.append(f"| none | — | {none_cells} | {none['score']:.2f} |")
    for c in sorted(step["candidates"], key=lambda c: -c["score"]):
        sentence = c["sentence"].replace("|", "\\|")
        cells = " | ".join(f"{c['splits'][n]:.2f}" for n in names)
        lines.append(f"| {sentence} | {c['answer']} | {cells} | {c['score']:.2f} |")
    lines += [
        "",
        f"Spread over {len(step['candidates'])} candidates: {spread['min']:.2f} to {spread['max']:.2f} "
        f"(median {spread['median']:.2f}); {spread['share_above_none']:.0%} beat no example.",
        "",
    ]
    return lines
