"""Each model's packaged recipes ("best", the default, and "fast"), with their packaged fits, scored
once on the test splits against plain PromptEOL.

The recipes are chosen on dev splits only (`recipe_steps.choose_recipe`, which
tests/test_defaults.py checks `cpembed.config.MODEL_RECIPES` against). Test step
(<results>/<model>/recipes_test.json): the seven STS tasks and raw STS-B test for plain PromptEOL
and each recipe, the recipe without CP (the same post-processing fitted again on the same tuning
corpus: CP's own share) and without its post-processing, with 95% paired-bootstrap intervals of
each difference, and the mean cosine of unrelated pairs. The rows come from the embedding cache
where the post-processing steps already computed them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from cpembed.cache import EmbeddingCache
from cpembed.config import GENERAL_RECIPES, MODEL_RECIPES, Recipe, reported_dtype
from cpembed.encoder import CPEncoder
from cpembed.evaluation.corpus import tuning_corpus
from cpembed.evaluation.sts import RAW_TASKS, STS_TASKS
from cpembed.postprocess import fit, packaged_fit

from .beyond_steps import JOB_TASKS, TASKS, Row, _write, run_task, timed
from .postprocess_steps import PER_SOURCE, _unrelated_cosine, compared, minilm_beyond_cell, pooled_tasks, scored

PLAIN = "plain PromptEOL"


def recipe_rows(model: str) -> dict[str, tuple[Recipe, str]]:
    """The rows scored: name -> (recipe, variant), variant one of "recipe", "without CP", "without post"."""
    rows = {PLAIN: (Recipe("prompteol", None), "recipe")}
    for name in GENERAL_RECIPES:
        recipe = MODEL_RECIPES[model][name]
        if name != "best" and recipe == MODEL_RECIPES[model]["best"]:
            continue  # "fast" is "best": one row
        rows[name] = (recipe, "recipe")
        if recipe.cp is not None:
            rows[f"{name} without CP"] = (recipe, "without CP")
        if recipe.fit is not None:
            rows[f"{name} without post-processing"] = (recipe, "without post")
    return rows


def recipes_test_path(out: Path, model: str, dtype: str) -> Path:
    """The test step's file: recipes_test.json in the model's reported dtype, with the dtype in its
    name for another (a recipe that ships fits for both)."""
    return out / model / ("recipes_test.json" if dtype == reported_dtype(model) else f"recipes_test-{dtype}.json")


def run_recipes_test(
    model: str, lm, data_dir: Path, raw_dir: Path, beyond_root: Path, out: Path, batch_size: int = 16
) -> dict:
    path = recipes_test_path(out, model, str(lm.dtype).removeprefix("torch."))
    if path.is_file():
        return json.loads(path.read_text())
    started = time.perf_counter()
    pooled = pooled_tasks(data_dir, raw_dir)
    corpus = tuning_corpus(data_dir, beyond_root, PER_SOURCE)
    unique = list(dict.fromkeys(corpus + [s for p in pooled.values() for s in p[0] + p[1]]))
    row = {s: i for i, s in enumerate(unique)}
    fit_rows = [row[s] for s in corpus]
    wanted = {
        name: ((recipe.prompt, recipe.tp), None if variant == "without CP" else recipe.cp)
        for name, (recipe, variant) in recipe_rows(model).items()
    }
    computed = {}  # (prompt, tp) -> {setting: vectors}: the settings of one prompt and TP share a pass
    for prompt, tp in dict.fromkeys(key for key, _ in wanted.values()):
        settings = list(dict.fromkeys(cp for key, cp in wanted.values() if key == (prompt, tp)))
        encoder = CPEncoder(lm, prompt, cp=None, tp=tp)
        vectors = encoder.encode_settings(
            unique, settings, batch_size=batch_size, show_progress_bar=True, cache=EmbeddingCache()
        )
        computed[prompt, tp] = dict(zip(settings, vectors, strict=True))
    rows = {}
    for name, (recipe, variant) in recipe_rows(model).items():
        encoder = CPEncoder(lm, recipe.prompt, cp=None, tp=recipe.tp)
        key, cp = wanted[name]
        vectors = computed[key][cp]
        if recipe.fit is None or variant == "without post":
            rows[name] = vectors
            continue
        shipped = packaged_fit(recipe.fit, str(lm.dtype).removeprefix("torch."))
        if variant == "recipe":
            shipped.check(encoder.settings(cp).digest(), f"{model}'s {name} recipe")
            rows[name] = shipped.apply(vectors)
        else:  # the same post-processing, fitted the same way for the embedding without CP
            dimensions = None if shipped.dimensions == shipped.input_dimension else shipped.dimensions
            rows[name] = fit(vectors[fit_rows], shipped.kind, "", dimensions).apply(vectors)
    cosines, scores = scored(rows, pooled, row)
    raw_pairs = pooled[RAW_TASKS[0]]
    comparisons = {}
    for name in GENERAL_RECIPES:
        if name not in rows:
            continue
        for against in (PLAIN, f"{name} without CP", f"{name} without post-processing"):
            if against in rows:
                comparisons[f"{name} - {against}"] = compared(scores, cosines, pooled, name, against)
    result = {
        "model": model,
        "recipes": {name: MODEL_RECIPES[model][name].about for name in GENERAL_RECIPES},
        "rows": [
            {
                "row": name,
                **scores[name],
                "average": float(np.mean([scores[name][t] for t in STS_TASKS])),
                "unrelated_cosine": _unrelated_cosine(
                    vectors, [row[s] for s in raw_pairs[0]], [row[s] for s in raw_pairs[1]]
                ),
            }
            for name, vectors in rows.items()
        ],
        "comparisons": comparisons,
    } | timed(started, lm)
    _write(path, result)
    return json.loads(path.read_text())


def _recipe_row(model: str, name: str, lm, encoders: dict) -> Row:
    """A packaged recipe as a task row; recipes with one prompt and TP share its encoder (one pass)."""
    recipe = MODEL_RECIPES[model][name]
    key = (recipe.prompt, recipe.tp)
    encoder = encoders.setdefault(key, CPEncoder(lm, recipe.prompt, cp=None, tp=recipe.tp))
    dtype = str(lm.dtype).removeprefix("torch.")
    post = packaged_fit(recipe.fit, dtype) if recipe.fit not in (None, "center") else None
    if post is not None:
        post.check(encoder.settings(recipe.cp).digest(), f"{model}'s {name} recipe")
    return Row(name, encoder, recipe.cp, post)


def _plain_row(lm, encoders: dict) -> Row:
    return Row(PLAIN, encoders.setdefault(("prompteol", None), CPEncoder(lm, "prompteol", cp=None)))


def run_recipes_beyond(model: str, lm, root: Path, out: Path, batch_size: int = 16, tasks=TASKS) -> None:
    """Plain PromptEOL and each packaged recipe, with its packaged fit, on the beyond-STS test
    splits: one JSON per task under <results>/<model>/recipes-beyond/ (does a recipe chosen on STS
    cost another job?)."""
    encoders: dict = {}
    rows = [_plain_row(lm, encoders)]
    rows += [_recipe_row(model, name, lm, encoders) for name in recipe_rows(model) if name in GENERAL_RECIPES]
    for task in tasks:
        path = out / model / "recipes-beyond" / f"{task}.json"
        if path.is_file():
            continue
        started = time.perf_counter()
        result = run_task(task, rows, root, batch_size, EmbeddingCache(), path)
        _write(path, result | {"model": model} | timed(started, lm))


def run_job_recipes_test(model: str, lm, root: Path, out: Path, batch_size: int = 16) -> None:
    """Each job recipe of the model (`cpembed tune --job JOB` on the job's shared tuning split) scored
    once on the job's test split, against plain PromptEOL and against the `best` recipe, each with a
    95% paired-bootstrap interval: <results>/<model>/jobs-test/<job>.json."""
    for job in JOB_TASKS:
        path = out / model / "jobs-test" / f"{job}.json"
        if job not in MODEL_RECIPES[model] or path.is_file():
            continue
        started, cache, encoders = time.perf_counter(), EmbeddingCache(), {}
        plain, tuned, best = _plain_row(lm, encoders), *(_recipe_row(model, n, lm, encoders) for n in (job, "best"))
        against_plain = run_task(JOB_TASKS[job], [plain, tuned, best], root, batch_size, cache, path)
        against_best = run_task(JOB_TASKS[job], [best, tuned], root, batch_size, cache, path)  # rows from the cache
        result = against_plain | {"recipe": MODEL_RECIPES[model][job].about, "vs best": against_best["rows"][1]}
        _write(path, result | {"job": job, "model": model} | timed(started, lm))


def _beyond_lines(out: Path, model: str) -> list[str]:
    from .recipe_steps import BEYOND_HEADLINES

    steps = {
        task: json.loads(path.read_text())
        for task in BEYOND_HEADLINES
        if (path := out / model / "recipes-beyond" / f"{task}.json").is_file()
    }
    if not steps:
        return [f"The beyond-STS test splits have not run for {model}'s recipes.", ""]
    names = [r["setting"] for r in next(iter(steps.values()))["rows"][1:]]
    lines = [
        f"**{model}, beyond STS** (test splits; each recipe against plain PromptEOL, 95% interval)",
        "",
        "| task | metric | plain PromptEOL | " + " | ".join(names) + " | all-MiniLM-L6-v2 |",
        "|---|---|---|" + "---|" * len(names) + "---|",
    ]
    for task, step in steps.items():
        title, metric = BEYOND_HEADLINES[task]
        plain, *scored = step["rows"]
        minilm = minilm_beyond_cell(out, task, metric)
        cells = " | ".join(
            f"{r[metric]:.2f} ({r[metric] - plain[metric]:+.2f}, {r[f'{metric} low']:+.2f}..{r[f'{metric} high']:+.2f})"
            for r in scored
        )
        lines.append(f"| {title} | {metric} | {plain[metric]:.2f} | {cells} | {minilm} |")
    return [*lines, ""]


def _primary_first(path: Path) -> tuple[bool, str]:
    return path.name != "recipes_test.json", path.name


def recipes_markdown(out: Path, models) -> list[str]:
    """The "Defaults" section of docs/RESULTS.md: each model's recipes on the test splits, MiniLM beside them."""
    lines = []
    minilm_path = out / "all-MiniLM-L6-v2" / "sts.json"
    minilm = json.loads(minilm_path.read_text())["report"] if minilm_path.is_file() else None
    performance = out.parent / "performance"
    raw = RAW_TASKS[0]
    steps = [(m, p) for m in models for p in sorted((out / m).glob("recipes_test*.json"), key=_primary_first)]
    for model, path in steps:
        step = json.loads(path.read_text())
        cost_path = performance / f"recipes-{model}.json"
        timed = json.loads(cost_path.read_text()) if cost_path.is_file() else {}
        cost = timed["relative"] if timed.get("dtype") == step.get("dtype", "float32") else {}
        header = ["row", *STS_TASKS, "avg", "STS-B raw", "unrelated cosine", "sentences/s vs plain"]
        lines += [
            f"**{model}** (test splits, scored once; {step.get('dtype', 'float32')}, {step['seconds']:.0f} s)",
            "",
            *[f"- {name}: {about}" for name, about in step["recipes"].items()],
            "",
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
        ]
        for r in step["rows"]:
            mark = "**" if r["row"] in GENERAL_RECIPES else ""
            speed = f"{cost[r['row']]:.2f}x" if r["row"] in cost else ""
            cells = " | ".join(f"{r[t]:.2f}" for t in STS_TASKS)
            lines.append(
                f"| {mark}{r['row']}{mark} | {cells} | **{r['average']:.2f}** | {r[raw]:.2f} "
                f"| {r['unrelated_cosine']:.2f} | {speed} |"
            )
        if minilm:
            cells = " | ".join(f"{minilm['tasks'][t]['spearman']:.2f}" for t in STS_TASKS)
            lines.append(
                f"| all-MiniLM-L6-v2 (trained) | {cells} | **{minilm['average']:.2f}** "
                f"| {minilm['tasks'][raw]['spearman']:.2f} | | |"
            )
        lines.append("")
        for name, c in step["comparisons"].items():
            (a_low, a_high), (r_low, r_high) = c["average interval"], c["raw interval"]
            lines.append(
                f"- {name}: seven-task average {c['average']:+.2f} [{a_low:+.2f}, {a_high:+.2f}], "
                f"raw STS-B test {c['raw']:+.2f} [{r_low:+.2f}, {r_high:+.2f}]."
            )
        lines.append("")
        if path.name == "recipes_test.json":
            lines += _beyond_lines(out, model)
    if not lines:
        return []
    return [
        "## The defaults: each model's recipes on the test splits",
        "",
        "`python -m experiments --recipes-test`. `CPEncoder()`, `cpembed encode` and `cpembed serve` use a",
        'model\'s "best" recipe; `recipe="fast"` is its best single-prompt one. Both were chosen on dev splits only',
        "(`choose_recipe` in `experiments/recipe_steps.py`, over every candidate of the sections below,",
        "post-processing included) and are scored here once, with the fits that ship with cpembed, against",
        "plain PromptEOL, against themselves without CP (the same post-processing fitted again: CP's own",
        "share) and without their post-processing; 95% paired-bootstrap intervals. sentences/s vs plain is",
        "measured side by side in one run (`benchmarks/recipes.py`, docs/PERFORMANCE.md).",
        "",
        *lines,
    ]


def job_recipes_markdown(out: Path, models) -> list[str]:
    """The "Job recipes" section of docs/RESULTS.md: what `cpembed tune` chose for each job on its
    tuning split, and that choice scored once on the job's test split."""
    from .jobs_table import METRIC_KEYS

    performance = out.parent / "performance"
    lines = []
    for model in models:
        tuned = [path for job in JOB_TASKS if (path := out / model / "tune" / f"{job}.json").is_file()]
        if not tuned:
            continue
        cost_path = performance / f"recipes-{model}.json"
        cost = json.loads(cost_path.read_text())["relative"] if cost_path.is_file() else {}
        lines += [
            f"**{model}**",
            "",
            "| job | tuned on (units in all) | units its last round scored | chosen | dev vs plain PromptEOL | tune s "
            "| test set | test | vs plain PromptEOL | vs best | sentences/s vs plain |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for path in tuned:
            job, origin = path.stem, json.loads(path.read_text())["origin"]
            chosen = origin["best"]["candidate"] if origin["beat_noise"] else PLAIN
            low, high = origin["interval"]
            dev = f"{origin['score']:.2f} vs {origin['baseline']:.2f} ({origin['score'] - origin['baseline']:+.2f}, "
            dev += f"{low:+.2f}..{high:+.2f})"
            test_path = out / model / "jobs-test" / f"{job}.json"
            speed = f"{cost[job]:.2f}x" if job in cost else ""
            last = origin["rounds"][-1]["units"]
            head = f"| {job} | {', '.join(origin['data'])} | {last} | {chosen} | {dev} | {origin['seconds']:.0f} |"
            if not test_path.is_file():
                lines.append(f"{head} not scored yet | | | | {speed} |")
                continue
            step = json.loads(test_path.read_text())
            key = METRIC_KEYS[JOB_TASKS[job]]
            rows = {r["setting"]: r for r in step["rows"]}
            r, b = rows[job], step["vs best"]
            lines.append(
                f"{head} {step['data']} ({key}) | {r[key]:.2f} | {r[key + ' vs baseline']:+.2f} "
                f"({r[key + ' low']:+.2f}..{r[key + ' high']:+.2f}) | {b[key + ' vs baseline']:+.2f} "
                f"({b[key + ' low']:+.2f}..{b[key + ' high']:+.2f}) | {speed} |"
            )
        lines.append("")
    if not lines:
        return []
    return [
        "## Job recipes: a setting tuned for each job",
        "",
        "`cpembed tune MODEL --job JOB --budget 10m --dtype float32` on the job's shared tuning split (its spec",
        "files are docs/results/<model>/tune/), shipped as the recipe named by the job (`--recipe reranking`),",
        "then `python -m experiments --job-recipes` scores it once on the job's test split against plain",
        "PromptEOL and against the model's `best` recipe (chosen on STS), with 95% paired-bootstrap intervals.",
        "dev vs plain PromptEOL is tune's own comparison on the units its last round scored. Qwen2.5-Coder-1.5B",
        "is tuned and scored with `--dtype bfloat16`, as every search of that model.",
        "",
        *lines,
    ]
