"""Does CP grow with model size? One table from the dev searches and STS evaluations already run.

Per model and prompt: the model's depth L, the grid's best setting by the mean of the two STS-B
dev splits (the rule's ranking), its layer as a fraction of depth, its alpha, the shipped
default's gain on raw STS-B dev with its 95% interval, the best NS setting's gain on the
seven-task STS average (test), the plain embedding's raw STS-B dev score (how strong the model
is without CP) and the dtype the grids ran in. The paper's LLaMA2-7B rows beside them (its
settings and its seven-task gains; it did not measure raw text).
"""

from __future__ import annotations

import json
from pathlib import Path

from cpembed.evaluation.search import RAW_DEV, label
from cpembed.models import BUILTIN_MODELS

from .report_steps import choose

# docs/method.md, Paper settings and Paper results: LLaMA2-7B (32 layers), the paper's settings and
# seven-task averages.
PAPER_SCALE = {
    "prompteol": ("NS l=5 a=2", 5, 2.0, 70.03, 75.27),
    "cot": ("NS l=7 a=3", 7, 3.0, 76.86, 77.45),
    "knowledge": ("NS l=7 a=3", 7, 3.0, 77.14, 77.56),
}


def scale_markdown(out: Path, models, prompts) -> list[str]:
    rows, unsearched = [], []
    for model in models:
        depth = BUILTIN_MODELS[model].num_layers if model in BUILTIN_MODELS else None
        for prompt in prompts:
            folder = out / model / prompt
            if depth is None:
                continue
            if not (folder / "grid.json").is_file() or not (folder / "grid_raw.json").is_file():
                unsearched.append(f"{model} {prompt}")
                continue
            grid_step = json.loads((folder / "grid.json").read_text())
            grid = grid_step["records"]
            raw = json.loads((folder / "grid_raw.json").read_text())["records"]
            choice = choose(grid, raw)
            plain, dtype = choice["scores"]["baseline"][RAW_DEV], grid_step["dtype"].removeprefix("torch.")
            best = max((choice["scale"], choice["recover"]), key=lambda s: _score(choice, s))
            rows.append(
                f"| {model} | {depth} | {prompt} | {label(best)} | {best.layer / depth:.2f} | "
                f"{f'{best.alpha:g}' if best.norm == 'scale' else '—'} | {_default_gain(folder, choice)} | "
                f"{_sts_gain(folder, out / model / 'recipe.json', prompt, choice['scale'])} | "
                f"{_swept_best(folder, depth, out / model / 'recipe.json', prompt)} | {plain:.2f} | {dtype} |"
            )
    if not rows:
        return []
    for prompt in prompts:
        if prompt in PAPER_SCALE:
            setting, layer, alpha, plain, cp = PAPER_SCALE[prompt]
            rows.append(
                f"| LLaMA2-7B (paper) | 32 | {prompt} | {setting} | {layer / 32:.2f} | {alpha:g} | — | "
                f"{cp - plain:+.2f} | — | — | — |"
            )
    return [
        "## Does it grow with size?",
        "",
        "The best setting of the paper's grid by the mean of the two STS-B dev splits, its layer as a",
        "fraction of the model's depth, the shipped default's gain on raw STS-B dev (95% interval), the",
        "best NS setting's gain on the seven-task STS average (test splits; \"r\": from the model's recipe",
        "test, where that recipe is this prompt with this setting), and the plain embedding's raw STS-B",
        "dev score (how strong the model is without CP), in the dtype its grids ran in. A prompt's layer",
        "sweep (every layer at the grid's best NS alpha, SentEval STS-B dev; `--sweep`) gives its best",
        "layer as l / L, with that layer's gain on SentEval dev and, where the model's recipe is that",
        "layer, its gain on the seven-task average (r).",
        *([f"Not searched on both dev splits yet (see the notes): {', '.join(unsearched)}."] if unsearched else []),
        "",
        "| model | layers L | prompt | best on dev | l / L | alpha | raw dev: default - plain [95%] "
        "| STS avg: best NS - plain | sweep: best l / L (gain) | plain on raw dev | dtype |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]


def _score(choice: dict, setting) -> float:
    scores = choice["scores"][label(setting)]
    return sum(scores.values()) / len(scores)


def _default_gain(folder: Path, choice: dict) -> str:
    if choice["default"] is None:
        return "none shipped"
    path = folder / "intervals_raw.json"
    if not path.is_file():
        return "—"
    record = next(r for r in json.loads(path.read_text())["records"] if r["label"] == label(choice["default"]))
    return f"{record['difference']:+.2f} [{record['low']:+.2f}, {record['high']:+.2f}]"


def _sts_gain(folder: Path, recipe_path: Path, prompt: str, best_ns) -> str:
    """From the prompt's STS evaluation; where that has not run, from the model's recipe test when
    the recipe is this prompt with its best NS setting alone (the same two rows, marked "r")."""
    path = folder / "sts.json"
    if path.is_file():
        rows = json.loads(path.read_text())["rows"]
        ns = next((r for r in rows if r["setting"].startswith("NS")), None)
        return "—" if ns is None else f"{ns['report']['average'] - rows[0]['report']['average']:+.2f}"
    gain = _recipe_gain(recipe_path, prompt, label(best_ns))
    return "—" if gain is None else f"{gain} r"


def _recipe_gain(recipe_path: Path, prompt: str, setting: str) -> str | None:
    """The recipe test's seven-task gain over the plain prompt, where the recipe is `prompt` with the
    CP `setting` alone (with TP, the gain is not CP's)."""
    step = json.loads(recipe_path.read_text()) if recipe_path.is_file() else None
    if not step or step["recipe"] != f"{prompt} + {setting}":
        return None
    rows = {r["row"]: r["average"] for r in step["rows"]}  # without TP, the row without CP is "plain <prompt>"
    return f"{rows['recipe'] - rows[f'plain {prompt}']:+.2f}"


def _swept_best(folder: Path, depth: int, recipe_path: Path, prompt: str) -> str:
    path = folder / "layers.json"
    if not path.is_file():
        return "—"
    records = json.loads(path.read_text())["records"]
    baseline = next(r["spearman"] for r in records if r["norm"] == "none")
    best = max((r for r in records if r["norm"] != "none"), key=lambda r: r["spearman"])
    gain = _recipe_gain(recipe_path, prompt, best["label"])
    test = "" if gain is None else f"; test avg {gain} r"
    return f"{best['layer']} / {depth} = {best['layer'] / depth:.2f} ({best['spearman'] - baseline:+.2f}{test})"
