"""Pictures of search results (matplotlib, from the `eval` extra)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import require_extra
from ..io import atomic_write
from .search import SearchResult


def _pyplot():
    require_extra("eval", "matplotlib")
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    """The figure as a PNG at `path`, written whole: a report rewritten while another process reads or
    commits it never leaves a half-written picture."""
    atomic_write(Path(path), lambda stream: fig.savefig(stream, format="png", dpi=120))
    _pyplot().close(fig)


def grid_heatmap(result: SearchResult, path: Path, title: str) -> Path:
    """Spearman over layer x alpha for NS, with NR as an extra column and the baseline in the title."""
    plt = _pyplot()
    ns = [(s.layer, s.alpha, v) for s, v in zip(result.settings, result.scores, strict=True) if s and s.norm == "scale"]
    nr = {s.layer: v for s, v in zip(result.settings, result.scores, strict=True) if s and s.norm == "recover"}
    layers = sorted({layer for layer, _, _ in ns} | set(nr))
    alphas = sorted({a for _, a, _ in ns})
    columns = [f"NS a={a:g}" for a in alphas] + (["NR"] if nr else [])
    values = np.full((len(layers), len(columns)), np.nan)
    for layer, a, v in ns:
        values[layers.index(layer), alphas.index(a)] = v
    for layer, v in nr.items():
        values[layers.index(layer), -1] = v
    fig, ax = plt.subplots(figsize=(1.1 * len(columns) + 2, 0.55 * len(layers) + 1.8))
    image = ax.imshow(values, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(columns)), columns)
    ax.set_yticks(range(len(layers)), [f"l={layer}" for layer in layers])
    for (i, j), v in np.ndenumerate(values):
        if not np.isnan(v):
            ax.text(j, i, f"{v:.1f}", ha="center", va="center", color="white" if v < np.nanmean(values) else "black")
    baseline = f"baseline {result.baseline:.2f}" if result.baseline is not None else ""
    ax.set_title(f"{title}\n{result.split} Spearman x100; {baseline}", fontsize=9)
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    _save(fig, path)
    return path


def layer_sweep_plot(result: SearchResult, path: Path, title: str) -> Path:
    plt = _pyplot()
    points = [(s.layer, v) for s, v in zip(result.settings, result.scores, strict=True) if s is not None]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot([layer for layer, _ in points], [v for _, v in points], marker="o", label="CP")
    if result.baseline is not None:
        ax.axhline(result.baseline, color="gray", linestyle="--", label="baseline (no CP)")
    ax.set_xlabel("intervention layer l")
    ax.set_ylabel(f"{result.split} Spearman x100")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    _save(fig, path)
    return path


def controls_plot(panels: dict[str, dict], path: Path, title: str, raw_panels: dict[str, dict] | None = None) -> Path:
    """One panel per prompt: each CP row and control as its difference from the plain baseline.

    `panels` maps a prompt's name to its controls result (`records`, `layer`, `alpha`). Bars are
    labelled by kind ("NS", "zero", "shuffle NR", ...), so panels with different l and alpha align.
    `raw_panels` holds the same rows on raw STS-B dev (records with `difference`, and `low`/`high`
    intervals) where they ran: a second row of panels, with the intervals as error bars.
    """
    plt = _pyplot()
    splits = [("STS-B dev (SentEval)", panels)] + ([("raw STS-B dev, 95% interval", raw_panels)] if raw_panels else [])
    # One x scale per row, so a prompt where nothing moves looks like it; values are written out.
    # Each panel keeps its own y axis: its rows are labelled by its own records.
    fig, axes = plt.subplots(
        len(splits), len(panels), figsize=(4.2 * len(panels) + 0.6, 3.6 * len(splits)), sharex="row", squeeze=False
    )
    for row, (split, results) in zip(axes, splits, strict=True):
        for ax, prompt in zip(row, panels, strict=True):
            if prompt in results:
                _controls_panel(ax, prompt, results[prompt], split)
            else:
                ax.set_axis_off()
                ax.set_title(f"{prompt}: {split.split(',')[0]} not run yet", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)
    return path


def _controls_panel(ax, prompt: str, controls: dict, split: str) -> None:
    records = controls["records"]
    baseline = next(r["spearman"] for r in records if r["norm"] == "none")
    rows = [r for r in records if r["norm"] != "none"]
    kinds = [r["label"].split(" l=")[0] for r in rows]
    deltas = [r["spearman"] - baseline for r in rows]
    errors = None
    if all("low" in r for r in rows):
        below = [d - r["low"] for d, r in zip(deltas, rows, strict=True)]
        errors = [below, [r["high"] - d for d, r in zip(deltas, rows, strict=True)]]
    colors = ["tab:blue" if kind in ("NS", "NR") else "tab:gray" for kind in kinds]
    ax.barh(range(len(rows)), deltas, color=colors, xerr=errors, ecolor="black", capsize=2)
    for y, delta in enumerate(deltas):
        ax.text(
            delta,
            y,
            f" {delta:+.2f} ",
            va="bottom" if errors else "center",
            ha="left" if delta >= 0 else "right",
            fontsize=7,
        )
    ax.set_yticks(range(len(rows)), kinds)
    ax.set_ylim(len(rows) - 0.5, -0.5)  # the first record on top
    ax.axvline(0, color="black", linewidth=0.8)
    ax.margins(x=0.2)
    ax.set_title(
        f"{prompt}, l={controls['layer']} a={controls['alpha']:g}\n{split}: baseline {baseline:.2f}", fontsize=9
    )
    ax.set_xlabel("vs baseline (Spearman x100)")


def gains_plot(
    series: dict[str, dict[str, tuple[float, float, float]]], groups: list[str], path: Path, title: str
) -> Path:
    """Gains with intervals: one row of markers per group (a job), one colour per series (a model's
    recipe); `series[name][group]` is (gain, low, high). A missing pair is left out, and said."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8.5, 0.75 * len(groups) + 1.8), layout="constrained")
    step = 0.8 / max(len(series), 1)
    for index, (name, gains) in enumerate(series.items()):
        rows = [(g, *gains[group]) for g, group in enumerate(groups) if group in gains]
        if not rows:
            continue
        y = np.array([r[0] for r in rows]) - 0.4 + step * (index + 0.5)
        gain, low, high = (np.array([r[i] for r in rows]) for i in (1, 2, 3))
        ax.errorbar(gain, y, xerr=[gain - low, high - gain], fmt="o", capsize=3, label=name)
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_yticks(range(len(groups)), groups)
    ax.invert_yaxis()
    ax.set_xlabel("points over plain PromptEOL of the same model (test split)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    missing = [group for group in groups if not any(group in gains for gains in series.values())]
    if missing:
        fig.supxlabel("not measured yet: " + ", ".join(missing), fontsize=8)
    _save(fig, path)
    return path
