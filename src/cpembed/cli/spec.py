"""`cpembed spec`: the spec the flags describe, written as a file that every command takes with --spec."""

from __future__ import annotations

import dataclasses
import json

import click

from ..errors import InvalidTypeError, InvalidValueError
from .options import embedding_options, encoder_arguments, postprocess_option


@click.command(short_help="Write the spec of an embedding (a file --spec takes).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write it here (default: stdout).")
@click.option("--about", default="", help="One line for people: what it is for.")
@embedding_options
@postprocess_option
def spec(output, about, **options):
    """Resolve the embedding flags (a recipe, or a prompt and CP setting) into a spec file, without
    loading the model: `cpembed encode --spec FILE`, `serve --spec FILE`, Ray and `eval` then embed
    with exactly it. `cpembed tune` writes the same kind of file, chosen on your data."""
    from ..spec import resolve

    options.pop("batch_size")
    arguments = encoder_arguments(**options)
    arguments.pop("device")
    arguments.pop("compile")
    try:
        resolved = resolve(**arguments)
    except (InvalidValueError, InvalidTypeError) as error:
        raise click.UsageError(str(error)) from error
    if about:
        resolved = dataclasses.replace(resolved, about=about)
    if output:
        click.echo(f"wrote {resolved.save(output)} (digest {resolved.digest()})", err=True)
    else:
        click.echo(json.dumps(resolved.to_dict(), indent=2))
