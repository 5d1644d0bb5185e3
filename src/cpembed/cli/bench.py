"""`cpembed bench`: throughput measured side by side."""

from __future__ import annotations

from pathlib import Path

import click

from ..models import DEFAULT_MODEL
from . import main


@main.command(short_help="Measure plain, fast CP and naive CP side by side; write docs/PERFORMANCE.md.")
@click.option("--model", default=DEFAULT_MODEL, show_default=True)
@click.option("--output", default="docs/PERFORMANCE.md", show_default=True, help="The Markdown report.")
@click.option("--rounds", type=int, default=2, show_default=True, help="Each configuration's best round counts.")
@click.option("--count", type=int, default=64, show_default=True, help="Sentences per measurement.")
@click.option("--quick", is_flag=True, help="A small run: one prompt, one length, one round.")
def bench(model, output, rounds, count, quick):
    """Throughput (sentences/s) and peak memory of plain, CP fast and CP naive for PromptEOL,
    Knowledge and CK, at several batch sizes and sentence lengths; the grid search against one
    plain pass; bfloat16 against float32; streaming memory. All in one process, interleaved."""
    from .. import benchmark
    from ..models import load_model

    lm = load_model(model, "float32", "cpu")
    options = {"rounds": rounds, "count": count}
    if quick:
        options |= dict(
            prompts=("prompteol",),
            lengths=(8,),
            batch_sizes=(16,),
            sweep_lengths=(8, 16),
            rounds=1,
            grid_count=16,
            memory_lines=(32, 64),
        )
    result = benchmark.run_benchmark(lm, **options)
    result["command"] = (
        "cpembed bench" + ("" if model == DEFAULT_MODEL else f" --model {model}") + (" --quick" if quick else "")
    )
    target = Path(output)
    benchmark.throughput_plot(result, target.parent / "performance" / "throughput.png")
    benchmark.save_measurement(target, "bench", result)
    click.echo(target.read_text())
    click.echo(f"wrote {target}", err=True)
