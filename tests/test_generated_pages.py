"""The generated pages are what their commands write from the committed result files, byte for byte.

docs/PERFORMANCE.md is drawn by benchmarks/performance.py from docs/performance/; docs/RESULTS.md
by experiments/results_page.py from docs/results/. Both are drawn again here into a temporary
folder: no model, no evaluation data.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))  # the scripts import their shared modules by name

from performance import render_markdown, sections  # noqa: E402


def _first_difference(expected: str, actual: str) -> str:
    for number, (want, got) in enumerate(zip(expected.splitlines(), actual.splitlines(), strict=False), 1):
        if want != got:
            return f"line {number}:\n  committed:   {want!r}\n  regenerated: {got!r}"
    return f"committed {len(expected.splitlines())} lines, regenerated {len(actual.splitlines())}"


def test_performance_page_is_what_its_command_writes(tmp_path):
    shutil.copytree(REPO / "docs" / "performance", tmp_path / "docs" / "performance")
    regenerated = render_markdown(tmp_path / "docs" / "PERFORMANCE.md").read_bytes()
    committed = (REPO / "docs" / "PERFORMANCE.md").read_bytes()
    assert regenerated == committed, (
        "docs/PERFORMANCE.md differs from what `python benchmarks/performance.py` writes from "
        "docs/performance/ (edit docs/performance/NOTES.md or the generator, not the page, then run it); "
        + _first_difference(committed.decode(), regenerated.decode())
    )


def test_every_kept_measurement_has_a_section():
    folder = REPO / "docs" / "performance"
    drawn = {name for name, _ in sections(folder)}
    assert sorted(f.name for f in folder.glob("*.json") if f.name not in drawn) == [], (
        "a JSON in docs/performance/ that benchmarks/performance.py does not draw: add it to `sections`"
    )


# The page's machine line describes the machine that draws it (and the tests pin torch's threads),
# not the one that ran the steps: it is the one line not compared.
MACHINE_LINE = re.compile(r"^Machine: .*$", re.MULTILINE)


def test_results_page_is_what_its_command_writes(tmp_path, monkeypatch):
    from experiments import results_page
    from experiments.__main__ import _on_page, report

    from cpembed.evaluation import plots

    # The page names its folders as `make results` does, relative to the checkout's root.
    shutil.copytree(REPO / "docs" / "results", tmp_path / "docs" / "results")
    shutil.copytree(REPO / "docs" / "performance", tmp_path / "docs" / "performance")  # the recipes' costs
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(plots, "controls_plot", lambda panels, path, *args, **kwargs: path)  # figures: not compared
    out, page = Path("docs/results"), Path("docs/RESULTS.md")
    defaults = {option.name: option.default for option in report.params}  # the command's own
    models, prompts = defaults["models"].split(","), defaults["prompts"].split(",")
    results_page.write_markdown(out, page, *_on_page(out, models, prompts), "make results")

    regenerated, committed = page.read_bytes().decode(), (REPO / "docs" / "RESULTS.md").read_bytes().decode()
    assert len(MACHINE_LINE.findall(committed)) == len(MACHINE_LINE.findall(regenerated)) == 1
    regenerated = MACHINE_LINE.sub(MACHINE_LINE.search(committed).group(0), regenerated)
    assert regenerated == committed, (
        "docs/RESULTS.md differs from what `python -m experiments --only-markdown` writes from "
        "docs/results/ (edit docs/results/NOTES.md or the generator, not the page, then run it); "
        + _first_difference(committed, regenerated)
    )


def test_readme_jobs_table_is_what_the_report_writes():
    from experiments import jobs_table

    readme = (REPO / "README.md").read_text()
    assert jobs_table.BEGIN in readme and jobs_table.END in readme, "the README lost its jobs table markers"
    committed = readme[readme.index(jobs_table.BEGIN) : readme.index(jobs_table.END) + len(jobs_table.END)]
    regenerated = jobs_table.block(REPO / "docs" / "results", REPO / "docs" / "performance")
    assert committed == regenerated, (
        "README.md's jobs table differs from what `python -m experiments --only-markdown` writes from "
        "docs/results/ (run it); " + _first_difference(committed, regenerated)
    )


def test_the_jobs_table_quotes_only_recipes_shipped_now(monkeypatch):
    from experiments import jobs_table

    from cpembed.config import MODEL_RECIPES

    out = REPO / "docs" / "results"
    cells = jobs_table.model_cells(out, "smollm2-135m")
    assert {c.recipe for c in cells["sts"]} == {"plain PromptEOL", "best", "fast"}
    changed = dataclasses.replace(MODEL_RECIPES["smollm2-135m"]["best"], about="another recipe; 1.00x")
    monkeypatch.setitem(MODEL_RECIPES, "smollm2-135m", MODEL_RECIPES["smollm2-135m"] | {"best": changed})
    assert "best" not in {c.recipe for c in jobs_table.model_cells(out, "smollm2-135m")["sts"]}


def test_a_job_recipe_is_a_candidate_only_on_its_own_job_and_only_as_shipped_now(monkeypatch):
    from experiments import jobs_table
    from experiments.beyond_steps import JOB_TASKS

    from cpembed.config import MODEL_RECIPES

    out = REPO / "docs" / "results"
    tested = {p.stem for p in (out / "smollm2-135m" / "jobs-test").glob("*.json")}
    assert tested, "no job recipe of the default model has been scored (python -m experiments --job-recipes)"
    cells = jobs_table.model_cells(out, "smollm2-135m")
    for name, job in JOB_TASKS.items():
        found = {c.recipe for c in cells.get(job, [])}
        assert (name in found) == (name in tested), name
        assert not found & (set(JOB_TASKS) - {name}), f"another job's recipe is a candidate for {job}"
    name = sorted(tested)[0]
    changed = dataclasses.replace(MODEL_RECIPES["smollm2-135m"][name], about="another recipe")
    monkeypatch.setitem(MODEL_RECIPES, "smollm2-135m", MODEL_RECIPES["smollm2-135m"] | {name: changed})
    assert name not in {c.recipe for c in jobs_table.model_cells(out, "smollm2-135m")[JOB_TASKS[name]]}
