"""`cpembed tune MODEL --job JOB`: a spec file chosen on tuning data for that model and job."""

from __future__ import annotations

import re
from pathlib import Path

import click

from ..errors import InputNotFoundError, require_extra
from .options import CommaList


@click.command(short_help="Choose a model's best setting for one job, on tuning data, within a budget.")
@click.argument("model")
@click.option("--job", type=click.Choice(["sts", "retrieval", "reranking", "pairs", "clustering"]), required=True)
@click.option(
    "--data",
    type=click.Path(),
    help="Your own labelled tuning data (run with --job and no data to see its format); default: the shared "
    "tuning split of the job.",
)
@click.option("--budget", default="10m", show_default=True, help="Wall time to spend: 90s, 10m, 1h.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="The spec file (default: <model>-<job>.json).")
@click.option("--prompts", type=CommaList(), help="Prompts to try (names or templates); default: the four built-in.")
@click.option("--layers", type=CommaList(click.INT), help="CP layers to try; default: 6 spread over the depth.")
@click.option(
    "--demonstrations",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Also try each prompt with one in-context example: this many short tuning sentences, each with the "
    "model's own one-word answer.",
)
@click.option(
    "--aux-prompts",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Also try this many other auxiliary wordings (what CP subtracts), with NR at each layer.",
)
@click.option("--senteval-data", type=click.Path(file_okay=False), help="SentEval 'downstream' folder (job sts).")
@click.option("--raw-data", type=click.Path(file_okay=False), help="Folder of the raw STS-B release (job sts).")
@click.option("--beyond-data", type=click.Path(file_okay=False), help="The beyond-STS folder (other jobs).")
@click.option(
    "--dtype",
    type=click.Choice(["auto", "float32", "bfloat16"]),
    default="auto",
    show_default=True,
    help="auto = bfloat16 where the hardware computes it natively, else float32.",
)
@click.option("--device", help="cpu, cuda, cuda:1, ... (default: CUDA if available).")
@click.option("--max-length", type=int, default=512, show_default=True, help="Token budget of one prompt.")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Sentences per forward batch.")
@click.option(
    "--no-cache", is_flag=True, help="Do not read or write the embedding cache (a stopped run then restarts)."
)
def tune(
    model,
    job,
    data,
    budget,
    output,
    prompts,
    layers,
    demonstrations,
    aux_prompts,
    senteval_data,
    raw_data,
    beyond_data,
    dtype,
    device,
    max_length,
    batch_size,
    no_cache,
):
    """Search prompts, CP settings (layer over the whole depth, NS alpha, NR) and fitted
    post-processing (and, if asked, in-context examples and auxiliary wordings) for MODEL on the
    job's tuning data, by successive halving within --budget,
    and write the winner as a spec file that `encode`, `similarity`, `serve`, `eval` and Ray take
    with --spec. It picks plain PromptEOL unless a setting beats it by more than noise (a 95%
    paired-bootstrap interval above 0). Test splits are refused."""
    require_extra("eval", "sklearn")
    from ..cache import EmbeddingCache
    from ..evaluation import tune as tuning
    from ..evaluation.aux_search import aux_candidates
    from ..models import load_model

    seconds = tuning.parse_budget(budget)
    try:
        tasks = tuning.user_tasks(job, data) if data else tuning.shared_tasks(job, senteval_data, raw_data, beyond_data)
    except InputNotFoundError as error:
        raise click.UsageError(
            f"the {job} job needs labelled tuning data: {tuning.DATA_HELP[job]}. Pass it with --data FILE, or put "
            f"the shared tuning data where cpembed finds it ({error})"
        ) from error
    lm = load_model(model, dtype, device)
    click.echo(
        f"cpembed: tuning {lm.name} for {job} on {', '.join(f'{t.name} ({t.units})' for t in tasks)}, "
        f"budget {seconds:.0f} s, {lm.dtype}",
        err=True,
    )
    result = tuning.tune(
        lm,
        job,
        tasks,
        seconds,
        prompts=prompts or tuning.PROMPTS,
        layers=layers,
        examples=tuning.example_sentences(tasks, demonstrations),
        aux_templates=list(aux_candidates().values())[1 : 1 + aux_prompts],  # the first is the paper's
        max_length=max_length,
        batch_size=batch_size,
        cache=None if no_cache else EmbeddingCache(),
        report=lambda line: click.echo(f"  {line}", err=True),
    )
    path = Path(output or f"{_slug(lm.name)}-{job}.json")
    spec = _spec(lm, job, tasks, result, path, max_length, budget)
    spec.save(path)
    metric = tuning.METRICS[job]
    low, high = result.interval
    click.echo(_table(result, metric))
    if not result.beat_noise:
        click.echo(
            f"No setting beat plain PromptEOL by more than noise: the best, {result.best.label()} "
            f"({result.best_score:.2f}), differs by {result.best_score - result.baseline:+.2f} "
            f"[{low:+.2f}, {high:+.2f}]. The spec is plain PromptEOL."
        )
    else:
        click.echo(
            f"Chosen: {result.chosen.label()}, dev {metric} {result.score:.2f} against plain PromptEOL's "
            f"{result.baseline:.2f} ({result.score - result.baseline:+.2f} [{low:+.2f}, {high:+.2f}])."
        )
    if not result.complete:
        click.echo("The budget ended the search before the whole tuning set was scored; a larger --budget goes on.")
    click.echo(f"Wrote {path} in {result.seconds:.0f} s. Use it: cpembed encode --spec {path} sentences.txt")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", Path(name).name).strip("-").lower() or "model"


def _table(result, metric: str) -> str:
    lines = [f"{'round':>5}  {'units':>6}  {'candidates':>10}  {'seconds':>7}  {metric + ' (best)':>14}  plain  best"]
    for i, r in enumerate(result.rounds, 1):
        lines.append(
            f"{i:>5}  {r.units:>6}  {r.candidates:>10}  {r.seconds:>7.0f}  {r.best_score:>14.2f}  "
            f"{r.baseline_score:>5.2f}  {r.best}"
        )
    return "\n".join(lines)


def _spec(lm, job, tasks, result, path: Path, max_length: int, budget: str):
    import dataclasses

    from ..spec import resolve

    chosen = result.chosen
    fit_name = None
    if result.post is not None:
        fit_name = path.with_suffix("").name + ".fit.npz"
        result.post.save(path.parent / fit_name)
    spec = resolve(
        lm.name,
        chosen.prompt,
        demonstrations=[chosen.example] if chosen.example else None,
        cp=chosen.cp,
        dtype=str(lm.dtype).removeprefix("torch."),
        max_length=max_length,
        recipe=None,
        postprocess=fit_name,
        num_layers=lm.num_layers,
    )
    low, high = result.interval
    about = (
        f"tuned for {job}: {chosen.label()}, dev {result.score:.2f} against plain PromptEOL's {result.baseline:.2f} "
        f"({result.score - result.baseline:+.2f} [{low:+.2f}, {high:+.2f}])"
    )
    origin = {
        "data": [f"{t.name} ({t.units})" for t in tasks],
        "metric": job,
        "score": result.score,
        "baseline": result.baseline,
        "interval": [low, high],
        "beat_noise": result.beat_noise,
        "chosen": chosen.label(),
        "best": {"candidate": result.best.label(), "score": result.best_score},
        "rounds": [dataclasses.asdict(r) for r in result.rounds],
        "complete": result.complete,
        "seconds": round(result.seconds, 1),
        "budget": budget,
    }
    return dataclasses.replace(spec, weights=lm.fingerprint, job=job, about=about, origin=origin)
