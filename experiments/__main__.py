"""`make results` (python -m experiments): the reproduction report, docs/RESULTS.md.

Hours on 2 CPU cores. Steps already run (their JSON exists) are skipped, and a stopped step
resumes from the embedding cache, so the command picks up where it stopped.
"""

from __future__ import annotations

from pathlib import Path

import click

from cpembed.evaluation.data import find_data_dir, find_raw_stsb_dir

from . import jobs_table, report_steps
from .beyond_steps import TASKS
from .results_page import write_markdown


@click.command()
@click.option("--models", default="smollm2-135m,qwen2.5-coder-0.5b", show_default=True)
@click.option("--prompts", default="prompteol,cot,knowledge,ck", show_default=True)
@click.option("--data", type=click.Path(file_okay=False), help="SentEval 'downstream' folder (or CPEMBED_DATA).")
@click.option("--raw-data", type=click.Path(file_okay=False), help="Folder of the raw STS-B release.")
@click.option("--results", default="docs/results", show_default=True, help="Where each step's JSON is kept.")
@click.option("--markdown", default="docs/RESULTS.md", show_default=True)
@click.option("--batch-size", type=int, default=16, show_default=True)
@click.option(
    "--dtype",
    type=click.Choice(["float32", "bfloat16"]),
    default="float32",
    show_default=True,
    help="float32 gives the same numbers on every machine; steps already run keep theirs.",
)
@click.option("--device", help="cpu, cuda, cuda:1, ... (default: CUDA when available).")
@click.option("--only-markdown", is_flag=True, help="Rewrite the Markdown from the steps already run.")
@click.option(
    "--beyond", is_flag=True, help="Run the beyond-STS tasks (retrieval, reranking, pairs, clustering, 11 languages)."
)
@click.option("--beyond-data", type=click.Path(file_okay=False), help="The beyond-STS folder (or CPEMBED_BEYOND_DATA).")
@click.option("--tasks", default=",".join(TASKS), show_default=True, help="With --beyond: which tasks.")
@click.option("--explain", is_flag=True, help="Run the stop-word check of `cpembed explain` on raw STS-B dev.")
@click.option("--tp", is_flag=True, help="Run Token Prepending on the dev splits (plain, CP, TP, TP with CP).")
@click.option(
    "--sweep", is_flag=True, help="Run the layer sweep of each prompt given (dev splits; PromptEOL's is in the report)."
)
@click.option(
    "--recipes",
    is_flag=True,
    help="Score each model's best recipe (chosen on dev) on the STS test splits; with --beyond, the beyond-STS ones.",
)
@click.option(
    "--postprocess",
    is_flag=True,
    help="Fit centering and whitening on tuning sentences, choose on the dev splits, score once on the STS tests "
    "(with --beyond, on the beyond-STS tests).",
)
@click.option(
    "--recipes-test",
    is_flag=True,
    help="Score each model's packaged recipes (best, fast) with their packaged fits once on the STS test splits "
    "(with --beyond, on the beyond-STS ones).",
)
@click.option(
    "--job-recipes",
    is_flag=True,
    help="Score each model's job recipes (tuned for one job on its tuning split) once on that job's test split, "
    "against plain PromptEOL and the best recipe.",
)
@click.option(
    "--tune-check",
    is_flag=True,
    help="Time `cpembed tune --job sts --budget 10m` from an empty cache and score its choice against the whole "
    "grid on the whole dev splits (--dtype sets both).",
)
@click.option(
    "--output-costs",
    is_flag=True,
    help="What int8, binary and shorter embeddings cost on raw STS-B dev and SciFact train (the default recipe "
    "and plain PromptEOL).",
)
@click.option(
    "--ensembles",
    is_flag=True,
    help="Screen means and concatenations of prompts and output layers, with post-processing, on the dev splits.",
)
@click.option(
    "--ship-fits", is_flag=True, help="Write the fits packaged with each model's recipes (src/cpembed/fits/)."
)
@click.option(
    "--dev-only",
    is_flag=True,
    help="Only the dev work (searches, controls, layer sweep, wording ablation): no STS or transfer evaluation.",
)
def report(
    models,
    prompts,
    data,
    raw_data,
    results,
    markdown,
    batch_size,
    dtype,
    device,
    only_markdown,
    beyond,
    beyond_data,
    tasks,
    explain,
    tp,
    sweep,
    recipes,
    postprocess,
    recipes_test,
    job_recipes,
    tune_check,
    output_costs,
    ensembles,
    ship_fits,
    dev_only,
):
    """Search each model and prompt on STS-B dev, evaluate the chosen settings, write the report."""
    if dev_only and (explain or tp or recipes or beyond):
        raise click.UsageError("--dev-only is for the searches; run --explain, --tp, --recipes or --beyond without it")
    task_list = [t.strip() for t in tasks.split(",") if t.strip()]
    if unknown := [t for t in task_list if t not in TASKS]:
        raise click.BadParameter(f"unknown {', '.join(unknown)}; choose from {', '.join(TASKS)}", param_hint="--tasks")
    model_list = [m.strip() for m in models.split(",") if m.strip()]
    prompt_list = [p.strip() for p in prompts.split(",") if p.strip()]
    out = Path(results)

    def write() -> None:
        write_markdown(out, Path(markdown), *_on_page(out, model_list, prompt_list), "make results")
        click.echo(f"wrote {markdown}", err=True)
        if Path("README.md").is_file() and out.resolve() == (Path("docs") / "results").resolve():
            # The README's first table and picture: what to use for each job, from the committed results.
            jobs_table.jobs_plot(out, out / "jobs.png")
            if jobs_table.write_readme(out, Path("docs") / "performance", Path("README.md")):
                click.echo("wrote README.md's jobs table and docs/results/jobs.png", err=True)
            else:
                click.echo("README.md has no jobs table markers: its table was not written", err=True)

    if explain and not only_markdown:
        from .explain_steps import run_explain

        raw_dir = find_raw_stsb_dir(raw_data)
        for model_name in model_list:
            lm = report_model(model_name, dtype, device)
            for prompt in prompt_list:
                run_explain(model_name, lm, prompt, raw_dir, out)
                write()
    elif tp and not only_markdown:
        from .tp_steps import run_tp

        data_dir, raw_dir = find_data_dir(data), find_raw_stsb_dir(raw_data)
        for model_name in model_list:
            lm = report_model(model_name, dtype, device)
            for prompt in prompt_list:
                run_tp(model_name, lm, prompt, data_dir, raw_dir, out, batch_size)
                write()
    elif sweep and not only_markdown:
        data_dir, raw_dir = find_data_dir(data), find_raw_stsb_dir(raw_data)
        for model_name in model_list:
            lm = report_model(model_name, dtype, device)
            for prompt in prompt_list:
                report_steps.run_sweep(model_name, lm, prompt, data_dir, raw_dir, out, batch_size)
                write()
    elif recipes and not only_markdown:
        from .recipe_steps import as_recipe, choose_recipe, recipe_candidates, run_recipe_beyond, run_recipe_test

        if beyond:
            from cpembed.evaluation.beyond import find_beyond_dir

            root = find_beyond_dir(beyond_data)
        else:
            data_dir, raw_dir = find_data_dir(data), find_raw_stsb_dir(raw_data)
        for model_name in model_list:
            chosen = as_recipe(choose_recipe(recipe_candidates(out, model_name, prompt_list, post=False)))
            lm = report_model(model_name, dtype, device)
            if beyond:
                run_recipe_beyond(model_name, lm, chosen, root, out, batch_size, task_list)
            else:
                run_recipe_test(model_name, lm, chosen, data_dir, raw_dir, out, batch_size)
            write()
    elif recipes_test and not only_markdown:
        from cpembed.evaluation.beyond import find_beyond_dir

        from .default_steps import run_recipes_beyond, run_recipes_test

        data_dir, raw_dir, root = find_data_dir(data), find_raw_stsb_dir(raw_data), find_beyond_dir(beyond_data)
        for model_name in model_list:
            lm = report_model(model_name, dtype, device)
            if beyond:
                run_recipes_beyond(model_name, lm, root, out, batch_size, task_list)
            else:
                run_recipes_test(model_name, lm, data_dir, raw_dir, root, out, batch_size)
            write()
    elif job_recipes and not only_markdown:
        from cpembed.config import GENERAL_RECIPES, MODEL_RECIPES
        from cpembed.evaluation.beyond import find_beyond_dir

        from .default_steps import run_job_recipes_test

        root = find_beyond_dir(beyond_data)
        for model_name in model_list:
            if set(MODEL_RECIPES.get(model_name, {})) <= set(GENERAL_RECIPES):
                continue  # no job recipe tuned for this model
            lm = report_model(model_name, dtype, device)
            run_job_recipes_test(model_name, lm, root, out, batch_size)
            write()
    elif tune_check and not only_markdown:
        from .tune_check import run_tune_check

        for model_name in model_list:
            run_tune_check(model_name, dtype, out)
            write()
    elif output_costs and not only_markdown:
        from cpembed.evaluation.beyond import find_beyond_dir

        from .output_steps import run_output_dev, run_output_retrieval_dev

        data_dir, raw_dir, root = find_data_dir(data), find_raw_stsb_dir(raw_data), find_beyond_dir(beyond_data)
        for model_name in model_list:
            lm = report_model(model_name, dtype, device)
            run_output_dev(model_name, lm, data_dir, raw_dir, root, out)
            write()
            run_output_retrieval_dev(model_name, lm, data_dir, root, out)
            write()
    elif ensembles and not only_markdown:
        from cpembed.evaluation.beyond import find_beyond_dir

        from .ensemble_steps import run_ensembles_dev

        data_dir, raw_dir, root = find_data_dir(data), find_raw_stsb_dir(raw_data), find_beyond_dir(beyond_data)
        for model_name in model_list:
            lm = report_model(model_name, dtype, device)
            run_ensembles_dev(model_name, lm, data_dir, raw_dir, root, out, batch_size)
            write()
    elif ship_fits:
        from cpembed.evaluation.beyond import find_beyond_dir

        from .recipe_fits import ship_fits as ship

        data_dir, root = find_data_dir(data), find_beyond_dir(beyond_data)
        for model_name in model_list:
            for path in ship(model_name, report_model(model_name, dtype, device), data_dir, root, out):
                click.echo(f"wrote {path}", err=True)
    elif postprocess and not only_markdown:
        from cpembed.evaluation.beyond import find_beyond_dir

        from .postprocess_steps import run_postprocess_beyond, run_postprocess_dev, run_postprocess_test

        data_dir, raw_dir, root = find_data_dir(data), find_raw_stsb_dir(raw_data), find_beyond_dir(beyond_data)
        for model_name in model_list:
            lm = report_model(model_name, dtype, device)
            for prompt in prompt_list:
                run_postprocess_dev(model_name, lm, prompt, data_dir, raw_dir, root, out, batch_size)
                write()
                if beyond:
                    run_postprocess_beyond(model_name, lm, prompt, data_dir, root, out, batch_size, task_list)
                elif not dev_only:
                    run_postprocess_test(model_name, lm, prompt, data_dir, raw_dir, root, out, batch_size)
                write()
    elif beyond and not only_markdown:
        _run_beyond(model_list, prompt_list, beyond_data, out, batch_size, dtype, device, task_list, write)
    elif not only_markdown:
        data_dir, raw_dir = find_data_dir(data), find_raw_stsb_dir(raw_data)
        report_steps.run(
            model_list,
            prompt_list,
            data_dir,
            raw_dir,
            out,
            batch_size,
            progress=write,
            dtype=dtype,
            device=device,
            dev_only=dev_only,
        )
    write()


def _on_page(out: Path, models: list[str], prompts: list[str]) -> tuple[list[str], list[str]]:
    """The models and prompts the page shows: those asked for and every built-in one with results, so a
    run of one model or prompt does not drop the others from the page."""
    from cpembed.models import BUILTIN_MODELS
    from cpembed.prompts import PROMPTS

    folders = [p for p in out.glob("*/*") if p.is_dir()]  # <results>/<model>/<prompt>
    with_results = {p.parent.name for p in folders} | {p.name for p in folders}
    page_models = [m for m in BUILTIN_MODELS if m in models or m in with_results]
    page_prompts = [p for p in PROMPTS if p in prompts or p in with_results]
    page_models += [m for m in models if m not in BUILTIN_MODELS]
    page_prompts += [p for p in prompts if p not in PROMPTS]
    return page_models, page_prompts


def _run_beyond(models, prompts, data, out, batch_size, dtype, device, tasks, write) -> None:
    """The beyond-STS section, the baselines first (MiniLM: minutes), then each model and prompt."""
    from cpembed.evaluation.beyond import find_beyond_dir

    from .baselines import MiniLMEncoder
    from .beyond_steps import run_beyond, run_minilm

    root = find_beyond_dir(data)
    run_minilm(MiniLMEncoder(), root, out, tasks)
    for model_name in models:
        lm = report_model(model_name, dtype, device)
        for prompt in prompts:
            run_beyond(model_name, lm, prompt, root, out, batch_size, tasks)
            write()


def report_model(name: str, dtype: str, device: str | None):
    """A model for the report, never compiled: the report's numbers are the eager engine's, and a
    compiled bfloat16 model rounds differently (cosine 0.9993 or more to eager)."""
    from cpembed.compiled import keep_eager
    from cpembed.models import load_model

    return keep_eager(load_model(name, dtype=dtype, device=device))


if __name__ == "__main__":
    report()
