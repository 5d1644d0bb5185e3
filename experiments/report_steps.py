"""The reproduction report's steps: search on STS-B dev, evaluate the chosen settings.

Each step's result is a JSON file under the output folder; a step whose file exists is not run
again, so `make results` resumes where it stopped and a partial report is always available;
results_page.py draws docs/RESULTS.md from those files.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from cpembed.cache import EmbeddingCache
from cpembed.config import CPConfig
from cpembed.encoder import CPEncoder
from cpembed.evaluation.controls import Control
from cpembed.evaluation.data import load_raw_stsb, load_stsb
from cpembed.evaluation.search import (
    PAPER_ALPHAS,
    RAW_DEV,
    SENTEVAL_DEV,
    SearchResult,
    control_settings,
    grid_settings,
    label,
    score_settings,
)
from cpembed.evaluation.sts import RAW_TASKS, STS_TASKS, evaluate_sts, evaluate_sts_settings, summarize_sts
from cpembed.evaluation.transfer import TRANSFER_TASKS, evaluate_transfer_settings, summarize_transfer
from cpembed.io import atomic_write
from cpembed.models import load_model

logger = logging.getLogger(__name__)

PROMPTS = ("prompteol", "cot", "knowledge", "ck")


def _step(path: Path, compute: Callable[[EmbeddingCache], dict]) -> dict:
    """The step's result from `path`, or `compute(cache)` written there.

    The embedding cache keeps every chunk a step encodes as soon as it is done, so a stopped step
    resumes where it stopped; its `seconds` then count the run that finished it, not the earlier ones.
    """
    if path.is_file():
        return json.loads(path.read_text())
    started = time.perf_counter()
    result = compute(EmbeddingCache())
    result["seconds"] = round(time.perf_counter() - started, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda stream: stream.write((json.dumps(result, indent=2) + "\n").encode()))
    logger.warning("wrote %s (%.0f s)", path, result["seconds"])
    return result


def _grid_step(model_name: str, encoder: CPEncoder, data_dir: Path, folder: Path, batch_size: int) -> list[dict]:
    """The paper's grid (layers beyond the output layer left out) on STS-B dev, with its heatmap."""

    def grid(cache: EmbeddingCache) -> dict:
        from cpembed.evaluation.plots import grid_heatmap

        folder.mkdir(parents=True, exist_ok=True)
        pairs = load_stsb(data_dir, "dev")
        result = score_settings(encoder, pairs, _grid(encoder), batch_size, True, cache=cache)
        title = f"{model_name}, {encoder.prompt.name}, output layer {encoder.output_layer}"
        grid_heatmap(result, folder / "grid.png", title)
        return {"output_layer": encoder.output_layer, "dtype": str(encoder.lm.dtype), "records": result.records()}

    return _step(folder / "grid.json", grid)["records"]


def _raw_grid_step(encoder: CPEncoder, raw_dir: Path, folder: Path, batch_size: int) -> list[dict]:
    """The same grid on the raw release's STS-B dev split: cased, untokenized text.

    Every setting's record carries its interval against the baseline (see `_interval_records`),
    taken while the similarities are in memory, so the intervals step need not encode again.
    """

    def grid(cache: EmbeddingCache) -> dict:
        pairs = {RAW_DEV: load_raw_stsb(raw_dir, "dev")}
        result = score_settings(encoder, pairs, _grid(encoder), batch_size, True, cache=cache)
        return {"split": RAW_DEV, "resamples": INTERVAL_RESAMPLES, "level": 0.95, "records": _with_intervals(result)}

    return _step(folder / "grid_raw.json", grid)["records"]


def _grid(encoder: CPEncoder) -> list[CPConfig | None]:
    return grid_settings(layers=[x for x in (3, 4, 5, 6, 7) if x <= encoder.output_layer])


def choose(grid: list[dict], raw_grid: list[dict] | None) -> dict:
    """The rule that picks the report's CP rows and a model's default, from dev splits only.

    Every CP setting is scored by the mean of its SentEval STS-B dev and raw STS-B dev Spearman
    (SentEval dev alone when raw dev was not run). The best NS and the best NR by that score are
    the report's CP rows. The default is the best-scoring setting among those that beat the plain
    baseline on raw dev *and* on the mean; if none does, the default is no CP, because a setting
    that only helps on SentEval's lowercased tokens does not help users' text.
    """
    raw = {r["label"]: r["spearman"] for r in raw_grid} if raw_grid else None

    def score(record: dict) -> float:
        return (record["spearman"] + raw[record["label"]]) / 2 if raw else record["spearman"]

    cp_rows = [r for r in grid if r["norm"] != "none" and r.get("intervention", "contrast") == "contrast"]
    best = {norm: max((r for r in cp_rows if r["norm"] == norm), key=score) for norm in ("scale", "recover")}
    baseline = next(r for r in grid if r["norm"] == "none")
    helping = [
        r for r in cp_rows if score(r) > score(baseline) and (raw is None or raw[r["label"]] > raw[baseline["label"]])
    ]
    default = max(helping, key=score) if helping else None
    shown = [baseline, best["scale"], best["recover"], *([default] if default else [])]
    return {
        "ranked_by": f"mean of {SENTEVAL_DEV} and {RAW_DEV}" if raw else SENTEVAL_DEV,
        "scale": _config(best["scale"]),
        "recover": _config(best["recover"]),
        "default": _config(default) if default else None,
        "scores": {
            r["label"]: {SENTEVAL_DEV: r["spearman"], **({RAW_DEV: raw[r["label"]]} if raw else {})} for r in shown
        },
    }


def _config(record: dict) -> CPConfig:
    return CPConfig(record["layer"], record["alpha"], record["norm"])


def _score_controls(
    encoder: CPEncoder, pairs, setting: CPConfig, batch_size: int, cache: EmbeddingCache
) -> SearchResult:
    """CP at the chosen NS (l, alpha) beside its controls, scored on `pairs`."""
    settings = control_settings(setting.layer, setting.alpha)
    return score_settings(encoder, pairs, settings, batch_size, True, cache=cache)


def _controls_step(encoder: CPEncoder, data_dir: Path, folder: Path, setting: CPConfig, batch_size: int) -> dict:
    """The controls on STS-B dev."""

    def controls(cache: EmbeddingCache) -> dict:
        result = _score_controls(encoder, load_stsb(data_dir, "dev"), setting, batch_size, cache)
        return {"layer": setting.layer, "alpha": setting.alpha, "records": result.records()}

    return _step(folder / "controls.json", controls)


def _raw_controls_step(encoder: CPEncoder, raw_dir: Path, folder: Path, setting: CPConfig, batch_size: int) -> dict:
    """The same controls on raw STS-B dev, each with its interval against the baseline: whether
    what they show on SentEval's lowercased tokens holds on the kind of text users embed."""

    def controls(cache: EmbeddingCache) -> dict:
        pairs = {RAW_DEV: load_raw_stsb(raw_dir, "dev")}
        result = _score_controls(encoder, pairs, setting, batch_size, cache)
        return {
            "layer": setting.layer,
            "alpha": setting.alpha,
            "split": RAW_DEV,
            "resamples": INTERVAL_RESAMPLES,
            "level": 0.95,
            "records": [r | c for r, c in zip(_with_intervals(result), _against_contrast(result), strict=True)],
        }

    return _step(folder / "controls_raw.json", controls)


def _against_contrast(result: SearchResult) -> list[dict]:
    """Per control on raw dev, its difference from CP with the sentence's own auxiliary vector
    (CP-NR for the NR controls, CP-NS for the others) and that difference's 95% interval: the
    direct test of whether the contrast itself matters. Empty for the baseline and CP rows."""
    contrast = {s.norm: i for i, s in enumerate(result.settings) if isinstance(s, CPConfig)}
    rows = []
    for i, setting in enumerate(result.settings):
        if not isinstance(setting, Control):
            rows.append({})
            continue
        rows.append(_raw_difference(result, i, contrast[setting.cp.norm], "vs_cp"))
    return rows


INTERVAL_RESAMPLES = 2000


def _raw_difference(result: SearchResult, i: int, j: int, name: str) -> dict:
    """Setting i's raw dev Spearman minus setting j's, with the difference's 95% paired-bootstrap
    interval, as `name`, `name_low` and `name_high`."""
    raw = result.splits[RAW_DEV]
    low, high = result.interval(RAW_DEV, result.settings[i], against=result.settings[j], resamples=INTERVAL_RESAMPLES)
    return {name: round(raw[i] - raw[j], 4), f"{name}_low": round(low, 4), f"{name}_high": round(high, 4)}


def _interval_records(result: SearchResult) -> list[dict]:
    """Per setting on raw dev: its Spearman, its difference from the baseline and, for CP
    settings, the 95% paired-bootstrap interval of that difference."""
    bounds = result.intervals(RAW_DEV, INTERVAL_RESAMPLES)
    base = result.scores[result.settings.index(None)]
    return [
        {"label": name, "spearman": round(score, 4), "difference": round(score - base, 4)}
        | ({"low": round(b[0], 4), "high": round(b[1], 4)} if b else {})
        for name, score, b in zip(result.labels, result.scores, bounds, strict=True)
    ]


def _with_intervals(result: SearchResult) -> list[dict]:
    """Each setting's record with its raw dev difference and interval (`_interval_records`)."""
    return [r | i for r, i in zip(result.records(), _interval_records(result), strict=True)]


def _intervals_step(
    encoder: CPEncoder, raw_dir: Path, folder: Path, settings: list, raw_grid: list[dict], batch_size: int
) -> dict:
    """The report's rows on raw STS-B dev, each with a 95% paired-bootstrap interval of its
    difference from the baseline: whether a gain on users' kind of text is more than the luck of
    which 1,500 pairs the split holds.

    Copied from the raw grid's records when they carry intervals; raw grids written before they
    did are encoded again for these rows.
    """

    def intervals(cache: EmbeddingCache) -> dict:
        kept = {r["label"]: r for r in raw_grid}
        wanted = [label(s) for s in settings]
        if all(name in kept and (s is None or "low" in kept[name]) for s, name in zip(settings, wanted, strict=True)):
            fields = ("label", "spearman", "difference", "low", "high")
            records = [{k: kept[name][k] for k in fields if k in kept[name]} for name in wanted]
            source = "grid_raw.json"
        else:
            pairs = {RAW_DEV: load_raw_stsb(raw_dir, "dev")}
            result = score_settings(encoder, pairs, settings, batch_size, True, cache=cache)
            records, source = _interval_records(result), "encoded again"
        return {"split": RAW_DEV, "resamples": INTERVAL_RESAMPLES, "level": 0.95, "source": source, "records": records}

    return _step(folder / "intervals_raw.json", intervals)


BEYOND_ALPHAS = (4.0, 5.0, 6.0, 8.0, 10.0)


def at_the_grid_edge(choice: dict) -> bool:
    """Whether the best NS setting has the paper grid's largest alpha: a peak the grid may have cut off."""
    return choice["scale"].alpha >= max(PAPER_ALPHAS)


def _beyond_grid_step(
    encoder: CPEncoder, data_dir: Path, raw_dir: Path, folder: Path, choice: dict, batch_size: int
) -> dict | None:
    """When the best NS alpha is the grid's largest: NS at its layer with `BEYOND_ALPHAS`, scored on
    both dev splits in one pass. It says whether the grid's edge is the peak; the defaults still come
    from the paper's grid, the search the paper defines. None when not at the edge."""
    if not at_the_grid_edge(choice):
        return None
    layer = choice["scale"].layer

    def beyond(cache: EmbeddingCache) -> dict:
        pairs = {SENTEVAL_DEV: load_stsb(data_dir, "dev"), RAW_DEV: load_raw_stsb(raw_dir, "dev")}
        settings = [None, *(CPConfig(layer, alpha, "scale") for alpha in BEYOND_ALPHAS)]
        result = score_settings(encoder, pairs, settings, batch_size, True, cache=cache)
        records = result.records()
        for i in range(2, len(settings)):  # each alpha past the grid against the grid's own largest
            records[i] |= _raw_difference(result, i, 1, "vs_edge")
        return {"layer": layer, "resamples": INTERVAL_RESAMPLES, "records": records}

    return _step(folder / "alpha_beyond.json", beyond)


SWEEP_TOP = 3


def _sweep_on_raw_step(encoder: CPEncoder, raw_dir: Path, folder: Path, sweep: dict, batch_size: int) -> dict:
    """The layer sweep's best `SWEEP_TOP` layers (on SentEval dev) on raw STS-B dev, each with its
    95% interval against the baseline: whether layers the paper's grid leaves out help the kind of
    text users embed. Like the sweep, it does not move the defaults."""
    top = sorted((r for r in sweep["records"] if r["norm"] != "none"), key=lambda r: -r["spearman"])[:SWEEP_TOP]

    def layers_raw(cache: EmbeddingCache) -> dict:
        pairs = {RAW_DEV: load_raw_stsb(raw_dir, "dev")}
        settings = [None, *(CPConfig(r["layer"], r["alpha"], r["norm"]) for r in top)]
        result = score_settings(encoder, pairs, settings, batch_size, True, cache=cache)
        return {"split": RAW_DEV, "resamples": INTERVAL_RESAMPLES, "level": 0.95, "records": _with_intervals(result)}

    return _step(folder / "layers_raw.json", layers_raw)


def _chosen(choice: dict) -> list[CPConfig | None]:
    """The report's rows: the baseline, the best NS and NR, and the default when it is another."""
    chosen = [None, choice["scale"], choice["recover"]]
    if choice["default"] is not None and choice["default"] not in chosen:
        chosen.append(choice["default"])
    return chosen


def run_model_prompt(
    model_name: str, lm, prompt: str, data_dir: Path, raw_dir: Path, out: Path, batch_size: int, evaluate: bool = True
) -> None:
    """Dev searches (SentEval and raw STS-B dev, the chosen rows' intervals on raw dev, the controls
    on both, alphas past the grid where its best NS sits at the edge), then STS for the baseline
    and the chosen NS and NR settings."""
    folder = out / model_name / prompt
    folder.mkdir(parents=True, exist_ok=True)
    encoder = CPEncoder(lm, prompt=prompt, cp=None)
    grid = _grid_step(model_name, encoder, data_dir, folder, batch_size)
    raw_grid = _raw_grid_step(encoder, raw_dir, folder, batch_size)
    choice = choose(grid, raw_grid)
    chosen = _chosen(choice)
    # Before the controls: seconds, as the intervals are copied from the raw grid's.
    _intervals_step(encoder, raw_dir, folder, chosen, raw_grid, batch_size)
    _controls_step(encoder, data_dir, folder, choice["scale"], batch_size)
    _raw_controls_step(encoder, raw_dir, folder, choice["scale"], batch_size)
    _beyond_grid_step(encoder, data_dir, raw_dir, folder, choice, batch_size)
    if not evaluate:
        return

    def sts(_cache: EmbeddingCache) -> dict:
        reports, seconds = _sts_by_task(encoder, chosen, data_dir, raw_dir, folder / "sts-tasks", batch_size)
        rows = [{"setting": label(s), "report": r} for s, r in zip(chosen, reports, strict=True)]
        return {"rows": rows, "task_seconds": seconds}

    _step(folder / "sts.json", sts)


def _sts_by_task(encoder: CPEncoder, settings: list, data_dir: Path, raw_dir: Path, parts: Path, batch_size: int):
    """`evaluate_sts_settings` one task at a time, each task's result kept under `parts`, so an
    evaluation of hours that is interrupted resumes at the task it was on."""
    tasks, seconds = {}, 0.0
    for task in STS_TASKS + RAW_TASKS:

        def one(cache: EmbeddingCache, task=task) -> dict:
            reports = evaluate_sts_settings(encoder, settings, [task], data_dir, raw_dir, batch_size, True, cache=cache)
            return {"settings": [label(s) for s in settings], "results": [r["tasks"][task] for r in reports]}

        part = _step(parts / f"{task}.json", one)
        _check_settings(part, settings, parts / f"{task}.json")
        tasks[task] = part["results"]
        seconds += part["seconds"]
    reports = [summarize_sts({task: results[i] for task, results in tasks.items()}) for i in range(len(settings))]
    return reports, round(seconds, 1)


def run_sweep(model_name: str, lm, prompt: str, data_dir: Path, raw_dir: Path, out: Path, batch_size: int) -> CPConfig:
    """A layer sweep: NS at every layer at the grid's best NS alpha on SentEval STS-B dev (with its plot),
    its best layers also on raw STS-B dev (dev splits only; the recipe rule takes those as candidates).
    Returns the grid's best NS setting."""
    from cpembed.evaluation.plots import layer_sweep_plot
    from cpembed.evaluation.search import sweep_layers

    folder = out / model_name / prompt
    encoder = CPEncoder(lm, prompt=prompt, cp=None)
    grid = _grid_step(model_name, encoder, data_dir, folder, batch_size)
    raw_path = folder / "grid_raw.json"
    best = choose(grid, json.loads(raw_path.read_text())["records"] if raw_path.is_file() else None)["scale"]

    def sweep(cache: EmbeddingCache) -> dict:
        result = sweep_layers(encoder, data_dir, best.alpha, batch_size=batch_size, cache=cache)
        layer_sweep_plot(result, folder / "layers.png", f"{model_name}, {prompt}, NS alpha={best.alpha:g}")
        return {"alpha": best.alpha, "records": result.records()}

    _sweep_on_raw_step(encoder, raw_dir, folder, _step(folder / "layers.json", sweep), batch_size)
    return best


def run_extras(
    model_name: str,
    lm,
    data_dir: Path,
    raw_dir: Path,
    out: Path,
    batch_size: int,
    transfer_tasks: Sequence[str] = TRANSFER_TASKS,
    inner_folds: int = 10,
    transfer: bool = True,
) -> None:
    """PromptEOL only: the layer sweep (`run_sweep`), the auxiliary-wording ablation (all dev splits,
    minutes), and unless `transfer` is False the transfer tasks (hours)."""
    from cpembed.evaluation.search import ablate_aux_templates

    folder = out / model_name / "prompteol"
    encoder = CPEncoder(lm, prompt="prompteol", cp=None)
    best = run_sweep(model_name, lm, "prompteol", data_dir, raw_dir, out, batch_size)

    def aux(cache: EmbeddingCache) -> dict:
        result = ablate_aux_templates(encoder, data_dir, best.layer, best.alpha, batch_size=batch_size, cache=cache)
        return {"layer": best.layer, "alpha": best.alpha, "records": result.records()}

    def transfer_tasks_step(_cache: EmbeddingCache) -> dict:
        settings = [None, best]
        reports, seconds = _transfer_by_task(
            encoder, settings, transfer_tasks, data_dir, folder, batch_size, inner_folds
        )
        rows = [{"setting": label(s), "report": r} for s, r in zip(settings, reports, strict=True)]
        return {"rows": rows, "task_seconds": seconds}

    _step(folder / "aux.json", aux)
    if transfer:
        _step(folder / "transfer.json", transfer_tasks_step)


def _transfer_by_task(encoder, settings, tasks, data_dir, folder, batch_size, inner_folds):
    """`evaluate_transfer_settings` one task at a time, each kept under `folder/transfer-tasks`:
    the tasks take hours here, and an interrupted run resumes at the task it was on."""
    results, seconds = {}, 0.0
    for task in tasks:

        def one(cache: EmbeddingCache, task=task) -> dict:
            reports = evaluate_transfer_settings(
                encoder, settings, [task], data_dir, inner_folds, batch_size, True, cache=cache
            )
            return {"settings": [label(s) for s in settings], "results": [r["tasks"][task] for r in reports]}

        part = _step(folder / "transfer-tasks" / f"{task}.json", one)
        _check_settings(part, settings, folder / "transfer-tasks" / f"{task}.json")
        results[task] = part["results"]
        seconds += part["seconds"]
    reports = [summarize_transfer({task: r[i] for task, r in results.items()}) for i in range(len(settings))]
    return reports, round(seconds, 1)


def _check_settings(part: dict, settings: list, path: Path) -> None:
    if part["settings"] != [label(s) for s in settings]:
        raise RuntimeError(f"{path} holds other settings than {[label(s) for s in settings]}: delete it to rerun")


def run(
    models: Sequence[str],
    prompts: Sequence[str],
    data_dir: Path,
    raw_dir: Path,
    out: Path,
    batch_size: int = 16,
    minilm: bool = True,
    progress: Callable[[], None] = lambda: None,
    dtype: str = "float32",
    device: str | None = None,
    dev_only: bool = False,
) -> None:
    """Cheapest and most telling first: every search (with alphas past the grid where its best
    NS sits at the edge) and each model's PromptEOL layer sweep (its best layers also on raw dev)
    and wording ablation (all on dev splits), then the baselines to compare with, then each model's STS
    evaluations and transfer tasks (the hours), one model after the other in the order given (the
    default lists the smaller first).

    `progress` is called after each model and prompt's work (the CLI rewrites the Markdown there),
    so a run stopped after hours leaves a report of everything it finished. Models load in float32
    by default, whatever the hardware, so that the report's numbers are the same on every machine.
    `dev_only` stops after the dev work, before any test split is read (on 2 CPU cores the 1.5B
    model's dev searches take about 1.5 h per prompt, its test-split evaluations days).
    """
    loaded = {}

    def lm_of(name: str):
        if name not in loaded:
            loaded.clear()  # one model in memory at a time
            loaded[name] = load_model(name, dtype=dtype, device=device)
        return loaded[name]

    for model_name in models:
        for prompt in prompts:
            run_model_prompt(model_name, lm_of(model_name), prompt, data_dir, raw_dir, out, batch_size, evaluate=False)
            progress()
    for model_name in models:
        if "prompteol" in prompts:
            run_extras(model_name, lm_of(model_name), data_dir, raw_dir, out, batch_size, transfer=False)
            progress()
    if dev_only:
        return
    if minilm:
        from .baselines import MiniLMEncoder

        def minilm_sts(_cache: EmbeddingCache) -> dict:
            return {"report": evaluate_sts(MiniLMEncoder().encode, STS_TASKS + RAW_TASKS, data_dir, raw_dir)}

        _step(out / "all-MiniLM-L6-v2" / "sts.json", minilm_sts)
    for model_name in models:  # a model's evaluations finish before the next (larger, slower) one's begin
        for prompt in prompts:
            run_model_prompt(model_name, lm_of(model_name), prompt, data_dir, raw_dir, out, batch_size)
            progress()
        if "prompteol" in prompts:
            run_extras(model_name, lm_of(model_name), data_dir, raw_dir, out, batch_size)
            progress()
