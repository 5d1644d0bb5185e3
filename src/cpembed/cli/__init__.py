"""The `cpembed` command: the group, its error handling, and its subcommands.

Each subcommand lives in a module of its own (their shared flags in options.py) and is added to
`main` here, so no module of the CLI imports this one.
"""

from __future__ import annotations

import logging
import sys

import click

from ..config import VERSION
from ..errors import CPEmbedError

# Exit statuses (docs/guide/cli.md, "Errors and exit statuses"): every error is one line on stderr that
# starts with "Error:".
EXIT_FAILED = 1  # the command could not finish: a missing file or model, input it cannot read
EXIT_USAGE = 2  # the command line asks for something that cannot work; a second line points to --help
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGTERM gives 143); an interrupted run leaves no partial output


class _Group(click.Group):
    """Turns cpembed's and argument errors into one clean line instead of a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (CPEmbedError, OSError) as error:  # anything else is a bug: its traceback shows
            if ctx.params.get("debug"):
                raise
            raise click.ClickException(str(error)) from error

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as error:  # click's own layout starts with a usage line: one shape for all
            click.echo(f"Error: {error.format_message()}", err=True)
            if error.ctx is not None:
                click.echo(f"Try '{error.ctx.command_path} --help' for help.", err=True)
            sys.exit(EXIT_USAGE)
        except click.ClickException as error:
            click.echo(f"Error: {error.format_message()}", err=True)
            sys.exit(EXIT_FAILED)
        except click.Abort:  # click's name for Ctrl-C
            click.echo("Error: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        sys.exit(result if isinstance(result, int) else 0)


@click.group(cls=_Group)
@click.version_option(VERSION, prog_name="cpembed")
@click.option("--debug", is_flag=True, help="Show the traceback of an error, not just its one line.")
def main(debug: bool) -> None:
    """Sentence embeddings from decoder-only LLMs, with Contrastive Prompting."""
    logging.basicConfig(level=logging.WARNING, format="cpembed: %(message)s")
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # one bar per weight load is noise on a CLI


def _register() -> None:
    from . import bench, beyond, embed, evaluate, explain, fit, serve, spec, tune

    for command in beyond.COMMANDS:
        evaluate.eval_group.add_command(command)

    for command in (
        embed.encode,
        embed.similarity,
        embed.rerank,
        embed.models,
        fit.fit,
        spec.spec,
        tune.tune,
        evaluate.eval_group,
        evaluate.search,
        serve.serve,
        bench.bench,
        explain.explain,
    ):
        main.add_command(command)


_register()
