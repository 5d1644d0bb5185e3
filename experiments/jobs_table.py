"""The README's first table and picture: for each job, what to use, from the test splits already scored.

Rows are jobs (STS, search, reranking, duplicates, clustering, other languages). Candidates are, for
each model, its shipped recipes whose test runs match what `MODEL_RECIPES` ships now, and its plain
PromptEOL (a recipe's own rows). The row's pick is the candidate with the best test score: the
recipes themselves were chosen on dev splits, but this pick between a handful of them reads test
splits, so it flatters the winner a little; the table says so. Beside it: the same model's plain
PromptEOL with the difference's 95% paired-bootstrap interval, all-MiniLM-L6-v2, and the speed from
the recipes benchmark (docs/performance/recipes-<model>.json, sentences/s on the machine that ran it).

It reads result files only (no model). `write_readme` replaces the block between the README's two
markers; a test checks the committed block is what this writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cpembed.config import MODEL_RECIPES

from .beyond_steps import JOB_TASKS
from .recipe_steps import describe

# The markers are also the documentation site's snippet section (docs/index.md quotes the table).
BEGIN = "<!-- --8<-- [start:jobs] table written by `python -m experiments --only-markdown` from docs/results/ -->"
END = "<!-- --8<-- [end:jobs] -->"
PLAIN = "plain PromptEOL"
MINILM = "all-MiniLM-L6-v2"

# job: (what the README calls it, `cpembed tune --job`'s name for it, the test set, its metric)
JOBS = {
    "sts": ("similarity", "sts", "seven STS tasks", "Spearman"),
    "retrieval": ("search", "retrieval", "SciFact", "nDCG@10"),
    "rerank": ("reranking answers", "reranking", "WikiQA", "MAP"),
    "pairs": ("duplicates", "pairs", "TwitterURL", "AP"),
    "cluster": ("clustering", "clustering", "20 Newsgroups", "V-measure"),
    "sts-multilingual": ("other languages", "sts", "STS-B in 11 languages", "mean Spearman"),
}
# Each beyond-STS task file's headline column.
METRIC_KEYS = {
    "rerank": "MAP",
    "pairs": "AP",
    "cluster": "V-measure",
    "retrieval": "nDCG@10",
    "sts-multilingual": "mean",
}
MODEL_NAMES = {
    "smollm2-135m": "SmolLM2-135M",
    "qwen2.5-coder-0.5b": "Qwen2.5-Coder-0.5B",
    "qwen2.5-coder-1.5b": "Qwen2.5-Coder-1.5B",
}


@dataclass(frozen=True)
class Cell:
    """One candidate's test score on one job, beside its model's plain PromptEOL."""

    model: str
    recipe: str  # "best", "fast", a job recipe's name or PLAIN
    score: float
    plain: float
    low: float | None = None  # the 95% interval of score - plain (None for plain PromptEOL itself)
    high: float | None = None
    dtype: str = "float32"


def _recipe_label(model: str, name: str) -> str:
    if name == PLAIN:
        return f"{MODEL_NAMES.get(model, model)}, plain PromptEOL (`--no-cp`)"
    same = len(set(MODEL_RECIPES[model].values())) == 1
    return f"{MODEL_NAMES.get(model, model)}, {'its recipe' if same else f'`{name}` recipe'}"


def _shipped_now(model: str, name: str) -> str:
    """The shipped recipe's description, as the recipes test step records it."""
    return MODEL_RECIPES[model][name].about.split("; ")[0]


def model_cells(out: Path, model: str) -> dict[str, list[Cell]]:
    """Every candidate of `model` on every job it has run, by job."""
    cells: dict[str, list[Cell]] = {}
    current = out / model / "recipes_test.json"
    older = out / model / "recipe.json"
    if current.is_file():
        step = json.loads(current.read_text())
        rows = {r["row"]: r for r in step["rows"]}
        recipes = MODEL_RECIPES[model]
        shipped = [n for n, about in step["recipes"].items() if about.split("; ")[0] == _shipped_now(model, n)]
        names = [n for n in shipped if n in rows]
        names = [n for i, n in enumerate(names) if recipes[n] not in [recipes[m] for m in names[:i]]]  # a copy once
        dtype = step.get("dtype", "float32")
        plain = rows[PLAIN]["average"]
        cells["sts"] = [Cell(model, PLAIN, plain, plain, dtype=dtype)]
        for name in names:
            low, high = step["comparisons"][f"{name} - {PLAIN}"]["average interval"]
            cells["sts"].append(Cell(model, name, rows[name]["average"], plain, low, high, dtype))
        folder, setting = out / model / "recipes-beyond", {n: n for n in names}
    elif older.is_file():
        # A recipe without post-processing, scored by the earlier recipe step (`describe` leaves the fit
        # out). Once the shipped recipe differs, only its plain PromptEOL rows still describe cpembed.
        step = json.loads(older.read_text())
        best = MODEL_RECIPES[model]["best"]
        shipped = step["recipe"] == describe(best) and best.fit is None
        rows = {r["row"]: r for r in step["rows"]}
        dtype = step.get("dtype", "float32")
        plain, recipe = rows[PLAIN]["average"], rows["recipe"]
        low, high = recipe["average vs PromptEOL"]
        cells["sts"] = [Cell(model, PLAIN, plain, plain, dtype=dtype)]
        if shipped:
            cells["sts"].append(Cell(model, "best", recipe["average"], plain, low, high, dtype))
        folder, setting = out / model / "recipe-beyond", {"best": "recipe"} if shipped else {}
    else:
        return {}
    for job, key in METRIC_KEYS.items():
        path, named = folder / f"{job}.json", setting
        if not path.is_file():  # not run for the recipes shipped now: the earlier step's plain PromptEOL still holds
            path, named = out / model / "recipe-beyond" / f"{job}.json", {}
        if not path.is_file():
            continue
        step = json.loads(path.read_text())
        rows = {r["setting"]: r for r in step["rows"]}
        dtype = step.get("dtype", "float32")
        plain = rows[PLAIN][key]
        cells[job] = [Cell(model, PLAIN, plain, plain, dtype=dtype)]
        for name, row_name in named.items():
            if row_name in rows:
                r = rows[row_name]
                cells[job].append(Cell(model, name, r[key], plain, r[f"{key} low"], r[f"{key} high"], dtype))
    for name, job in JOB_TASKS.items():  # the job recipes, each scored on its own job's test split
        path = out / model / "jobs-test" / f"{name}.json"
        if name not in MODEL_RECIPES[model] or not path.is_file():
            continue
        step = json.loads(path.read_text())
        if step["recipe"].split("; ")[0] != _shipped_now(model, name):
            continue  # scored for a recipe that is no longer shipped
        rows, key, dtype = {r["setting"]: r for r in step["rows"]}, METRIC_KEYS[job], step.get("dtype", "float32")
        plain, r = rows[PLAIN][key], rows[name]
        cells.setdefault(job, [Cell(model, PLAIN, plain, plain, dtype=dtype)])
        cells[job].append(Cell(model, name, r[key], plain, r[f"{key} low"], r[f"{key} high"], dtype))
    return cells


def minilm_scores(out: Path) -> dict[str, float]:
    folder = out / MINILM
    scores = {}
    if (folder / "sts.json").is_file():
        scores["sts"] = json.loads((folder / "sts.json").read_text())["report"]["average"]
    for job, key in METRIC_KEYS.items():
        if (path := folder / "beyond" / f"{job}.json").is_file():
            scores[job] = json.loads(path.read_text())["rows"][0][key]
    return scores


def speeds(performance: Path, model: str) -> dict[str, float]:
    """Sentences/s of plain PromptEOL and each recipe (the recipes benchmark), where it has run."""
    path = performance / f"recipes-{model}.json"
    if not path.is_file():
        return {}
    step = json.loads(path.read_text())
    return {name: rate for name, rate in step["rates"].items() if name == PLAIN or name in MODEL_RECIPES[model]}


def picks(out: Path) -> dict[str, tuple[Cell, list[Cell]]]:
    """Each job's best-scoring candidate, and every candidate, over the searched models."""
    by_job: dict[str, list[Cell]] = {}
    for model in MODEL_RECIPES:
        for job, cells in model_cells(out, model).items():
            by_job.setdefault(job, []).extend(cells)
    return {job: (max(by_job[job], key=lambda c: c.score), by_job[job]) for job in JOBS if job in by_job}


def jobs_markdown(out: Path, performance: Path) -> list[str]:
    chosen, minilm = picks(out), minilm_scores(out)
    lines = [
        "| job | test set (metric) | use | score | its plain PromptEOL | all-MiniLM-L6-v2 | sentences/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for job, (short, tune, data, metric) in JOBS.items():
        name = f"{short} (`{tune}`)"
        if job not in chosen:
            lines.append(f"| {name} | {data} ({metric}) | not measured yet | | | | |")
            continue
        cell = chosen[job][0]
        if cell.recipe == PLAIN:
            score = f"{cell.score:.2f}"
        else:
            score = f"{cell.score:.2f} ({cell.score - cell.plain:+.2f}, {cell.low:+.2f}..{cell.high:+.2f})"
        rate = speeds(performance, cell.model).get(cell.recipe)
        other = f"{minilm[job]:.2f}" if job in minilm else ""
        dtype = "" if cell.dtype == "float32" else f" ({cell.dtype})"
        lines.append(
            f"| {name} | {data} ({metric}) | {_recipe_label(cell.model, cell.recipe)}{dtype} | {score} | "
            f"{cell.plain:.2f} | {other} | {f'{rate:.1f}' if rate else 'not measured'} |"
        )
    return lines


def default_markdown(out: Path) -> list[str]:
    """One line per job on the default model's default recipe, the one a user gets with no choice."""
    model = next(iter(MODEL_RECIPES))
    cells = model_cells(out, model)
    parts = []
    for job, (name, tune, *_) in JOBS.items():
        name = f"{name} (`{tune}`)"
        best = next((c for c in cells.get(job, []) if c.recipe == "best"), None)
        tuned = next((c for c in cells.get(job, []) if c.recipe in JOB_TASKS), None)
        part = f"{name}: not measured yet" if best is None else f"{name} {_gain(best)}"
        if tuned is not None:
            part += f", its `--recipe {tuned.recipe}` {_gain(tuned)}"
        parts.append(part)
    return [
        f"On the default model ({MODEL_NAMES[model]}, its `best` recipe, and the recipe tuned for the job where "
        "it has one) against its plain PromptEOL: " + "; ".join(parts) + "."
    ]


def _gain(cell: Cell) -> str:
    return f"{cell.score:.2f} ({cell.score - cell.plain:+.2f}, {cell.low:+.2f}..{cell.high:+.2f})"


def jobs_plot(out: Path, path: Path) -> Path:
    """Each searched model's shipped recipes: gain over its plain PromptEOL per job, with 95% intervals."""
    from cpembed.evaluation.plots import gains_plot

    series: dict[str, dict[str, tuple[float, float, float]]] = {}
    for job, (_, cells) in picks(out).items():
        for c in cells:
            if c.recipe != PLAIN:
                gain = (c.score - c.plain, c.low, c.high)
                name = _recipe_label(c.model, c.recipe) if c.recipe not in JOB_TASKS else _recipe_label(c.model, "job")
                series.setdefault(name.replace("`", ""), {})[JOBS[job][0]] = gain  # job recipes: one series
    return gains_plot(
        series,
        [name for name, *_ in JOBS.values()],
        path,
        "Gain over the same model's plain PromptEOL on each job's test set (95% intervals)",
    )


def block(out: Path, performance: Path) -> str:
    return "\n".join([BEGIN, *jobs_markdown(out, performance), "", *default_markdown(out), END])


def write_readme(out: Path, performance: Path, readme: Path) -> bool:
    """Replace the README's jobs block with what the result files say now; False if it has no block."""
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        return False
    head, rest = text.split(BEGIN, 1)
    readme.write_text(head + block(out, performance) + rest.split(END, 1)[1])
    return True
