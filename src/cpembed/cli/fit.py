"""`cpembed fit`: center or whiten embeddings, fitted on the user's own unlabelled sentences."""

from __future__ import annotations

from pathlib import Path

import click

from .options import DATA_OPTION, build_encoder, embedding_options, split_batch_size


@click.command(short_help="Fit centering or whitening on unlabelled sentences, for --postprocess.")
@click.argument("corpus", type=click.Path(exists=True, dir_okay=False, allow_dash=True), required=False)
@click.option(
    "--tuning",
    is_flag=True,
    help="Fit on cpembed's tuning corpus instead of CORPUS: 600 sentences from each of STS-B train, 20 "
    "Newsgroups train subjects, PIT2015 dev and SciFact train claims (the packaged recipes' fits).",
)
@DATA_OPTION
@click.option("--beyond-data", type=click.Path(file_okay=False), help="With --tuning: the beyond-STS folder.")
@click.option("-o", "--output", required=True, help="The fit's file (.npz), for --postprocess.")
@click.option(
    "--kind",
    type=click.Choice(["center", "whiten"]),
    default="whiten",
    show_default=True,
    help="center: subtract the corpus mean; whiten: also decorrelate and equalize the variances.",
)
@click.option("--dimensions", type=int, help="Whitening only: keep the first K components (default: all).")
@click.option("--max-sentences", type=int, default=20_000, show_default=True, help="Fit on at most this many.")
@embedding_options
def fit(corpus, tuning, data, beyond_data, output, kind, dimensions, max_sentences, **options):
    """Fit a post-processing on CORPUS (one sentence a line, - for stdin), or with --tuning on
    cpembed's tuning corpus, with these encoder settings.

    The fit belongs to those settings: `--postprocess FILE` refuses it with another model, prompt,
    CP setting, output layer or dtype. A few thousand sentences like the ones you will embed are
    enough; whitening needs more sentences than the embedding has dimensions.
    """
    from ..postprocess import fit as fit_arrays

    if not output.endswith(".npz"):
        raise click.UsageError(f"--output must end in .npz, got {output!r}")
    if not Path(output).parent.resolve().is_dir():
        raise click.UsageError(f"the folder of --output {output!r} does not exist: create it first")
    if dimensions is not None and kind != "whiten":
        raise click.UsageError("--dimensions needs --kind whiten: centering keeps the width")
    if (corpus is None) == (not tuning):
        raise click.UsageError("give a CORPUS file or --tuning (cpembed's tuning corpus), not both")
    if tuning:
        from ..evaluation.beyond import find_beyond_dir
        from ..evaluation.corpus import PER_SOURCE, tuning_corpus
        from ..evaluation.data import find_data_dir

        lines = tuning_corpus(find_data_dir(data), find_beyond_dir(beyond_data), PER_SOURCE)
        corpus = "tuning corpus"
    else:
        text = click.get_text_stream("stdin").read() if corpus == "-" else Path(corpus).read_text(encoding="utf-8")
        lines = text.splitlines()
    sentences = list(dict.fromkeys(line.strip() for line in lines if line.strip()))[:max_sentences]
    if len(sentences) < 2:
        raise click.UsageError(f"{corpus} has {len(sentences)} distinct non-empty line(s): fitting needs many more")
    options, batch_size = split_batch_size(options)
    encoder = build_encoder(**options)
    kept = dimensions or encoder.embedding_dimension
    if kind == "whiten" and len(sentences) <= kept:
        # Whitening to k divides by the k largest variances: with no more sentences than k, some are 0.
        click.echo(
            f"warning: {len(sentences)} distinct sentences for {kept} whitened dimensions: the smallest kept "
            "variances cannot be estimated; give more sentences or a smaller --dimensions",
            err=True,
        )
    embeddings = encoder.encode(sentences, batch_size=batch_size)
    fitted = fit_arrays(embeddings, kind, encoder.settings().digest(), dimensions, source=Path(corpus).name)
    path = fitted.save(output)
    before, after = _mean_cosine(embeddings), _mean_cosine(fitted.apply(embeddings))
    click.echo(
        f"{kind} fitted on {len(sentences)} distinct non-empty lines "
        f"({encoder.embedding_dimension} -> {fitted.dimensions} dimensions) -> {path}\n"
        f"mean cosine of a sentence with the next one: {before:.3f} before, {after:.3f} after",
        err=True,
    )


def _mean_cosine(embeddings) -> float:
    """The mean cosine of each row with the next: near 0 for isotropic embeddings of unrelated lines."""
    import numpy as np

    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    return float(np.mean(np.sum(unit[:-1] * unit[1:], axis=1)))
