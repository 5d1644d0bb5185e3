"""The auxiliary prompt search's section of docs/RESULTS.md, from the aux_prompt.json it wrote.

The search (a command of its own until `cpembed tune --aux-prompts` took its screen) wrote
<results>/<model>/<prompt>/aux_prompt.json; this renders, per model and prompt
that has one, the screen's best candidates, each finalist's best setting of the grid on both dev
splits, the winner against the paper's prompt with its 95% interval on raw STS-B dev, and, where
the search ran with `--beyond`, both on the beyond-STS dev splits.
"""

from __future__ import annotations

import json
from pathlib import Path

from cpembed.evaluation.search import RAW_DEV, SENTEVAL_DEV
from cpembed.prompts import IRRELEVANT

SCREEN_SHOWN = 8


def aux_markdown(out: Path, models, prompts) -> list[str]:
    lines = []
    for model in models:
        for prompt in prompts:
            path = out / model / prompt / "aux_prompt.json"
            if path.is_file():
                lines += _one(json.loads(path.read_text()), model, prompt)
    if not lines:
        return []
    return [
        "## A searched auxiliary prompt",
        "",
        "The former `cpembed search aux-prompt --output docs/results/<model>/<prompt>` (its flags in each",
        "heading; `cpembed tune --aux-prompts N` now tries the same wordings among its candidates).",
        "Candidates: 9 things to ask for (irrelevant, redundant, background, unimportant",
        "information, stop words, writing style, syntax, tone, filler words) in 3 frames, and 3 written by",
        "hand (`cpembed/evaluation/aux_search.py`). Screen: each candidate with NR at each layer; grid:",
        "the paper's settings for the best candidates and for the paper's prompt. Ranked by the mean of",
        "SentEval STS-B dev and raw STS-B dev; no test split is read.",
        "",
        *lines,
    ]


def _one(report: dict, model: str, prompt: str) -> list[str]:
    settings = report["settings"]
    screen = _best_per_candidate(report["screen"][1:])
    baseline = report["screen"][0]
    paper = next(name for name, r in screen if r["aux_template"] == IRRELEVANT)
    paper_rank = [name for name, _ in screen].index(paper) + 1
    lines = [
        f"**{model}, {prompt}** ({settings['dtype']}, {report['seconds']:.0f} s; baseline: STS-B dev "
        f"{baseline[SENTEVAL_DEV]:.2f}, raw dev {baseline[RAW_DEV]:.2f}). The screen's best of "
        f"{len(screen)} candidates (NR at its best layer; the paper's prompt, `{paper}`, ranks {paper_rank}):",
        "",
        "| candidate | best NR | STS-B dev | raw STS-B dev | mean |",
        "|---|---|---|---|---|",
    ]
    for name, record in screen[:SCREEN_SHOWN]:
        lines.append(_cells(name, record))
    lines += [
        "",
        "The grid's best setting of each finalist:",
        "",
        "| candidate | setting | STS-B dev | raw STS-B dev | mean |",
    ]
    lines += ["|---|---|---|---|---|"]
    lines += [_cells(name, r) for name, r in _best_per_candidate(report["grid"][1:])]
    low, high = report["raw_dev_interval"]
    lines += [
        "",
        f"Best: `{report['best']['candidate']}` at {report['best']['setting']} "
        f"(`{report['best']['aux_template']}`), against the paper's prompt at its best "
        f"({report['paper_best']}): raw STS-B dev 95% interval [{low:+.2f}, {high:+.2f}].",
        "",
    ]
    if "beyond_dev" in report:  # `--beyond`: the winner on other jobs' and languages' dev splits
        lines += [
            "On the beyond-STS dev splits (a check; it chose nothing):",
            "",
            "| dev split | baseline | paper's prompt | best | best - paper [95%] |",
            "|---|---|---|---|---|",
        ]
        for task, row in report["beyond_dev"]["tasks"].items():
            low, high = row["interval"]
            lines.append(
                f"| {task} | {row['baseline']:.2f} | {row['paper']:.2f} | {row['best']:.2f} "
                f"| {row['best - paper']:+.2f} [{low:+.2f}, {high:+.2f}] |"
            )
        lines.append("")
    return lines


def _cells(name: str, record: dict) -> str:
    setting = record["label"].rsplit(": ", 1)[1]
    return f"| {name} | {setting} | {record[SENTEVAL_DEV]:.2f} | {record[RAW_DEV]:.2f} | {record['spearman']:.2f} |"


def _best_per_candidate(records: list[dict]) -> list[tuple[str, dict]]:
    """(candidate, its best-scoring record), best first; a record's label is "<candidate>: <setting>"."""
    best: dict[str, dict] = {}
    for record in records:
        name = record["label"].rsplit(": ", 1)[0]  # hand-written names hold ": " too
        if name not in best or record["spearman"] > best[name]["spearman"]:
            best[name] = record
    return sorted(best.items(), key=lambda item: -item[1]["spearman"])
