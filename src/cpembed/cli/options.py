"""The flags every command that encodes shares, and the encoder they build (no model is loaded to check them)."""

from __future__ import annotations

import functools

import click

from ..config import NORMS, RECIPES, TPConfig
from ..errors import InputNotFoundError, InvalidTypeError, InvalidValueError, ModelNotFoundError
from ..models import DEFAULT_MODEL
from ..prompts import PROMPTS
from ..sites import SITES
from ..spec import cp_from_flags

_MODEL_OPTIONS = [
    click.option(
        "--model",
        default=DEFAULT_MODEL,
        show_default=True,
        help="Built-in name (see `cpembed models`), a model folder, or a .gguf file.",
    ),
    click.option(
        "--prompt",
        help=f"{', '.join(PROMPTS)}, or a template with one {{sentence}}. Default: prompteol, or the recipe's.",
    ),
    click.option(
        "--output-layer", type=int, help="Index into hidden_states (-1 = final normed state); default per prompt."
    ),
    click.option(
        "--dtype",
        type=click.Choice(["auto", "float32", "bfloat16"]),
        default="auto",
        show_default=True,
        help="auto = bfloat16 on hardware that computes it natively (recent GPUs, AVX512-BF16/AMX CPUs), else float32.",
    ),
    click.option("--device", help="cpu, cuda, cuda:1, ... (default: CUDA if available)."),
    click.option(
        "--compile/--no-compile",
        default=None,
        help="Compile each layer's feed-forward block and norms (seconds once; a few percent faster, more memory). "
        "Default: compile a bfloat16 model on a CPU once it has been asked for 2,000 sentences.",
    ),
    click.option(
        "--max-length",
        type=int,
        default=512,
        show_default=True,
        help="Token budget of one prompt; longer sentences are cut, never the template.",
    ),
    click.option(
        "--tp-layers",
        help="Token Prepending at these layers, e.g. 2-7 (or 7: layers 2..7); composes with CP. Default: off.",
    ),
    click.option(
        "--batch-size",
        type=int,
        default=32,
        show_default=True,
        help="Sentences per forward batch (serve: the most a gathered batch holds).",
    ),
]
_SITE_OPTION = click.option("--site", type=click.Choice(SITES), help="Where CP reads and writes.")
_SITE_OPTIONS = [_SITE_OPTION, click.option("--aux-template", help="Auxiliary prompt with one {sentence}.")]
_CP_OPTIONS = [
    click.option(
        "--recipe",
        type=click.Choice(["auto", *RECIPES, "none"]),
        default="auto",
        show_default=True,
        help="The model's recipe: prompt, CP, TP and post-processing chosen on dev splits (`cpembed models`). "
        "auto: best, unless --prompt, a CP flag, --tp-layers or --output-layer is given; fast: the best "
        "single-prompt one; retrieval, reranking, pairs, clustering: the one tuned for that job, where the model "
        "has one; none: PromptEOL and its default CP unless given.",
    ),
    click.option("--no-cp", is_flag=True, help="Plain prompt embeddings, without Contrastive Prompting."),
    click.option(
        "--layer",
        type=int,
        help="CP intervention layer l, 1-based as in the paper. Unset CP flags come from the defaults table "
        "for the model and prompt (cpembed.DEFAULT_CP, else the paper's setting).",
    ),
    click.option("--alpha", type=float, help="NS coefficient (NR has none); default as for --layer."),
    click.option("--norm", type=click.Choice(NORMS), help="scale = NS, recover = NR; default as for --layer."),
]


_SPEC_OPTION = click.option(
    "--spec",
    type=click.Path(dir_okay=False),
    multiple=True,
    help="A spec file (`cpembed tune`, `cpembed spec`): the whole embedding; the other embedding flags must be "
    "left unset (--device and --batch-size still apply).",
)
_POSTPROCESS_OPTION = click.option(
    "--postprocess",
    type=click.Path(dir_okay=False),
    default="auto",
    help="A centering or whitening fitted with `cpembed fit` for exactly these settings (.npz); "
    "auto (the default): the recipe's; none: no post-processing.",
)


def postprocess_option(command):
    return _POSTPROCESS_OPTION(command)


def apply_options(options, command):
    return functools.reduce(lambda f, option: option(f), reversed(options), command)


def encoder_options(command):
    """The flags every command that encodes shares."""
    return apply_options(_MODEL_OPTIONS + _CP_OPTIONS + _SITE_OPTIONS + [_POSTPROCESS_OPTION, _SPEC_OPTION], command)


def embedding_options(command):
    """The encoder flags of one embedding before any fitted post-processing (what `fit` and a search take)."""
    return apply_options(_MODEL_OPTIONS + _CP_OPTIONS + _SITE_OPTIONS, command)


def search_options(command):
    """Encoder flags without the CP setting itself, which `eval controls` varies."""
    return apply_options(_MODEL_OPTIONS + _SITE_OPTIONS, command)


def build_encoder(query_prompt=None, document_prompt=None, **options):
    """A CPEncoder from the encoder flags (CP flags override the defaults table's entry), or from --spec."""
    from ..encoder import CPEncoder  # imports torch: keep `cpembed --help` fast

    settings = encoder_arguments(**options)
    try:
        if "spec" in settings:
            if query_prompt is not None or document_prompt is not None:
                raise click.UsageError(
                    "--spec sets the query and document prompts: drop --query-prompt/--document-prompt"
                )
            encoder = CPEncoder.from_spec(settings["spec"], device=settings["device"], compile=settings["compile"])
        else:
            encoder = CPEncoder(**settings, query_prompt=query_prompt, document_prompt=document_prompt)
    except (InvalidValueError, InvalidTypeError, ModelNotFoundError, InputNotFoundError) as error:
        raise click.UsageError(str(error)) from error  # a flag's value, checked before any weight is read
    if encoder.recipe is not None or "spec" in settings:
        click.echo(f"cpembed: {encoder.spec.describe()}", err=True)
    return encoder


def split_batch_size(options: dict) -> tuple[dict, int]:
    batch_size = options.pop("batch_size")
    return options, batch_size


def encoder_arguments(
    model,
    prompt,
    no_cp,
    layer,
    alpha,
    norm,
    site,
    aux_template,
    output_layer,
    dtype,
    device,
    max_length,
    compile=None,
    tp_layers=None,
    recipe="none",
    postprocess=None,
    spec=None,
) -> dict:
    """CPEncoder's keyword arguments from the encoder flags, without loading the model; with
    --spec, the spec file's path, the device and whether to compile (the file holds everything else)."""
    compile = "auto" if compile is None else compile
    given = dict(layer=layer, alpha=alpha, norm=norm, site=site, aux_template=aux_template)
    overrides = {k: v for k, v in given.items() if v is not None}
    flags = [
        flag
        for flag, value in (
            ("--prompt", prompt),
            ("--no-cp", no_cp),
            ("--tp-layers", tp_layers),
            ("--output-layer", output_layer is not None),
        )
        if value
    ]
    flags += [f"--{k.replace('_', '-')}" for k in overrides]
    if isinstance(spec, tuple):  # click's multiple option; only `cpembed serve` takes several
        if len(spec) > 1:
            raise click.UsageError("give one --spec (only `cpembed serve` serves several)")
        spec = spec[0] if spec else None
    if spec is not None:
        changed = flags + [
            flag
            for flag, value, default in (
                ("--model", model, DEFAULT_MODEL),
                ("--dtype", dtype, "auto"),
                ("--max-length", max_length, 512),
                ("--recipe", recipe, "auto"),
                ("--postprocess", postprocess if postprocess is not None else "auto", "auto"),
            )
            if value != default
        ]
        if changed:
            raise click.UsageError(f"--spec sets the whole embedding: drop {', '.join(changed)}, or drop --spec")
        return {"spec": spec, "device": device, "compile": compile}
    common = dict(model=model, dtype=dtype, device=device, max_length=max_length, compile=compile)
    common |= _postprocess(postprocess)
    if recipe in RECIPES and flags:
        raise click.UsageError(
            f"--recipe {recipe} sets the prompt, CP, TP and output layer: drop {', '.join(flags)}, or drop --recipe"
        )
    if recipe in RECIPES or (recipe == "auto" and not flags):
        return common | {"recipe": recipe}
    try:
        cp = cp_from_flags(model, prompt, no_cp, overrides)
    except InvalidValueError as error:
        raise click.UsageError(str(error)) from error
    arguments = common | dict(prompt=prompt or "prompteol", cp=cp, output_layer=output_layer, recipe=None)
    if tp_layers:
        try:
            arguments["tp"] = TPConfig.parse(tp_layers)
        except InvalidValueError as error:
            raise click.UsageError(f"--tp-layers: {error}") from error
    return arguments


def _postprocess(path) -> dict:
    """None (what the commands without --postprocess pass: a fit or a search needs raw rows) and
    "none" turn it off; "auto" is the recipe's."""
    return {"postprocess": None if path in (None, "none") else path}


class CommaList(click.ParamType):
    """A comma-separated list of `item` values ("3,4,5" -> [3, 4, 5]); click names a bad item."""

    name = "list"

    def __init__(self, item: click.ParamType = click.STRING) -> None:
        self.item = item

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        return [self.item.convert(part.strip(), param, ctx) for part in value.split(",") if part.strip()]


DATA_OPTION = click.option(
    "--data", type=click.Path(file_okay=False), help="SentEval 'downstream' folder (or CPEMBED_DATA)."
)
