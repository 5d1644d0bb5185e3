"""The reproduction report's page, docs/RESULTS.md, drawn from the JSON files the steps wrote.

It reads those files only: rewriting the page never runs a model (`python -m experiments --only-markdown`).
"""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from pathlib import Path

import torch

from cpembed.evaluation.search import PAPER_ALPHAS, RAW_DEV, SENTEVAL_DEV, label
from cpembed.evaluation.sts import STS_TASKS
from cpembed.evaluation.tables import SHORT_NAMES
from cpembed.io import atomic_write

from .aux_table import aux_markdown
from .default_steps import job_recipes_markdown, recipes_markdown
from .demonstration_table import demonstration_markdown
from .ensemble_steps import ensembles_markdown
from .explain_steps import explain_markdown
from .output_steps import output_markdown
from .postprocess_steps import postprocess_markdown
from .recipe_steps import recipe_markdown
from .report_steps import at_the_grid_edge, choose
from .scale_table import scale_markdown
from .tp_steps import tp_markdown
from .tune_check import tune_check_markdown

PAPER_ROWS = {  # docs/method.md, Paper results: LLaMA2-7B, Spearman x100
    "PromptEOL": (58.81, 77.01, 66.34, 73.22, 73.56, 71.66, 69.64, 70.03),
    "PromptEOL + CP-NS": (63.34, 82.15, 71.73, 79.68, 77.23, 78.71, 74.04, 75.27),
    "Pretended CoT": (67.45, 83.89, 74.14, 79.47, 80.76, 78.95, 73.33, 76.86),
    "Pretended CoT + CP-NS": (67.79, 83.66, 74.52, 81.10, 80.70, 80.39, 74.01, 77.45),
    "Knowledge": (65.60, 82.82, 74.48, 80.75, 80.13, 80.34, 75.89, 77.14),
    "Knowledge + CP-NS": (67.16, 83.43, 74.23, 81.29, 80.03, 80.80, 75.97, 77.56),
    "CK + CP-NS": (68.35, 84.21, 75.59, 82.49, 81.50, 82.29, 76.34, 78.68),
}
PAPER_TRANSFER_AVERAGE = (90.94, 91.73)  # docs/method.md, Paper results: PromptEOL, + CP-NS


def _row(name: str, report: dict) -> str:
    cells = [f"{report['tasks'][t]['spearman']:.2f}" if t in report["tasks"] else "—" for t in STS_TASKS]
    raw = report["tasks"].get("STSBenchmark-raw")
    return (
        f"| {name} | " + " | ".join(cells) + f" | **{report['average']:.2f}** | {raw['spearman']:.2f} |"
        if raw
        else f"| {name} | " + " | ".join(cells) + f" | **{report['average']:.2f}** | — |"
    )


def write_markdown(out: Path, path: Path, models: Sequence[str], prompts: Sequence[str], command: str) -> None:
    header = ["setting", *(SHORT_NAMES.get(t, t) for t in STS_TASKS), "avg", "STS-B raw"]
    lines = [
        "# Results",
        "",
        f"Regenerate with `{command}` (each step is cached under `{out.as_posix()}/`; delete a step's JSON",
        "to run it again). Spearman x100 of cosine similarity, SentEval STS protocol (STS12-16: all of a",
        "year's pairs pooled; STS-B and SICK-R: test splits); `avg` is over the seven SentEval tasks.",
        "`STS-B raw` is the STS-B test split as released (cased, untokenized), not in the average. CP",
        "settings are chosen on STS-B dev only; every baseline uses the same model, output layer and dtype",
        "as the CP rows beside it.",
        "",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}.",
        "",
    ]
    lines += _at_a_glance(out, models, prompts)
    lines += recipes_markdown(out, models)
    lines += job_recipes_markdown(out, models)
    lines += tune_check_markdown(out, models)
    notes = out / "NOTES.md"  # what the numbers alone do not say, written by whoever ran them
    if notes.is_file():
        lines += [notes.read_text().strip(), ""]
    missing: list[str] = []
    defaults: list[str] = []
    for model_name in models:
        for prompt in prompts:
            folder = out / model_name / prompt
            grid_path, sts_path = folder / "grid.json", folder / "sts.json"
            if not grid_path.is_file():
                missing.append(f"{model_name} / {prompt}: search and evaluation")
                continue
            grid = json.loads(grid_path.read_text())
            dtype = grid["dtype"].removeprefix("torch.")
            lines += [f"## {model_name}, {prompt} (output layer {grid['output_layer']}, {dtype})", ""]
            ranked = sorted(grid["records"], key=lambda r: -r["spearman"])
            baseline = next(r for r in grid["records"] if r["norm"] == "none")
            lines.append(
                f"STS-B dev search ({len(grid['records'])} settings, {grid['seconds']:.0f} s): baseline "
                f"{baseline['spearman']:.2f}; best {ranked[0]['label']} {ranked[0]['spearman']:.2f}; "
                f"top three: " + ", ".join(f"{r['label']} {r['spearman']:.2f}" for r in ranked[:3]) + "."
            )
            lines += ["", f"![STS-B dev grid]({(folder / 'grid.png').relative_to(path.parent).as_posix()})", ""]
            lines += _dev_markdown(model_name, prompt, folder, grid, defaults, missing)
            if not sts_path.is_file():
                missing.append(f"{model_name} / {prompt}: STS evaluation")
                continue
            sts = json.loads(sts_path.read_text())
            lines += ["The seven STS tasks (test splits) for the baseline and the chosen settings:", ""]
            lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += [_row(row["setting"], row["report"]) for row in sts["rows"]]
            seconds = sts.get("task_seconds", sts["seconds"])
            lines += ["", f"Wall time of the STS evaluation (every row from one pass per task): {seconds:.0f} s.", ""]
    lines += _controls_figures(out, path, models, prompts)
    if defaults:
        lines += [
            "## Defaults this rule gives",
            "",
            "Chosen on dev splits only, by `choose` in `experiments/report_steps.py`: every CP setting is",
            "scored by the mean of SentEval STS-B dev and raw STS-B dev; the default is the best-scoring setting",
            "among those that beat the plain baseline on raw dev and on the mean; if none does, it is no CP.",
            "",
            "| model | prompt | default | SentEval dev: baseline -> default | raw dev: baseline -> default "
            "| raw dev gain, 95% interval |",
            "|---|---|---|---|---|---|",
            *defaults,
            "",
        ]
    for model_name in models:
        lines += _extras_markdown(model_name, out / model_name / "prompteol", path, missing)
        for prompt in prompts:  # the other prompts' sweeps, where `--sweep` has run them
            if prompt != "prompteol" and (out / model_name / prompt / "layers.json").is_file():
                lines += _sweep_markdown(model_name, prompt, out / model_name / prompt, path, missing)
    lines += _beyond_sts_markdown(out, models, prompts, missing)
    lines += tp_markdown(out, models, prompts)
    lines += aux_markdown(out, models, prompts)
    lines += recipe_markdown(out, models, prompts)
    lines += postprocess_markdown(out, models, prompts)
    lines += ensembles_markdown(out, models)
    lines += output_markdown(out, models)
    lines += demonstration_markdown(out, models, prompts)
    lines += scale_markdown(out, models, prompts)
    lines += explain_markdown(out, models, prompts)
    minilm = out / "all-MiniLM-L6-v2" / "sts.json"
    lines += ["## For comparison", "", "| setting | " + " | ".join(header[1:]) + " |", "|" + "---|" * len(header)]
    if minilm.is_file():
        lines.append(
            _row("all-MiniLM-L6-v2 (sentence-transformers, mean pooling)", json.loads(minilm.read_text())["report"])
        )
    else:
        missing.append("all-MiniLM-L6-v2")
    for name, values in PAPER_ROWS.items():
        lines.append(
            f"| paper, LLaMA2-7B: {name} | "
            + " | ".join(f"{v:.2f}" for v in values[:7])
            + f" | **{values[7]:.2f}** | — |"
        )
    if missing:
        lines += ["", "## Not yet run", "", *(f"- {m}" for m in missing)]
    atomic_write(path, lambda stream: stream.write(("\n".join(lines) + "\n").encode()))


def _at_a_glance(out: Path, models: Sequence[str], prompts: Sequence[str]) -> list[str]:
    """One row per model and prompt that has run: dev searches, the default, the seven-task average."""
    rows = []
    for model_name in models:
        for prompt in prompts:
            folder = out / model_name / prompt
            if not (folder / "grid.json").is_file():
                continue
            grid = json.loads((folder / "grid.json").read_text())["records"]
            raw_path, sts_path = folder / "grid_raw.json", folder / "sts.json"
            raw = json.loads(raw_path.read_text())["records"] if raw_path.is_file() else None
            cells = [model_name, prompt, _baseline_to_best(grid), _baseline_to_best(raw) if raw else "not run"]
            default = choose(grid, raw)["default"] if raw else None
            cells.append(("no CP" if default is None else label(default)) if raw else "—")
            intervals, _ = _intervals(folder / "intervals_raw.json") or ({}, None)
            if default is not None and label(default) in intervals:
                cells[-1] += f": raw dev {intervals[label(default)]}"
            if sts_path.is_file():
                averages = {
                    row["setting"]: row["report"]["average"] for row in json.loads(sts_path.read_text())["rows"]
                }
                base = averages.pop("baseline")
                cells.append(f"{base:.2f} -> " + ", ".join(f"{v:.2f} ({k})" for k, v in averages.items()))
            else:
                cells.append("not run")
            rows.append("| " + " | ".join(cells) + " |")
    if not rows:
        return []
    return [
        "## At a glance",
        "",
        "Spearman x100. Dev columns: the plain baseline -> the best CP setting of the grid. The default is",
        "chosen by the rule under *Defaults this rule gives*; beside it, its raw dev gain over the baseline",
        "with a 95% paired-bootstrap interval. STS avg: the seven test tasks, baseline -> the chosen settings.",
        "",
        "| model | prompt | STS-B dev (SentEval) | STS-B dev (raw) | default | STS avg (test) |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ]


def _controls_figures(out: Path, path: Path, models: Sequence[str], prompts: Sequence[str]) -> list[str]:
    """A figure per model of every prompt's controls beside its CP rows, drawn from their JSON."""
    from cpembed.evaluation.plots import controls_plot

    lines = []
    for model_name in models:
        panels = {
            prompt: json.loads((out / model_name / prompt / "controls.json").read_text())
            for prompt in prompts
            if (out / model_name / prompt / "controls.json").is_file()
        }
        if not panels:
            continue
        raw_panels = {
            prompt: json.loads((out / model_name / prompt / "controls_raw.json").read_text())
            for prompt in panels
            if (out / model_name / prompt / "controls_raw.json").is_file()
        }
        splits = "SentEval and raw STS-B dev" if raw_panels else "STS-B dev"
        figure = controls_plot(
            panels, out / model_name / "controls.png", f"{model_name}: CP and its controls, {splits}", raw_panels
        )
        lines += [
            f"## {model_name}: is it the contrast?",
            "",
            "Blue: CP-NS and CP-NR; gray: the controls at the same l and alpha (zero: the last token's",
            "vector at the site set to zero; scale: alpha times its own vector; shuffle: another sentence's",
            "auxiliary vector; mean: a fixed mean auxiliary vector of reference sentences).",
            *(
                ["Top row: SentEval STS-B dev; bottom row: raw STS-B dev, with 95% paired-bootstrap intervals."]
                if raw_panels
                else []
            ),
            "",
            f"![controls]({figure.relative_to(path.parent).as_posix()})",
            "",
        ]
    return lines


def _baseline_to_best(records: list[dict]) -> str:
    baseline = next(r for r in records if r["norm"] == "none")
    best = max((r for r in records if r["norm"] != "none"), key=lambda r: r["spearman"])
    return f"{baseline['spearman']:.2f} -> {best['spearman']:.2f} ({best['label']})"


def _dev_markdown(
    model_name: str, prompt: str, folder: Path, grid: dict, defaults: list[str], missing: list[str]
) -> list[str]:
    """Raw dev, the chosen settings and the controls of one model and prompt."""
    raw_path, controls_path = folder / "grid_raw.json", folder / "controls.json"
    if not raw_path.is_file():
        missing.append(f"{model_name} / {prompt}: raw STS-B dev search")
        return []
    raw = json.loads(raw_path.read_text())
    ranked = sorted(raw["records"], key=lambda r: -r["spearman"])
    baseline = next(r for r in raw["records"] if r["norm"] == "none")
    choice = choose(grid["records"], raw["records"])
    lines = [
        f"Raw STS-B dev, same grid ({raw['seconds']:.0f} s): baseline {baseline['spearman']:.2f}; best "
        f"{ranked[0]['label']} {ranked[0]['spearman']:.2f}; top three: "
        + ", ".join(f"{r['label']} {r['spearman']:.2f}" for r in ranked[:3])
        + ".",
        "",
        f"Chosen by the {choice['ranked_by']}:",
        "",
    ]
    intervals, interval_step = _intervals(folder / "intervals_raw.json") or (None, None)
    if intervals is None:
        missing.append(f"{model_name} / {prompt}: intervals on raw STS-B dev")
    lines += [
        "| setting | STS-B dev | raw STS-B dev | mean | raw dev vs baseline, 95% interval |",
        "|---|---|---|---|---|",
    ]
    for name, scores in choice["scores"].items():
        values = list(scores.values())
        shown = (intervals or {}).get(name, "—")
        lines.append(f"| {name} | {values[0]:.2f} | {values[1]:.2f} | {sum(values) / 2:.2f} | {shown} |")
    if interval_step is not None:
        cost = (
            "taken from the raw grid's own similarities"
            if interval_step.get("source") == "grid_raw.json"
            else f"{interval_step['seconds']:.0f} s"
        )
        lines += [
            "",
            f"Intervals: paired bootstrap over the raw dev pairs ({interval_step['resamples']:,} resamples, "
            f"{cost}). An interval that holds 0 is a difference this split cannot tell "
            "from the luck of which pairs it holds.",
        ]
    default = choice["default"]
    base = choice["scores"]["baseline"]
    if default is None:
        lines += ["", "Default: **no CP**: no CP setting beats the baseline on raw dev and on the mean.", ""]
        defaults.append(f"| {model_name} | {prompt} | no CP | {base[SENTEVAL_DEV]:.2f} | {base[RAW_DEV]:.2f} | — |")
    else:
        mine = choice["scores"][label(default)]
        lines += ["", f"Default: **{label(default)}**.", ""]
        defaults.append(
            f"| {model_name} | {prompt} | {label(default)} | {base[SENTEVAL_DEV]:.2f} -> {mine[SENTEVAL_DEV]:.2f} "
            f"| {base[RAW_DEV]:.2f} -> {mine[RAW_DEV]:.2f} | {(intervals or {}).get(label(default), '—')} |"
        )
    lines += _beyond_markdown(model_name, prompt, folder, choice, missing)
    if not controls_path.is_file():
        missing.append(f"{model_name} / {prompt}: controls")
        return lines
    controls = json.loads(controls_path.read_text())
    records = controls["records"]
    base_score = next(r["spearman"] for r in records if r["norm"] == "none")
    raw_controls_path = folder / "controls_raw.json"
    raw_controls = json.loads(raw_controls_path.read_text()) if raw_controls_path.is_file() else None
    if raw_controls is None:
        missing.append(f"{model_name} / {prompt}: controls on raw STS-B dev")
    on_raw = {r["label"]: r for r in raw_controls["records"]} if raw_controls else {}
    seconds = f"{controls['seconds']:.0f} s" + (f" and {raw_controls['seconds']:.0f} s" if raw_controls else "")
    lines += [
        f"Is it the contrast? CP at l={controls['layer']}, alpha={controls['alpha']:g} beside its controls "
        f"({'STS-B dev and raw STS-B dev' if raw_controls else 'STS-B dev'}, {seconds}):",
        "",
        "| setting | STS-B dev | vs baseline | raw STS-B dev | raw dev vs baseline, 95% interval "
        "| raw dev vs CP, 95% interval |",
        "|---|---|---|---|---|---|",
    ]
    for r in records:
        raw_record = on_raw.get(r["label"])
        cells = [r["label"], f"{r['spearman']:.2f}", f"{r['spearman'] - base_score:+.2f}"]
        if raw_record:
            cells += [f"{raw_record['spearman']:.2f}", _shown_interval(raw_record)]
            if "vs_cp" in raw_record:
                cp = (raw_record["vs_cp"], raw_record["vs_cp_low"], raw_record["vs_cp_high"])
                cells.append(f"{cp[0]:+.2f} [{cp[1]:+.2f}, {cp[2]:+.2f}]")
            else:
                cells.append("—")
        else:
            cells += ["—", "—", "—"]
        lines.append("| " + " | ".join(cells) + " |")
    if raw_controls:
        lines += [
            "",
            "Raw dev vs CP: each control minus CP with the sentence's own auxiliary vector (CP-NR for the NR",
            "controls, CP-NS for the others), on the same pairs. An interval above 0: the control does better;",
            "below 0: the sentence's own contrast matters; holding 0: this split cannot tell them apart.",
        ]
    return [*lines, ""]


def _beyond_markdown(model_name: str, prompt: str, folder: Path, choice: dict, missing: list[str]) -> list[str]:
    """NS with alphas past the grid's largest, where the grid's best NS sits at that edge."""
    if not at_the_grid_edge(choice):
        return []
    path = folder / "alpha_beyond.json"
    if not path.is_file():
        missing.append(f"{model_name} / {prompt}: NS alphas beyond the grid")
        return []
    step = json.loads(path.read_text())
    lines = [
        f"Beyond the grid: the best NS alpha is the grid's largest, so NS l={step['layer']} with larger alphas "
        f"(both dev splits, {step['seconds']:.0f} s; the default above still comes from the paper's grid):",
        "",
        f"| setting | STS-B dev | raw STS-B dev | mean | raw dev vs alpha={max(PAPER_ALPHAS):g}, 95% interval |",
        "|---|---|---|---|---|",
    ]
    for r in step["records"]:
        versus = f"{r['vs_edge']:+.2f} [{r['vs_edge_low']:+.2f}, {r['vs_edge_high']:+.2f}]" if "vs_edge" in r else "—"
        lines.append(f"| {r['label']} | {r[SENTEVAL_DEV]:.2f} | {r[RAW_DEV]:.2f} | {r['spearman']:.2f} | {versus} |")
    return [*lines, ""]


def _shown_interval(record: dict) -> str:
    """A raw dev record's difference from the baseline, with its interval where it has one."""
    if "low" not in record:
        return f"{record['difference']:+.2f}"
    return f"{record['difference']:+.2f} [{record['low']:+.2f}, {record['high']:+.2f}]"


def _intervals(path: Path) -> tuple[dict[str, str], dict] | None:
    """From an intervals step: label -> "+0.15 [-0.21, +0.52]", and the step itself."""
    if not path.is_file():
        return None
    step = json.loads(path.read_text())
    shown = {r["label"]: _shown_interval(r) for r in step["records"] if "low" in r}
    return shown, step


# The built-in prompts' names in headings.
PROMPT_TITLES = {"prompteol": "PromptEOL", "cot": "Pretended CoT", "knowledge": "Knowledge", "ck": "CK"}


def _extras_markdown(model_name: str, folder: Path, path: Path, missing: list[str]) -> list[str]:
    lines = _sweep_markdown(model_name, "prompteol", folder, path, missing)
    aux, transfer = folder / "aux.json", folder / "transfer.json"
    if aux.is_file():
        ablation = json.loads(aux.read_text())
        lines += [
            f"### {model_name}, PromptEOL: auxiliary wording (l={ablation['layer']}, "
            f"alpha={ablation['alpha']:g}, STS-B dev)",
            "",
            "| wording | Spearman x100 |",
            "|---|---|",
        ]
        lines += [f"| {r['label']} | {r['spearman']:.2f} |" for r in ablation["records"]] + [""]
    else:
        missing.append(f"{model_name} / prompteol: auxiliary wording ablation")
    if transfer.is_file():
        lines += _transfer_markdown(model_name, json.loads(transfer.read_text()))
    else:
        missing.append(f"{model_name} / prompteol: transfer tasks")
    return lines


def _sweep_markdown(model_name: str, prompt: str, folder: Path, path: Path, missing: list[str]) -> list[str]:
    """A prompt's layer sweep: its plot and best layer, and those layers on raw STS-B dev."""
    layers = folder / "layers.json"
    if not layers.is_file():
        missing.append(f"{model_name} / {prompt}: layer sweep")
        return []
    sweep = json.loads(layers.read_text())
    best = max((r for r in sweep["records"] if r["norm"] != "none"), key=lambda r: r["spearman"])
    lines = [
        f"### {model_name}, {PROMPT_TITLES.get(prompt, prompt)}: CP at every layer "
        f"(NS, alpha={sweep['alpha']:g}, STS-B dev)",
        "",
        f"Best layer: {best['layer']} ({best['spearman']:.2f}); {sweep['seconds']:.0f} s.",
        "",
        f"![layer sweep]({(folder / 'layers.png').relative_to(path.parent).as_posix()})",
        "",
    ]
    return lines + _sweep_on_raw_markdown(model_name, prompt, folder, sweep, missing)


def _sweep_on_raw_markdown(model_name: str, prompt: str, folder: Path, sweep: dict, missing: list[str]) -> list[str]:
    path = folder / "layers_raw.json"
    if not path.is_file():
        missing.append(f"{model_name} / {prompt}: the layer sweep's best layers on raw STS-B dev")
        return []
    step = json.loads(path.read_text())
    on_senteval = {r["label"]: r["spearman"] for r in sweep["records"]}
    lines = [
        f"The sweep's {len(step['records']) - 1} best layers on raw STS-B dev ({step['seconds']:.0f} s; "
        f"paired bootstrap over the pairs, {step['resamples']:,} resamples):",
        "",
        "| setting | STS-B dev | raw STS-B dev | raw dev vs baseline, 95% interval |",
        "|---|---|---|---|",
    ]
    for r in step["records"]:
        lines.append(f"| {r['label']} | {on_senteval[r['label']]:.2f} | {r['spearman']:.2f} | {_shown_interval(r)} |")
    return [*lines, ""]


def _transfer_markdown(model_name: str, step: dict) -> list[str]:
    """Each task's accuracy for the baseline and the CP row, CP's difference (with its interval where
    the task's step kept one), and MRPC's F1."""
    rows = [row["report"] for row in step["rows"]]
    tasks = list(rows[0]["tasks"])
    with_f1 = "MRPC" in tasks

    def values(report: dict) -> list[float]:
        accuracies = [report["tasks"][t]["accuracy"] for t in tasks] + [report["average"]]
        return accuracies + ([report["tasks"]["MRPC"]["f1"]] if with_f1 else [])

    lines = [
        f"### {model_name}, PromptEOL: transfer tasks (accuracy x100)",
        "",
        "The CP row is the prompt's best NS setting by the rule's dev score (the NS row of its STS table). "
        "The paper's transfer setting (l=7, alpha=4) came with no dev selection, so it is not used. "
        "Brackets: 95% paired-bootstrap interval of the difference over the test items (under 10-fold CV, "
        "every item), the trained probes held fixed; tasks run before intervals were kept show none. "
        f"Wall time {step['task_seconds']:.0f} s.",
        "",
        "| setting | " + " | ".join(tasks) + " | avg |" + (" MRPC F1 |" if with_f1 else ""),
        "|" + "---|" * (len(tasks) + 2 + with_f1),
    ]
    for row, report in zip(step["rows"], rows, strict=True):
        cells = [f"{v:.2f}" for v in values(report)]
        cells[len(tasks)] = f"**{cells[len(tasks)]}**"
        lines.append(f"| {row['setting']} | " + " | ".join(cells) + " |")
    if len(rows) == 2:
        difference = [f"{cp - base:+.2f}" for base, cp in zip(values(rows[0]), values(rows[1]), strict=True)]
        for i, task in enumerate(tasks):
            if interval := rows[1]["tasks"][task].get("interval_vs_baseline"):
                difference[i] += f" [{interval[0]:+.2f}, {interval[1]:+.2f}]"
        lines.append("| CP - baseline | " + " | ".join(difference) + " |")
    base, cp = PAPER_TRANSFER_AVERAGE
    return lines + ["", f"Paper, LLaMA2-7B, average of the seven: PromptEOL {base:.2f}, + CP-NS {cp:.2f}.", ""]


# The beyond-STS tasks, the metrics each reports, and the one its interval is about.
BEYOND_TASKS = {
    "retrieval": ("Retrieval: SciFact test (300 claims, 5,183 abstracts)", ("nDCG@10", "recall@100")),
    "rerank": ("Answer reranking: WikiQA test (243 questions)", ("MAP", "MRR@10")),
    "pairs": ("Pair classification: TwitterURLCorpus test (9,334 pairs)", ("AP", "accuracy", "F1")),
    "cluster": ("Clustering: 20 Newsgroups subject lines (k-means, k = 20, 10 seeds)", ("V-measure", "std")),
}


def _beyond_sts_markdown(out: Path, models: Sequence[str], prompts: Sequence[str], missing: list[str]) -> list[str]:
    """Per task, the plain baseline and the shipped default CP of each model and prompt, CP minus the
    baseline with its 95% paired-bootstrap interval, and all-MiniLM-L6-v2 beside them."""
    lines = [
        "## Beyond STS: the jobs embeddings are used for",
        "",
        "`python -m experiments --beyond`. The plain prompt embedding and the shipped default CP setting",
        "of each model and prompt (chosen on STS dev splits by the rule below, never here), from one",
        "encoding pass per task; each CP row's difference from its baseline has a 95% paired-bootstrap",
        "interval over queries (retrieval, reranking), pairs (AP) or k-means seeds (clustering). Wall",
        "times are seconds on 2 CPU cores, or on an H200 GPU where marked (float32 unless marked: the two",
        "gave the same numbers to the third decimal on the steps run on both).",
        "",
    ]
    for task, (title, metrics) in BEYOND_TASKS.items():
        rows = []
        for model_name in models:
            for prompt in prompts:
                path = out / model_name / prompt / "beyond" / f"{task}.json"
                if not path.is_file():
                    continue
                step = json.loads(path.read_text())
                rows += [_beyond_row(f"{model_name}, {prompt}", row, metrics, step) for row in step["rows"]]
        minilm = out / "all-MiniLM-L6-v2" / "beyond" / f"{task}.json"
        if minilm.is_file():
            step = json.loads(minilm.read_text())
            rows.append(_beyond_row("all-MiniLM-L6-v2", step["rows"][0] | {"setting": ""}, metrics, step))
        if rows:
            header = ["model, prompt", "setting", *metrics, f"{metrics[0]}: CP - baseline [95%]", "seconds"]
            lines += [f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header), *rows, ""]
    multilingual = _multilingual_lines(out, models, prompts)
    lines += multilingual
    for model_name in models:
        for prompt in prompts:
            absent = [
                t
                for t in (*BEYOND_TASKS, "sts-multilingual")
                if not (out / model_name / prompt / "beyond" / f"{t}.json").is_file()
            ]
            if absent:
                missing.append(f"{model_name} / {prompt}: beyond-STS {', '.join(absent)}")
    return lines


def _beyond_row(name: str, row: dict, metrics: Sequence[str], step: dict) -> str:
    """One setting's row; the step's wall time, with where it ran when that was not 2 CPU cores."""
    where = ", ".join(step[key] for key in ("device", "dtype") if step.get(key))
    seconds = f"{step['seconds']:.0f}" + (f" ({where})" if where else "")
    first = metrics[0]
    difference = "—"
    if f"{first} vs baseline" in row:
        difference = f"{row[f'{first} vs baseline']:+.2f}"
        if f"{first} low" in row:
            difference += f" [{row[f'{first} low']:+.2f}, {row[f'{first} high']:+.2f}]"
    cells = " | ".join(f"{row[m]:.2f}" for m in metrics)
    return f"| {name} | {row['setting']} | {cells} | {difference} | {seconds} |"


def _above_or_below(row: dict, language: str) -> str:
    """ " +" or " -" where a CP row's interval for `language` lies wholly above or below 0."""
    low, high = row.get(f"{language} low"), row.get(f"{language} high")
    return " +" if low is not None and low > 0 else " -" if high is not None and high < 0 else ""


def _multilingual_lines(out: Path, models: Sequence[str], prompts: Sequence[str]) -> list[str]:
    rows, languages = [], None
    sources = [(f"{m}, {p}", out / m / p / "beyond" / "sts-multilingual.json") for m in models for p in prompts]
    sources.append(("all-MiniLM-L6-v2", out / "all-MiniLM-L6-v2" / "beyond" / "sts-multilingual.json"))
    for name, path in sources:
        if not path.is_file():
            continue
        step = json.loads(path.read_text())
        step_rows = step["rows"]
        if step.get("dtype"):
            name += f" ({step['dtype']})"
        for row in step_rows:
            languages = languages or [
                k for k in row if k not in ("setting", "mean") and not k.endswith(("low", "high"))
            ]
            cells = " | ".join(f"{row[lang]:.2f}" + _above_or_below(row, lang) for lang in languages)
            difference = "—"
            if row is not step_rows[0]:
                difference = f"{row['mean'] - step_rows[0]['mean']:+.2f}"
                if "mean low" in row:
                    difference += f" [{row['mean low']:+.2f}, {row['mean high']:+.2f}]"
            rows.append(f"| {name} | {row['setting']} | {cells} | **{row['mean']:.2f}** | {difference} |")
    if not rows:
        return []
    header = ["model, prompt", "setting", *languages, "mean", "mean: CP - baseline [95%]"]
    title = "**STS in 11 languages: stsb-multi-mt test, Spearman x100, the English templates**"
    note = (
        "A CP score marked + or - differs from its baseline with a 95% paired-bootstrap interval that lies above or "
        "below 0; the mean's interval draws the same source pairs in every language (they are translations of one "
        "English set with one set of gold scores)."
    )
    lines = [title, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header), *rows, "", note, ""]
    translated = [
        f"| {m}, {p} | {row['language']} | {row['setting']} | {row['spearman']:.2f} | "
        + (f"[{row['low']:+.2f}, {row['high']:+.2f}]" if "low" in row else "—")
        + " |"
        for m in models
        for p in prompts
        if (path := out / m / p / "beyond" / "sts-multilingual.json").is_file()
        for row in json.loads(path.read_text()).get("translated", [])
    ]
    if translated:
        lines += [
            "The same test split with PromptEOL and the auxiliary prompt translated into the sentence's language",
            "(by the developers, not native speakers, keeping the English frame; `TRANSLATED` in",
            "`experiments/beyond_steps.py`):",
            "",
            "| model, prompt | language | setting | Spearman | CP - baseline, 95% interval |",
            "|---|---|---|---|---|",
            *translated,
            "",
        ]
    return lines
