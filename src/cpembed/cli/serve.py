"""`cpembed serve`: the OpenAI-compatible embeddings service."""

from __future__ import annotations

from pathlib import Path

import click

from .options import build_encoder, encoder_arguments, encoder_options, split_batch_size


@click.command(short_help="Serve embeddings over HTTP in OpenAI's /v1/embeddings schema.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback by default; 0.0.0.0 to expose it.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--served-name", help="The model id clients send (default: the --model value).")
@click.option("--api-key", envvar="CPEMBED_API_KEY", help="Require 'Authorization: Bearer KEY' (or CPEMBED_API_KEY).")
@click.option("--max-wait-ms", type=float, default=5.0, show_default=True, help="How long a request waits for others.")
@click.option("--max-inputs", type=click.IntRange(min=1), default=2048, show_default=True, help="Strings per request.")
@click.option(
    "--max-chars", type=click.IntRange(min=1), default=20000, show_default=True, help="Characters per string."
)
@click.option(
    "--max-queue", type=click.IntRange(min=1), default=4096, show_default=True, help="Waiting sentences before 503."
)
@click.option(
    "--max-queue-seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Refuse (503, Retry-After) a request that the work queued ahead would delay longer, at the measured speed.",
)
@click.option(
    "--graceful-timeout",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="On SIGTERM/SIGINT, how long requests in flight may take to finish.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="Connections and requests in progress at once; beyond it, 503.",
)
@encoder_options
def serve(
    host,
    port,
    served_name,
    api_key,
    max_wait_ms,
    max_inputs,
    max_chars,
    max_queue,
    max_queue_seconds,
    graceful_timeout,
    max_connections,
    **options,
):
    """Serve POST /v1/embeddings, POST /rerank, GET /v1/models, GET /health and GET /metrics;
    concurrent requests share batches of up to --batch-size sentences. Embeddings are
    L2-normalized, as OpenAI's are. Several --spec files serve several models, each under its
    file's name (a.json: "a"), sharing the weights of one model."""
    from .. import service  # without the serve extra: one line that names the pip command

    if api_key is not None and not api_key.strip():
        raise click.UsageError("--api-key is empty: give a key, or leave it out to serve without one")
    _check_port_free(host, port)  # before the model loads, not after
    options, batch_size = split_batch_size(options)
    specs = options.pop("spec")
    if len(specs) > 1:
        if served_name:
            raise click.UsageError("with several --spec, each is served under its file's name: drop --served-name")
        encoder_arguments(**options, spec=specs[:1])  # refuses any other embedding flag given beside --spec
        encoders = specs_encoders(specs, options["device"], options["compile"])
    else:
        encoder = build_encoder(**options, spec=specs)
        encoders = {served_name or encoder.spec.model: encoder}
    for encoder in encoders.values():
        compile_before_serving(encoder)
    limits = service.Limits(
        max_inputs=max_inputs,
        max_chars=max_chars,
        max_batch_size=batch_size,
        max_wait_ms=max_wait_ms,
        max_queue=max_queue,
        max_queue_seconds=max_queue_seconds,
    )
    app = service.create_app(encoders, None, limits, api_key)
    click.echo(f"serving {', '.join(encoders)} on http://{host}:{port}/v1", err=True)
    service.serve(app, host, port, graceful_timeout, max_connections)


def compile_before_serving(encoder) -> None:
    """A service is a long job: compile where "auto" would (or --compile asks) before the first
    request, and build the graphs for one row and for several, so no request waits for them."""
    from ..compiled import compile_model, should_compile

    if should_compile(encoder.lm, encoder.compile, long_job=True):
        click.echo("cpembed: compiling the model before serving (seconds; --no-compile skips it)", err=True)
        if compile_model(encoder.lm):
            encoder.encode(["One sentence.", "And a second, longer one."])
            encoder.encode(["One sentence."])


def specs_encoders(paths, device, compile=None) -> dict:
    """Served name (each file's name without .json) -> its encoder; specs of one model in one
    dtype share its loaded weights."""
    from ..encoder import CPEncoder
    from ..errors import CPEmbedError
    from ..models import load_model
    from ..spec import EncoderSpec

    names = [Path(path).name.removesuffix(".json") for path in paths]
    if len(set(names)) < len(names):
        raise click.UsageError(f"two --spec files have the same name ({', '.join(names)}): rename one")
    try:
        specs = [EncoderSpec.load(path) for path in paths]
        loaded: dict[tuple, object] = {}
        encoders = {}
        for served_name, spec in zip(names, specs, strict=True):
            key = (spec.model, spec.dtype)
            if key not in loaded:
                loaded[key] = load_model(spec.model, spec.dtype, device)
            encoders[served_name] = CPEncoder.from_spec(
                spec, model=loaded[key], compile="auto" if compile is None else compile
            )
            click.echo(f"cpembed: {served_name}: {encoders[served_name].spec.describe()}", err=True)
    except CPEmbedError as error:
        raise click.UsageError(str(error)) from error
    return encoders


def _check_port_free(host: str, port: int) -> None:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            raise click.ClickException(
                f"cannot listen on {host}:{port} ({error.strerror}): choose another --port"
            ) from None
