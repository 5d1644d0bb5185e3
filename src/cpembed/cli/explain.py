"""`cpembed explain`: a PNG of what CP changes in what the last token reads, for one sentence."""

from __future__ import annotations

import click

from .options import build_encoder, encoder_options, split_batch_size


@click.command(short_help="Draw what CP changes in the last token's attention, for one sentence.")
@click.argument("sentence")
@click.option(
    "--output", default="explain.png", show_default=True, type=click.Path(dir_okay=False), help="The PNG to write."
)
@encoder_options
def explain(sentence, output, **options):
    """The last token's attention at every layer from the CP layer on, with and without CP, and
    gradient x input per token; prints the share of both that falls on stop words."""
    from ..explain import explain as explain_sentence
    from ..explain import explanation_png

    options, _ = split_batch_size(options)
    if options.get("no_cp"):
        raise click.UsageError("explain compares with and without CP: leave out --no-cp")
    encoder = build_encoder(**options)
    if encoder.cp is None:
        raise click.UsageError(f"{encoder.lm.name} has no default CP setting for this prompt: give --layer")
    found = explain_sentence(encoder, sentence)
    path = explanation_png(found, output, title=f"{sentence!r}: {encoder.lm.name}, {encoder.prompt.name}, {encoder.cp}")
    for run, share in found.stop_word_share().items():
        click.echo(
            f"{run:>5}: stop words hold {share['attention']:.1%} of the last token's attention to the sentence "
            f"and {share['saliency']:.1%} of its gradient x input"
        )
    click.echo(f"wrote {path}", err=True)
