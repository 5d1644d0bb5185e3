"""Fitted post-processing (centering, whitening) of each model and prompt: chosen on dev splits,
then scored once on the test splits.

Dev step (<results>/<model>/<prompt>/postprocess_dev.json): the prompt's plain embedding, its
shipped default CP and, where the model's best recipe is this prompt with another CP, that one, from
one pass over a tuning corpus (`tuning_corpus`: up to 600 sentences from each of STS-B train, 20NG
train subjects, PIT2015 dev and SciFact's train claims) and both STS-B dev splits. Each post-
processing is fitted on the tuning corpus only and scored on the dev splits: none, center, whiten,
and whiten to k dimensions. A second fit leaves STS-B train out of the corpus, to see whether the
gain needs text like the dev split's. Each row also gives the mean cosine of unrelated pairs (each
raw dev pair's first sentence with the next pair's second).

The rule (`choose`): the best mean of the two dev splits among the candidates that beat the plain
embedding without post-processing on raw STS-B dev and on that mean (the rule of the recipes).

Test step (postprocess_test.json): the seven STS tasks and raw STS-B test, for the plain embedding
and the default CP, each without and with the chosen post-processing (fitted again for each on the
same corpus), with 95% paired-bootstrap intervals of the chosen candidate against the plain
embedding, against itself without CP, and against itself without the post-processing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from cpembed.cache import EmbeddingCache
from cpembed.config import BEST_RECIPE, default_cp
from cpembed.encoder import CPEncoder
from cpembed.evaluation.corpus import PER_SOURCE, SOURCES, tuning_corpus
from cpembed.evaluation.data import load_raw_stsb, load_stsb
from cpembed.evaluation.metrics import (
    bootstrap_mean_spearman_difference,
    bootstrap_spearman_difference,
    paired_cosine,
    spearman,
)
from cpembed.evaluation.search import label
from cpembed.evaluation.sts import RAW_TASKS, STS_TASKS, load_task
from cpembed.postprocess import fit

from .beyond_steps import INTERVAL_RESAMPLES, TASKS, Row, _write, run_task, timed

DIMENSIONS = (64, 128, 192, 256, 384)
SENTEVAL_DEV, RAW_DEV = "STS-B dev", "raw STS-B dev"


def posts(width: int) -> list[tuple[str, int | None]]:
    """Every post-processing tried: (kind, dimensions), "none" first."""
    return [("none", None), ("center", None), ("whiten", None)] + [("whiten", k) for k in DIMENSIONS if k < width]


def post_label(kind: str, dimensions: int | None) -> str:
    return kind if dimensions is None else f"{kind}-{dimensions}"


def _apply(kind: str, dimensions, fit_rows: np.ndarray, rows: np.ndarray, digest: str = "") -> np.ndarray:
    if kind == "none":
        return rows
    return fit(fit_rows, kind, digest, dimensions).apply(rows)


def _compared(model: str, lm, prompt: str, data_dir: Path, beyond_root: Path) -> tuple:
    """The prompt's encoder, its settings (plain, the shipped default CP, and the CP of the model's
    best recipe where that recipe is this prompt with another setting, as Qwen2.5-Coder-1.5B's
    layer-sweep pick is) and the tuning corpus."""
    settings = [None] + ([cp] if (cp := default_cp(model, prompt)) is not None else [])
    best = BEST_RECIPE.get(model)
    if best is not None and best.prompt == prompt and best.cp not in settings:
        settings.append(best.cp)
    return CPEncoder(lm, prompt, cp=None), settings, tuning_corpus(data_dir, beyond_root, PER_SOURCE)


def _unrelated_cosine(vectors, first: list[int], second: list[int]) -> float:
    """Mean cosine of each pair's first sentence with the next pair's second: unrelated sentences."""
    return float(paired_cosine(vectors[first], vectors[np.roll(second, -1)]).mean())


def run_postprocess_dev(
    model: str, lm, prompt: str, data_dir: Path, raw_dir: Path, beyond_root: Path, out: Path, batch_size: int = 16
) -> dict:
    path = out / model / prompt / "postprocess_dev.json"
    if path.is_file():
        return json.loads(path.read_text())
    started = time.perf_counter()
    encoder, settings, corpus = _compared(model, lm, prompt, data_dir, beyond_root)
    without_stsb = set(tuning_corpus(data_dir, beyond_root, PER_SOURCE, sources=SOURCES[1:]))
    splits = {SENTEVAL_DEV: load_stsb(data_dir, "dev"), RAW_DEV: load_raw_stsb(raw_dir, "dev")}
    unique = list(dict.fromkeys(corpus + [s for p in splits.values() for s in p.sentences1 + p.sentences2]))
    row = {s: i for i, s in enumerate(unique)}
    embeddings = encoder.encode_settings(
        unique, settings, batch_size=batch_size, show_progress_bar=True, cache=EmbeddingCache()
    )
    fits = {
        "tuning corpus": [row[s] for s in corpus],
        "without STS-B train": [row[s] for s in corpus if s in without_stsb],
    }
    records = []
    for setting, vectors in zip(settings, embeddings, strict=True):
        for fitted_on, fit_rows in fits.items():
            for kind, dimensions in posts(vectors.shape[1]):
                if kind == "none" and fitted_on != "tuning corpus":
                    continue
                post = _apply(kind, dimensions, vectors[fit_rows], vectors)
                scores = {}
                for name, pairs in splits.items():
                    first, second = [row[s] for s in pairs.sentences1], [row[s] for s in pairs.sentences2]
                    scores[name] = 100 * spearman(paired_cosine(post[first], post[second]), pairs.scores)
                raw = splits[RAW_DEV]
                first, second = [row[s] for s in raw.sentences1], [row[s] for s in raw.sentences2]
                records.append(
                    {
                        "setting": label(setting),
                        "post": post_label(kind, dimensions),
                        "fitted_on": fitted_on if kind != "none" else None,
                        **scores,
                        "mean": float(np.mean(list(scores.values()))),
                        "unrelated_cosine": _unrelated_cosine(post, first, second),
                        "raw_cosines": paired_cosine(post[first], post[second]),
                    }
                )
    base = records[0]
    for record in records[1:]:
        record["raw interval"] = bootstrap_spearman_difference(
            raw.scores, base["raw_cosines"], record["raw_cosines"], INTERVAL_RESAMPLES
        )
    for record in records:
        record.pop("raw_cosines")
    result = {
        "model": model,
        "prompt": prompt,
        "corpus": {
            "per_source": PER_SOURCE,
            "sentences": len(corpus),
            "without STS-B train": len(fits["without STS-B train"]),
        },
        "records": records,
        "chosen": choose(records),
    } | timed(started, lm)
    _write(path, result)
    return result


def choose(records: list[dict]) -> dict:
    """The best dev mean among candidates fitted on the tuning corpus that beat the plain embedding
    without post-processing on raw STS-B dev and on the mean; that plain embedding if none does."""
    base = records[0]
    eligible = [
        r
        for r in records
        if r["fitted_on"] in (None, "tuning corpus") and r[RAW_DEV] > base[RAW_DEV] and r["mean"] > base["mean"]
    ]
    best = max(eligible, key=lambda r: r["mean"]) if eligible else base
    return {"setting": best["setting"], "post": best["post"]}


def parse_post(name: str) -> tuple[str, int | None]:
    """("whiten", 128) from "whiten-128"; the inverse of `post_label`."""
    kind, _, dimensions = name.partition("-")
    return kind, int(dimensions) if dimensions else None


def run_postprocess_test(
    model: str, lm, prompt: str, data_dir: Path, raw_dir: Path, beyond_root: Path, out: Path, batch_size: int = 16
) -> dict:
    """The dev step's choice on the seven STS tasks and raw STS-B test, scored once."""
    path = out / model / prompt / "postprocess_test.json"
    if path.is_file():
        return json.loads(path.read_text())
    dev = json.loads((out / model / prompt / "postprocess_dev.json").read_text())
    chosen = dev["chosen"]["setting"] + ("" if dev["chosen"]["post"] == "none" else f" + {dev['chosen']['post']}")
    kind, dimensions = parse_post(dev["chosen"]["post"])
    if kind == "none":
        kind, dimensions = "whiten", None  # the rule kept no post-processing: show whitening all the same
    started = time.perf_counter()
    encoder, settings, corpus = _compared(model, lm, prompt, data_dir, beyond_root)
    pooled = pooled_tasks(data_dir, raw_dir)
    unique = list(dict.fromkeys(corpus + [s for p in pooled.values() for s in p[0] + p[1]]))
    row = {s: i for i, s in enumerate(unique)}
    embeddings = encoder.encode_settings(
        unique, settings, batch_size=batch_size, show_progress_bar=True, cache=EmbeddingCache()
    )
    fit_rows = [row[s] for s in corpus]
    rows = {}
    for setting, vectors in zip(settings, embeddings, strict=True):
        for post in ("none", post_label(kind, dimensions)):
            name = f"{label(setting)} + {post}" if post != "none" else label(setting)
            post_kind, post_dimensions = parse_post(post)
            rows[name] = _apply(post_kind, post_dimensions, vectors[fit_rows], vectors)
    cosines, scores = scored(rows, pooled, row)
    raw = RAW_TASKS[0]
    names = list(rows)

    def compare(other: str, against: str) -> dict:
        return compared(scores, cosines, pooled, other, against)

    without_post = chosen.split(" + ")[0]
    comparisons = {f"{chosen} - baseline": compare(chosen, "baseline")}
    if without_post != chosen:
        comparisons[f"{chosen} - {without_post}"] = compare(chosen, without_post)
    if without_post != "baseline":  # CP's own share, both with the post-processing
        twin = chosen.replace(without_post, "baseline")
        comparisons[f"{chosen} - {twin}"] = compare(chosen, twin)
    raw_pairs = pooled[raw]
    result = {
        "model": model,
        "prompt": prompt,
        "chosen": chosen,
        "rows": [
            {
                "row": name,
                **scores[name],
                "average": float(np.mean([scores[name][t] for t in STS_TASKS])),
                "unrelated_cosine": _unrelated_cosine(
                    rows[name], [row[s] for s in raw_pairs[0]], [row[s] for s in raw_pairs[1]]
                ),
            }
            for name in names
        ],
        "comparisons": comparisons,
    } | timed(started, lm)
    _write(path, result)
    return result


def scored(rows: dict[str, np.ndarray], pooled: dict, row: dict[str, int]) -> tuple[dict, dict]:
    """Each row set's pair cosines and Spearman x100 on each pooled task."""
    cosines = {
        name: {task: paired_cosine(v[[row[s] for s in p[0]]], v[[row[s] for s in p[1]]]) for task, p in pooled.items()}
        for name, v in rows.items()
    }
    scores = {name: {task: 100 * spearman(c[task], pooled[task][2]) for task in pooled} for name, c in cosines.items()}
    return cosines, scores


def compared(scores: dict, cosines: dict, pooled: dict, other: str, against: str) -> dict:
    """`other` minus `against` on the seven-task average and raw STS-B test, with 95% paired-bootstrap intervals."""
    raw = RAW_TASKS[0]
    seven = [(pooled[t][2], cosines[against][t], cosines[other][t]) for t in STS_TASKS]
    return {
        "average": float(np.mean([scores[other][t] - scores[against][t] for t in STS_TASKS])),
        "average interval": bootstrap_mean_spearman_difference(seven, INTERVAL_RESAMPLES),
        "raw": scores[other][raw] - scores[against][raw],
        "raw interval": bootstrap_spearman_difference(
            pooled[raw][2], cosines[against][raw], cosines[other][raw], INTERVAL_RESAMPLES
        ),
    }


def pooled_tasks(data_dir: Path, raw_dir: Path) -> dict:
    """The seven STS tasks and raw STS-B test, each as (first sentences, second sentences, gold scores)."""
    return {task: _pool(load_task(task, data_dir, raw_dir)) for task in (*STS_TASKS, *RAW_TASKS)}


def _pool(subsets: dict) -> tuple[list[str], list[str], np.ndarray]:
    first = [s for p in subsets.values() for s in p.sentences1]
    second = [s for p in subsets.values() for s in p.sentences2]
    return first, second, np.concatenate([p.scores for p in subsets.values()])


def postprocess_markdown(out: Path, models, prompts) -> list[str]:
    """The "Fitted post-processing" section of docs/RESULTS.md: dev candidates, then the test scores."""
    lines = []
    for model in models:
        for prompt in prompts:
            folder = out / model / prompt
            if not (folder / "postprocess_dev.json").is_file():
                continue
            dev = json.loads((folder / "postprocess_dev.json").read_text())
            chosen = dev["chosen"]
            lines += [
                f"**{model}, {prompt}: dev splits** ({dev['corpus']['sentences']} tuning sentences, "
                f"{dev['corpus']['without STS-B train']} without STS-B train; {dev.get('dtype', 'float32')}, "
                f"{dev['seconds']:.0f} s; the chosen one in bold)",
                "",
                "| CP | post-processing | fitted on | STS-B dev | raw STS-B dev | mean | raw dev - plain [95%] "
                "| unrelated cosine |",
                "|---|---|---|---|---|---|---|---|",
            ]
            for r in dev["records"]:
                mark = (
                    "**"
                    if (r["setting"], r["post"]) == (chosen["setting"], chosen["post"])
                    and r["fitted_on"]
                    in (
                        None,
                        "tuning corpus",
                    )
                    else ""
                )
                interval = r.get("raw interval")
                gain = (
                    f"{r[RAW_DEV] - dev['records'][0][RAW_DEV]:+.2f} [{interval[0]:+.2f}, {interval[1]:+.2f}]"
                    if interval
                    else "—"
                )
                lines.append(
                    f"| {r['setting']} | {mark}{r['post']}{mark} | {r['fitted_on'] or '—'} | {r[SENTEVAL_DEV]:.2f} "
                    f"| {r[RAW_DEV]:.2f} | {mark}{r['mean']:.2f}{mark} | {gain} | {r['unrelated_cosine']:.2f} |"
                )
            lines.append("")
            lines += _postprocess_test_lines(folder) + _postprocess_beyond_lines(out, model, folder)
    if not lines:
        return []
    return [
        "## Fitted post-processing: centering and whitening",
        "",
        "`python -m experiments --postprocess`. Each post-processing is fitted on a tuning corpus drawn from",
        "tuning splits only (STS-B train, 20 Newsgroups train subjects, PIT2015 dev tweets, SciFact train",
        "claims; `cpembed.evaluation.corpus`), never on the sentences it is scored on; a second fit leaves",
        "STS-B train out. The rule (`choose` in `experiments/postprocess_steps.py`): the best mean of the two",
        "STS-B dev splits among the candidates that beat the plain embedding on raw STS-B dev and on that mean.",
        'The choice is then scored once on the test splits, with 95% paired-bootstrap intervals. "unrelated',
        "cosine\" is the mean cosine of each pair's first sentence with the next pair's second.",
        "",
        *lines,
    ]


def _postprocess_test_lines(folder: Path) -> list[str]:
    path = folder / "postprocess_test.json"
    if not path.is_file():
        return ["The test splits have not run.", ""]
    step = json.loads(path.read_text())
    raw = RAW_TASKS[0]
    header = ["row", *STS_TASKS, "avg", "STS-B raw", "unrelated cosine"]
    lines = [
        f"**test splits** (scored once; {step.get('dtype', 'float32')}, {step['seconds']:.0f} s; chosen: "
        f"{step['chosen']})",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in step["rows"]:
        mark = "**" if row["row"] == step["chosen"] else ""
        cells = " | ".join(f"{row[t]:.2f}" for t in STS_TASKS)
        lines.append(
            f"| {mark}{row['row']}{mark} | {cells} | **{row['average']:.2f}** | {row[raw]:.2f} "
            f"| {row['unrelated_cosine']:.2f} |"
        )
    minilm_path = folder.parent.parent / "all-MiniLM-L6-v2" / "sts.json"
    if minilm_path.is_file():
        minilm = json.loads(minilm_path.read_text())["report"]
        cells = " | ".join(f"{minilm['tasks'][t]['spearman']:.2f}" for t in STS_TASKS)
        lines.append(
            f"| all-MiniLM-L6-v2 (trained) | {cells} | **{minilm['average']:.2f}** "
            f"| {minilm['tasks'][raw]['spearman']:.2f} | |"
        )
        chosen = next(row for row in step["rows"] if row["row"] == step["chosen"])
        gap = minilm["average"] - chosen["average"]
        lines += ["", f"- all-MiniLM-L6-v2 is {gap:.2f} points {'ahead' if gap > 0 else 'behind'} on the average."]
    lines.append("")
    for name, c in step["comparisons"].items():
        (a_low, a_high), (r_low, r_high) = c["average interval"], c["raw interval"]
        lines.append(
            f"- {name}: seven-task average {c['average']:+.2f} [{a_low:+.2f}, {a_high:+.2f}], "
            f"raw STS-B test {c['raw']:+.2f} [{r_low:+.2f}, {r_high:+.2f}]."
        )
    return [*lines, ""]


def run_postprocess_beyond(
    model: str, lm, prompt: str, data_dir: Path, beyond_root: Path, out: Path, batch_size: int = 16, tasks=TASKS
) -> None:
    """The dev step's choice on the beyond-STS test splits beside the plain embedding, one JSON per
    task under <results>/<model>/<prompt>/postprocess-beyond/: does a fit chosen on STS cost other jobs?"""
    dev = json.loads((out / model / prompt / "postprocess_dev.json").read_text())
    encoder = CPEncoder(lm, prompt, cp=None)
    cp = default_cp(model, prompt) if dev["chosen"]["setting"] != "baseline" else None
    kind, dimensions = parse_post(dev["chosen"]["post"])
    post = None
    if kind != "none":
        corpus = tuning_corpus(data_dir, beyond_root, PER_SOURCE)
        rows = encoder.encode_settings(
            corpus, [cp], batch_size=batch_size, show_progress_bar=True, cache=EmbeddingCache()
        )[0]
        post = fit(rows, kind, encoder.settings(cp).digest(), dimensions, source="tuning corpus")
    chosen = dev["chosen"]["setting"] + ("" if post is None else f" + {dev['chosen']['post']}")
    compared = [Row("baseline", encoder), Row(chosen, encoder, cp, post)]
    for task in tasks:
        path = out / model / prompt / "postprocess-beyond" / f"{task}.json"
        if path.is_file():
            continue
        started = time.perf_counter()
        result = run_task(task, compared, beyond_root, batch_size, EmbeddingCache(), path)
        _write(path, result | {"model": model, "prompt": prompt, "chosen": chosen} | timed(started, lm))


def minilm_beyond_cell(out: Path, task: str, metric: str) -> str:
    """all-MiniLM-L6-v2's score on a beyond-STS task, for a table cell ("—" where it has not run)."""
    path = out / "all-MiniLM-L6-v2" / "beyond" / f"{task}.json"
    return f"{json.loads(path.read_text())['rows'][0][metric]:.2f}" if path.is_file() else "—"


def _postprocess_beyond_lines(out: Path, model: str, folder: Path) -> list[str]:
    """The choice against the plain embedding on each beyond-STS test split that has run."""
    from .recipe_steps import BEYOND_HEADLINES

    steps = {
        task: json.loads(path.read_text())
        for task in BEYOND_HEADLINES
        if (path := folder / "postprocess-beyond" / f"{task}.json").is_file()
    }
    if not steps:
        return []
    chosen = next(iter(steps.values()))["chosen"]
    lines = [
        f"**beyond STS, test splits** (chosen: {chosen})",
        "",
        "| task | metric | baseline | chosen | all-MiniLM-L6-v2 | chosen - baseline [95%] |",
        "|---|---|---|---|---|---|",
    ]
    for task, step in steps.items():
        title, metric = BEYOND_HEADLINES[task]
        base, scored = step["rows"]
        minilm = minilm_beyond_cell(out, task, metric)
        low, high = scored[f"{metric} low"], scored[f"{metric} high"]
        lines.append(
            f"| {title} | {metric} | {base[metric]:.2f} | {scored[metric]:.2f} | {minilm} "
            f"| {scored[metric] - base[metric]:+.2f} [{low:+.2f}, {high:+.2f}] |"
        )
    return [*lines, ""]
