"""The best training-free recipe of each model: chosen on dev splits, then scored once on the test splits.

The rule (`choose_recipe`): every candidate with results on both STS-B dev splits is scored by the
mean of its SentEval STS-B dev and raw STS-B dev Spearman, as the CP defaults are. Candidates are,
for each prompt that has run, its plain embedding, its shipped default CP setting, Token
Prepending with and without that CP where `--tp` has run, the best setting of a searched
auxiliary prompt where the aux-prompt search has run and its winner beat the paper's
auxiliary prompt on both dev measures in that same run (the search may run in another dtype than
the grids; comparing inside one run keeps that from choosing), and the three best layers of each
layer sweep (every layer at the grid's best NS alpha, ranked on SentEval dev; PromptEOL's runs in
the report, other prompts' with `--sweep`), each also scored on raw STS-B dev: layers past the
paper's grid, and, where `--postprocess` has run, the plain embedding and default CP of each
prompt with each post-processing fitted on the tuning corpus (postprocess_dev.json). The recipe
("best") is the best-scoring candidate among those that beat plain PromptEOL on raw STS-B dev *and*
on the mean (the rule of the CP defaults, over more candidates); if none does, it is plain
PromptEOL. "fast" is the same rule over the single-prompt candidates (all but CK, which runs two
prompts). Nothing here reads a test split to choose.

The test step (`run_recipe_test`) then scores, on the seven STS tasks and raw STS-B test, the
recipe against plain PromptEOL (what it gains over the baseline everyone starts from) and against
its own prompt's plain embedding (what CP adds on top), with 95% paired-bootstrap intervals of
each difference: for raw STS-B test over pairs, for the seven-task average over each task's
pairs drawn independently. One JSON per model: <results>/<model>/recipe.json.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from cpembed.cache import EmbeddingCache
from cpembed.config import CPConfig, Recipe, TPConfig
from cpembed.encoder import CPEncoder
from cpembed.evaluation import search
from cpembed.evaluation.data import Pairs
from cpembed.evaluation.metrics import (
    bootstrap_mean_spearman_difference,
    bootstrap_spearman_difference,
    paired_cosine,
    spearman,
)
from cpembed.evaluation.search import label
from cpembed.evaluation.sts import RAW_TASKS, STS_TASKS, load_task
from cpembed.prompts import IRRELEVANT

from .beyond_steps import INTERVAL_RESAMPLES, TASKS, Row, _write, run_task, timed
from .report_steps import choose

SENTEVAL_DEV, RAW_DEV = "STS-B dev", "raw STS-B dev"
MULTI_PROMPT = ("ck",)  # prompts that run more than one template per sentence


def recipe_candidates(out: Path, model: str, prompts, post: bool = True) -> list[dict]:
    """Every candidate with both dev scores: prompt, cp (a CPConfig or None), tp ("2-7" or None),
    post ("whiten-128" or None; `post=False` leaves the post-processed candidates out)."""
    candidates = []
    for prompt in prompts:
        folder = out / model / prompt
        if not ((folder / "grid.json").is_file() and (folder / "grid_raw.json").is_file()):
            continue
        grid = json.loads((folder / "grid.json").read_text())["records"]
        raw = json.loads((folder / "grid_raw.json").read_text())["records"]
        scores = {
            r["label"]: (r["spearman"], next(x["spearman"] for x in raw if x["label"] == r["label"])) for r in grid
        }
        default = choose(grid, raw)["default"]
        for setting in [None] + ([default] if default else []):
            senteval, raw_dev = scores[label(setting)]
            candidates.append(_candidate(prompt, setting, None, senteval, raw_dev))
        if (folder / "tp_dev.json").is_file():
            step = json.loads((folder / "tp_dev.json").read_text())
            for row in step["rows"]:  # a recipe reads the prompt's own output layer, so TP rows read there
                if row["tp"] is not None and row.get("output_layer", step["output_layer"]) == step["output_layer"]:
                    setting = None if row["cp"] == "baseline" else default
                    if label(setting) != row["cp"]:
                        raise ValueError(f"{folder / 'tp_dev.json'} ran CP {row['cp']}, not the default: run it again")
                    candidates.append(_candidate(prompt, setting, row["tp"], row[SENTEVAL_DEV], row[RAW_DEV]))
        if (folder / "aux_prompt.json").is_file():
            candidates += _searched_aux(prompt, json.loads((folder / "aux_prompt.json").read_text()))
        if (folder / "layers.json").is_file() and (folder / "layers_raw.json").is_file():
            candidates += _swept_layers(prompt, folder)
        if post and (folder / "postprocess_dev.json").is_file():
            # its settings: plain, the default, and a swept layer that is the model's raw recipe
            known = {label(c["cp"]): c["cp"] for c in candidates if c["prompt"] == prompt and c["tp"] is None}
            known |= {label(None): None, label(default): default}
            candidates += _post_processed(prompt, known, json.loads((folder / "postprocess_dev.json").read_text()))
    unique = {}  # a swept layer can be the grid's default setting too: keep its grid scores
    for c in candidates:
        unique.setdefault((c["prompt"], c["cp"], c["tp"], c["post"]), c)
    return list(unique.values())


def _post_processed(prompt: str, known: dict[str, CPConfig | None], step: dict) -> list[dict]:
    """The post-processing dev step's rows fitted on the tuning corpus, each a candidate; `known`:
    the prompt's candidate CP settings by label (a row with another setting is stale)."""
    candidates = []
    for r in step["records"]:
        if r["fitted_on"] == "tuning corpus":
            if r["setting"] not in known:
                raise ValueError(f"the {prompt} post-processing step ran CP {r['setting']}, not a candidate: run again")
            candidates.append(_candidate(prompt, known[r["setting"]], None, r[SENTEVAL_DEV], r[RAW_DEV], r["post"]))
    return candidates


def _swept_layers(prompt: str, folder: Path) -> list[dict]:
    """The layer sweep's best layers on SentEval dev that were also scored on raw dev: layers the
    paper's grid leaves out, each a candidate with both dev scores like any grid setting."""
    senteval = {r["label"]: r["spearman"] for r in json.loads((folder / "layers.json").read_text())["records"]}
    candidates = []
    for r in json.loads((folder / "layers_raw.json").read_text())["records"]:
        if r["norm"] != "none":
            setting = CPConfig(**{field: r[field] for field in ("layer", "alpha", "norm", "site", "aux_template")})
            candidates.append(_candidate(prompt, setting, None, senteval[r["label"]], r["spearman"]))
    return candidates


def _searched_aux(prompt: str, report: dict) -> list[dict]:
    """The search's winner as a candidate, if it beat the paper's prompt at its best on both dev measures."""
    rows = report["grid"][1:]
    best = max((r for r in rows if r["aux_template"] != IRRELEVANT), key=lambda r: r["spearman"])
    paper = max((r for r in rows if r["aux_template"] == IRRELEVANT), key=lambda r: r["spearman"])
    if not (best["spearman"] > paper["spearman"] and best[search.RAW_DEV] > paper[search.RAW_DEV]):
        return []
    setting = CPConfig(**{field: best[field] for field in ("layer", "alpha", "norm", "site", "aux_template")})
    return [_candidate(prompt, setting, None, best[search.SENTEVAL_DEV], best[search.RAW_DEV])]


def _candidate(
    prompt: str, cp: CPConfig | None, tp: str | None, senteval: float, raw_dev: float, post: str | None = None
) -> dict:
    return {
        "prompt": prompt,
        "cp": cp,
        "tp": tp,
        "post": post,
        SENTEVAL_DEV: senteval,
        RAW_DEV: raw_dev,
        "score": (senteval + raw_dev) / 2,
    }


def choose_recipe(candidates: list[dict], fast: bool = False) -> dict:
    """The rule of the module's docstring: the candidate the recipe is ("fast": single prompts only)."""
    plain = next(
        c
        for c in candidates
        if c["prompt"] == "prompteol" and c["cp"] is None and c["tp"] is None and not c.get("post")
    )
    better = [c for c in candidates if c["score"] > plain["score"] and c[RAW_DEV] > plain[RAW_DEV]]
    if fast:
        better = [c for c in better if c["prompt"] not in MULTI_PROMPT]
    return max(better, key=lambda c: c["score"]) if better else plain


def as_recipe(candidate: dict) -> Recipe:
    return Recipe(candidate["prompt"], candidate["cp"], TPConfig.parse(candidate["tp"]) if candidate["tp"] else None)


def describe(recipe: Recipe) -> str:
    """ "ck + NR l=7", "prompteol + TP 2-7", "prompteol (plain)"; a searched auxiliary prompt is quoted."""
    parts = ([_cp_label(recipe.cp)] if recipe.cp else []) + (
        [f"TP {recipe.tp.first}-{recipe.tp.last}"] if recipe.tp else []
    )
    return f"{recipe.prompt} + {' + '.join(parts)}" if parts else f"{recipe.prompt} (plain)"


def _cp_label(cp: CPConfig) -> str:
    return label(cp) if cp.aux_template == IRRELEVANT else f'{label(cp)} with aux "{cp.aux_template}"'


def run_recipe_test(
    model: str, lm, recipe: Recipe, data_dir: Path, raw_dir: Path, out: Path, batch_size: int = 16
) -> dict:
    """The test step for one model (see the module docstring), unless its JSON exists for this recipe."""
    path = out / model / "recipe.json"
    if path.is_file() and (kept := json.loads(path.read_text()))["recipe"] == describe(recipe):
        return kept
    started = time.perf_counter()
    rows = compared_rows(recipe)
    without_cp_name = list(rows)[1]
    cache = EmbeddingCache()
    tasks = {}  # task -> (gold, {row: cosines})
    for task in STS_TASKS + RAW_TASKS:
        pairs = Pairs.concatenate(list(load_task(task, data_dir, raw_dir).values()))
        unique = list(dict.fromkeys(pairs.sentences1 + pairs.sentences2))
        index = {s: i for i, s in enumerate(unique)}
        cosines = {}
        passes: dict[tuple, list[str]] = {}  # rows with one prompt and TP share a pass: its plain and CP rows
        for name, (prompt_recipe, _) in rows.items():
            passes.setdefault((prompt_recipe.prompt, prompt_recipe.tp), []).append(name)
        for (prompt, tp), names in passes.items():
            encoder = CPEncoder(lm, prompt, cp=None, tp=tp)
            all_vectors = encoder.encode_settings(
                unique, [rows[name][1] for name in names], batch_size=batch_size, cache=cache
            )
            for name, vectors in zip(names, all_vectors, strict=True):
                first, second = (
                    vectors[[index[s] for s in pairs.sentences1]],
                    vectors[[index[s] for s in pairs.sentences2]],
                )
                cosines[name] = paired_cosine(first, second)
        tasks[task] = (pairs.scores, cosines)
    dtype = str(lm.dtype).removeprefix("torch.")
    result = {"model": model, "recipe": describe(recipe), "dtype": dtype, "rows": [], "resamples": INTERVAL_RESAMPLES}
    for name in rows:
        scores = {task: 100 * spearman(cos[name], gold) for task, (gold, cos) in tasks.items()}
        row = {"row": name, **scores, "average": float(np.mean([scores[t] for t in STS_TASKS]))}
        if name == "recipe":
            for against, key in (("plain PromptEOL", "vs PromptEOL"), (without_cp_name, "vs its prompt")):
                seven = [(gold, cos[against], cos[name]) for task, (gold, cos) in tasks.items() if task in STS_TASKS]
                gold, cos = tasks[RAW_TASKS[0]]
                row[f"average {key}"] = bootstrap_mean_spearman_difference(seven, INTERVAL_RESAMPLES)
                row[f"raw {key}"] = bootstrap_spearman_difference(gold, cos[against], cos[name], INTERVAL_RESAMPLES)
        result["rows"].append(row)
    result["seconds"] = round(time.perf_counter() - started, 1)
    _write(path, result)
    return json.loads(path.read_text())  # as a later run reads it back


def compared_rows(recipe: Recipe) -> dict[str, tuple[Recipe, CPConfig | None]]:
    """What a recipe is scored beside: plain PromptEOL (the baseline everyone starts from), the recipe
    without its CP (what CP adds on top of the prompt and TP it is combined with), and the recipe."""
    without_cp = Recipe(recipe.prompt, None, recipe.tp)
    return {
        "plain PromptEOL": (Recipe("prompteol", None), None),
        describe(without_cp) if recipe.tp else f"plain {recipe.prompt}": (without_cp, None),
        "recipe": (recipe, recipe.cp),
    }


def run_recipe_beyond(model: str, lm, recipe: Recipe, root: Path, out: Path, batch_size: int = 16, tasks=TASKS) -> None:
    """The recipe on the beyond-STS test splits, one JSON per task under <results>/<model>/recipe-beyond/
    (kept while the recipe stands): its rows' intervals are against plain PromptEOL, and "over its
    prompt" holds the recipe against itself without CP, where that is another embedding."""
    encoders: dict[tuple, CPEncoder] = {}  # one per prompt and TP, so rows that share it share a pass
    rows = []
    for name, (part, cp) in compared_rows(recipe).items():
        encoder = encoders.setdefault((part.prompt, part.tp), CPEncoder(lm, part.prompt, cp=None, tp=part.tp))
        if not any(r.encoder is encoder and r.setting == cp for r in rows):  # PromptEOL's plain rows are one
            rows.append(Row(name, encoder, cp))
    for task in tasks:
        path = out / model / "recipe-beyond" / f"{task}.json"
        if path.is_file() and json.loads(path.read_text())["recipe"] == describe(recipe):
            continue
        started, cache = time.perf_counter(), EmbeddingCache()
        result = run_task(task, rows, root, batch_size, cache, path)
        if len(rows) == 3:  # the second comparison reads the same embeddings (retrieval: tallies) back
            result["over its prompt"] = run_task(task, rows[1:], root, batch_size, cache, path)["rows"][1]
        _write(path, result | {"model": model, "recipe": describe(recipe)} | timed(started, lm))


def recipe_markdown(out: Path, models, prompts) -> list[str]:
    """The "Recipes" section of docs/RESULTS.md: each model's candidates on dev, then its recipe on test."""
    minilm_path = out / "all-MiniLM-L6-v2" / "sts.json"
    minilm = json.loads(minilm_path.read_text())["report"]["average"] if minilm_path.is_file() else None
    lines = []
    for model in models:
        candidates = recipe_candidates(out, model, prompts, post=False)
        if not any(c["prompt"] == "prompteol" and c["cp"] is None for c in candidates):
            continue
        chosen = choose_recipe(candidates)
        lines += [
            f"**{model}: dev splits** (the chosen recipe in bold)",
            "",
            "| prompt | CP | TP | STS-B dev | raw STS-B dev | mean |",
            "|---|---|---|---|---|---|",
        ]
        for c in sorted(candidates, key=lambda c: -c["score"]):
            mark, cp = "**" if c is chosen else "", _cp_label(c["cp"]) if c["cp"] else "—"
            lines.append(
                f"| {mark}{c['prompt']}{mark} | {cp} | {c['tp'] or '—'} | {c[SENTEVAL_DEV]:.2f} "
                f"| {c[RAW_DEV]:.2f} | {mark}{c['score']:.2f}{mark} |"
            )
        lines.append("")
        lines += _test_lines(out, model, chosen, minilm) + _beyond_lines(out, model, describe(as_recipe(chosen)))
    if not lines:
        return []
    return [
        "## Recipes (without post-processing): the best raw embedding of each model",
        "",
        "`python -m experiments --recipes`. Candidates: each prompt's plain embedding, its default CP,",
        "Token Prepending with and without it where `--tp` has run, the best setting of a searched",
        "auxiliary prompt where the aux-prompt search has run and its winner beat the paper's prompt",
        "on both dev measures in that run (its scores are that run's, in its dtype), and the three best",
        "layers of each layer sweep (PromptEOL's, and other prompts' where `--sweep` has run; ranked on",
        "SentEval dev, each also scored on raw STS-B dev; the paper's grid covers l=3..7). The rule",
        "(`choose_recipe` in `experiments/recipe_steps.py`): the best mean of the two STS-B dev splits, if it",
        "also beats plain PromptEOL on raw STS-B dev. Where post-processing has not been searched (the Qwen",
        'models), the chosen recipe ships as the model\'s `best`; elsewhere the section "The defaults" has the',
        "recipes that ship. It is scored once on the test splits, with 95% paired-bootstrap intervals",
        "(raw STS-B test: over pairs; the seven-task average: over each task's pairs, drawn independently).",
        "SmolLM2-135M's test splits were read twice: an earlier recipe, CK with NR at l=7, was scored on them",
        "before the candidates grew (see the notes).",
        "`python -m experiments --recipes --beyond` scores it on the beyond-STS test splits too, beside plain",
        'PromptEOL and itself without CP, with the intervals of the section "Beyond STS".',
        "",
        *lines,
    ]


def _test_lines(out: Path, model: str, chosen: dict, minilm: float | None) -> list[str]:
    """The recipe's test-split table and its differences, or a line saying they have not run."""
    path = out / model / "recipe.json"
    if not path.is_file():
        return [f"The test splits for {describe(as_recipe(chosen))} have not run.", ""]
    step = json.loads(path.read_text())
    header = ["row", *STS_TASKS, "avg", "STS-B raw"]
    lines = [
        f"**{model}: test splits**, recipe {step['recipe']} ({step['dtype']}, {step['seconds']:.0f} s)",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in step["rows"]:
        cells = " | ".join(f"{row[t]:.2f}" for t in STS_TASKS)
        lines.append(f"| {row['row']} | {cells} | **{row['average']:.2f}** | {row[RAW_TASKS[0]]:.2f} |")
    plain, own, recipe = step["rows"]  # plain PromptEOL, the recipe without CP, the recipe
    lines += [""]
    for name, key, base in (
        ("plain PromptEOL", "vs PromptEOL", plain),
        (f"{own['row']} (the recipe without CP)", "vs its prompt", own),
    ):
        average = recipe["average"] - base["average"]
        raw = recipe[RAW_TASKS[0]] - base[RAW_TASKS[0]]
        (a_low, a_high), (r_low, r_high) = recipe[f"average {key}"], recipe[f"raw {key}"]
        lines.append(
            f"- Against {name}: seven-task average {average:+.2f} [{a_low:+.2f}, {a_high:+.2f}], "
            f"raw STS-B test {raw:+.2f} [{r_low:+.2f}, {r_high:+.2f}]."
        )
    if minilm is not None:
        gap = minilm - recipe["average"]
        lines.append(
            f"- all-MiniLM-L6-v2's seven-task average is {minilm:.2f}: the recipe is "
            f"{abs(gap):.2f} points {'behind' if gap > 0 else 'ahead of'} it."
        )
    lines.append("")
    return lines


# Each beyond-STS task's name in the recipe table and the metric it is read by (the one with an interval).
BEYOND_HEADLINES = {
    "retrieval": ("SciFact retrieval", "nDCG@10"),
    "rerank": ("WikiQA reranking", "MAP"),
    "pairs": ("TwitterURL pairs", "AP"),
    "cluster": ("20 Newsgroups clustering", "V-measure"),
    "sts-multilingual": ("STS, 11 languages", "mean"),
}


def _beyond_lines(out: Path, model: str, recipe: str) -> list[str]:
    """The recipe on each beyond-STS task it has run: its rows, all-MiniLM-L6-v2, and the recipe's
    differences with their intervals."""
    paths = {task: out / model / "recipe-beyond" / f"{task}.json" for task in BEYOND_HEADLINES}
    steps = {task: json.loads(path.read_text()) for task, path in paths.items() if path.is_file()}
    steps = {task: step for task, step in steps.items() if step["recipe"] == recipe}
    if not steps:
        return []
    first = next(iter(steps.values()))
    names = [row["setting"] for row in first["rows"]]
    header = ["task", "metric", *names, "all-MiniLM-L6-v2", "recipe - plain PromptEOL [95%]"]
    if len(names) == 3:
        header.append(f"recipe - {names[1]} [95%]")
    seconds = sum(step["seconds"] for step in steps.values())
    lines = [
        f"**{model}: beyond STS**, recipe {first['recipe']} ({first.get('dtype', 'float32')}, {seconds:.0f} s)",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for task, step in steps.items():
        title, metric = BEYOND_HEADLINES[task]
        minilm_path = out / "all-MiniLM-L6-v2" / "beyond" / f"{task}.json"
        minilm = f"{json.loads(minilm_path.read_text())['rows'][0][metric]:.2f}" if minilm_path.is_file() else "—"
        rows = step["rows"]
        comparisons = [(rows[0], rows[-1])] + ([(rows[1], step["over its prompt"])] if len(rows) == 3 else [])
        differences = [
            f"{scored[metric] - base[metric]:+.2f} [{scored[f'{metric} low']:+.2f}, {scored[f'{metric} high']:+.2f}]"
            for base, scored in comparisons
        ]
        cells = [title, metric, *(f"{row[metric]:.2f}" for row in rows), minilm, *differences]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if missing := [title for task, (title, _) in BEYOND_HEADLINES.items() if task not in steps]:
        lines += [f"Not run yet: {', '.join(missing)}.", ""]
    return lines
