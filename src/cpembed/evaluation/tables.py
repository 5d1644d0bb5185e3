"""Evaluation results as a terminal/Markdown table and as JSON, written side by side."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

SHORT_NAMES = {"STSBenchmark": "STS-B", "SICKRelatedness": "SICK-R", "STSBenchmark-raw": "STS-B raw"}


def _describe(settings: dict) -> str:
    cp = settings.get("cp")
    if cp:
        method = f"CP-{'NS' if cp['norm'] == 'scale' else 'NR'} l={cp['layer']}"
        method += f" alpha={cp['alpha']}" if cp["norm"] == "scale" else ""
        method += f" site={cp['site']}"
    else:
        method = "no CP"
    return (
        f"{settings['model']}, {settings['prompt']}, {method}, output layer {settings['output_layer']}, "
        f"{settings['dtype']}"
    )


def sts_markdown(report: dict) -> str:
    """One Markdown table: Spearman x100 per task and the seven-task average."""
    tasks = list(report["tasks"])
    header = [SHORT_NAMES.get(t, t) for t in tasks] + (["avg"] if report.get("average") is not None else [])
    values = [f"{report['tasks'][t]['spearman']:.2f}" for t in tasks]
    if report.get("average") is not None:
        values.append(f"{report['average']:.2f}")
    return "\n".join([f"STS Spearman x100 — {_describe(report['settings'])}", "", *_table(header, [values])])


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


def transfer_markdown(report: dict) -> str:
    tasks = list(report["tasks"])
    header = [*tasks, "avg"]
    values = [f"{report['tasks'][t]['accuracy']:.2f}" for t in tasks] + [f"{report['average']:.2f}"]
    lines = [f"Transfer accuracy — {_describe(report['settings'])}", "", *_table(header, [values])]
    if "MRPC" in report["tasks"]:
        lines += ["", f"MRPC F1: {report['tasks']['MRPC']['f1']:.2f}"]
    return "\n".join(lines)


def search_markdown(report: dict) -> str:
    """The searched settings, best first, with the baseline marked."""
    s = report["settings"]
    splits = report.get("splits") or []
    interval_splits = report.get("interval_splits") or []
    ranked_by = report.get("ranked_by", "STS-B dev")
    lines = [
        f"{report['search']} search on {ranked_by} — {s['model']}, {s['prompt']}, output layer "
        f"{s['output_layer']}, {s['dtype']} ({report['seconds']:.0f} s)",
        "",
        "| setting | Spearman x100 |"
        + "".join(f" {name} |" for name in splits)
        + "".join(f" {name} vs baseline, 95% interval |" for name in interval_splits),
        "|---|---|" + "---|" * (len(splits) + len(interval_splits)),
    ]
    for record in sorted(report["records"], key=lambda r: -r["spearman"]):
        cells = "".join(f" {record[name]:.2f} |" for name in splits)
        cells += "".join(f" {_interval_cell(record, name)} |" for name in interval_splits)
        lines.append(f"| {record['label']} | {record['spearman']:.2f} |{cells}")
    return "\n".join(lines)


def _interval_cell(record: dict, split: str) -> str:
    if f"{split} low" not in record:
        return "—"  # the baseline
    return f"[{record[f'{split} low']:+.2f}, {record[f'{split} high']:+.2f}]"


def write_report(report: dict, folder: Path, stem: str, to_markdown: Callable[[dict], str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / f"{stem}.json", folder / f"{stem}.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(to_markdown(report) + "\n", encoding="utf-8")
    return [json_path, md_path]
