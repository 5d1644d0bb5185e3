"""`cpembed bench`: plain against CP on your model and machine."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..models import DEFAULT_MODEL
from .options import CommaList


@click.command(short_help="Measure plain encoding against CP (and the grid) on this machine.")
@click.option("--model", default=DEFAULT_MODEL, show_default=True)
@click.option("--prompts", type=CommaList(), default="prompteol,cot", show_default=True, help="Prompt names.")
@click.option("--dtype", type=click.Choice(["auto", "float32", "bfloat16"]), default="auto", show_default=True)
@click.option("--count", type=int, default=64, show_default=True, help="Sentences per measurement.")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--rounds", type=int, default=2, show_default=True, help="Each configuration's best round counts.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the measurements here.")
def bench(model, prompts, dtype, count, batch_size, rounds, json_path):
    """Sentences per second of plain encoding and of CP (the default setting), the paper's grid in
    one pass against one plain pass, and peak memory: all in one process, interleaved."""
    from .. import bench as benchmark
    from ..models import load_model
    from ..validation import integer

    for name, value in (("--count", count), ("--batch-size", batch_size), ("--rounds", rounds)):
        integer(name, value)
    lm = load_model(model, dtype)
    result = benchmark.run(lm, prompts, 12, count, batch_size, rounds)
    click.echo(benchmark.markdown(result))
    if json_path:
        Path(json_path).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        click.echo(f"wrote {json_path}", err=True)
