"""The report pipeline on a tiny model and fixture data: steps are cached, the Markdown is honest."""

from __future__ import annotations

import itertools
import json
import shutil
import zlib

import numpy as np
import pytest
from experiments import report_steps as report
from experiments import results_page as report_page

from cpembed.evaluation.search import score_settings
from senteval_fixture import write_raw_stsb, write_senteval

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Long steps keep their parts under the cache folder: a test's, not the user's."""
    monkeypatch.setenv("CPEMBED_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_report_runs_resumes_and_lists_what_is_missing(tiny_lm, tmp_path, monkeypatch, own_cache):
    data = write_senteval(tmp_path / "downstream")
    raw = write_raw_stsb(tmp_path / "raw")
    out = tmp_path / "results"
    report.run_model_prompt("tiny", tiny_lm, "prompteol", data, raw, out, batch_size=4)
    sts = json.loads((out / "tiny" / "prompteol" / "sts.json").read_text())
    settings = [row["setting"] for row in sts["rows"]]
    assert settings[0] == "baseline" and settings[1].startswith("NS") and settings[2].startswith("NR")
    assert len(settings) == len(set(settings)) in (3, 4)  # the default is added when it is another setting
    assert (out / "tiny" / "prompteol" / "grid.png").is_file()

    # A second run reuses both steps instead of computing them again.
    monkeypatch.setattr(report, "evaluate_sts_settings", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    report.run_model_prompt("tiny", tiny_lm, "prompteol", data, raw, out, batch_size=4)

    markdown = tmp_path / "RESULTS.md"
    (out / "NOTES.md").write_text("Timings were taken on a shared machine.\n")
    report_page.write_markdown(out, markdown, ["tiny"], ["prompteol", "cot"], "make results")
    text = markdown.read_text()
    assert "Timings were taken on a shared machine." in text
    assert "## tiny, prompteol" in text and "| baseline |" in text and "paper, LLaMA2-7B" in text
    assert "- tiny / cot: search and evaluation" in text and "- all-MiniLM-L6-v2" in text
    assert "- tiny / prompteol: transfer tasks" in text
    glance = text.split("## At a glance")[1].split("\n## ")[0]
    assert "| tiny | prompteol |" in glance and "| tiny | cot |" not in glance  # cot has not run
    assert f"{sts['rows'][0]['report']['average']:.2f} -> " in glance


def test_interrupted_sts_evaluation_resumes_at_its_task(tiny_lm, tmp_path, monkeypatch):
    data = write_senteval(tmp_path / "downstream")
    raw = write_raw_stsb(tmp_path / "raw")
    out = tmp_path / "results"
    report.run_model_prompt("tiny", tiny_lm, "prompteol", data, raw, out, batch_size=4)
    folder = out / "tiny" / "prompteol"
    finished = json.loads((folder / "sts.json").read_text())
    # As if the run had stopped during STS13: the finished tasks stay, the rest is computed.
    (folder / "sts.json").unlink()
    (folder / "sts-tasks" / "STS13.json").unlink()
    evaluated = []
    real = report.evaluate_sts_settings

    def recording(encoder, settings, tasks, *args, **kwargs):
        evaluated.extend(tasks)
        return real(encoder, settings, tasks, *args, **kwargs)

    monkeypatch.setattr(report, "evaluate_sts_settings", recording)
    report.run_model_prompt("tiny", tiny_lm, "prompteol", data, raw, out, batch_size=4)
    assert evaluated == ["STS13"]
    resumed = json.loads((folder / "sts.json").read_text())
    for before, after in zip(finished["rows"], resumed["rows"], strict=True):
        assert before["setting"] == after["setting"]
        assert abs(before["report"]["average"] - after["report"]["average"]) < 1e-6


def test_report_extras(tiny_lm, tmp_path):
    from senteval_fixture import write_transfer

    data = write_transfer(write_senteval(tmp_path / "downstream"))
    raw = write_raw_stsb(tmp_path / "raw")
    out = tmp_path / "results"
    folder = out / "tiny" / "prompteol"
    report.run_extras("tiny", tiny_lm, data, raw, out, batch_size=4, transfer=False)  # the dev parts, run first
    assert (folder / "layers.json").is_file() and (folder / "aux.json").is_file()
    assert not (folder / "transfer.json").exists()
    markdown = tmp_path / "RESULTS.md"
    (folder / "layers_raw.json").rename(tmp_path / "layers_raw.json")  # a report from before that step
    report_page.write_markdown(out, markdown, ["tiny"], ["prompteol"], "make results")
    assert "- tiny / prompteol: the layer sweep's best layers on raw STS-B dev" in markdown.read_text()
    (tmp_path / "layers_raw.json").rename(folder / "layers_raw.json")
    # The sweep's best layers on raw dev, each CP row with its interval against the baseline.
    on_raw = json.loads((folder / "layers_raw.json").read_text())
    sweep = json.loads((folder / "layers.json").read_text())["records"]
    best = sorted(sweep[1:], key=lambda r: -r["spearman"])[: report.SWEEP_TOP]
    assert [r["label"] for r in on_raw["records"]] == ["baseline", *(r["label"] for r in best)]
    assert all(r["low"] <= r["difference"] <= r["high"] for r in on_raw["records"][1:])
    report.run_extras("tiny", tiny_lm, data, raw, out, batch_size=4, transfer_tasks=["MRPC"], inner_folds=3)
    assert (folder / "transfer.json").is_file()
    part = json.loads((out / "tiny" / "prompteol" / "transfer-tasks" / "MRPC.json").read_text())
    assert part["settings"][0] == "baseline" and len(part["results"]) == 2  # kept per task, for resuming
    report_page.write_markdown(out, markdown, ["tiny"], ["prompteol"], "make results")
    text = markdown.read_text()
    assert "- tiny / prompteol: the layer sweep's best layers" not in text
    last = on_raw["records"][-1]
    assert f"| {last['spearman']:.2f} | {last['difference']:+.2f} [{last['low']:+.2f}, {last['high']:+.2f}] |" in text
    assert "CP at every layer" in text and "| irrelevant |" in text and "| MRPC | avg | MRPC F1 |" in text
    base, cp = (row["report"]["tasks"]["MRPC"] for row in json.loads((folder / "transfer.json").read_text())["rows"])
    low, high = cp["interval_vs_baseline"]
    difference = f"| CP - baseline | {cp['accuracy'] - base['accuracy']:+.2f} [{low:+.2f}, {high:+.2f}] |"
    assert difference in text and f"| **{base['accuracy']:.2f}** | {base['f1']:.2f} |" in text


def _records(baseline: float, ns: float, nr: float) -> list[dict]:
    return [
        {"label": "baseline", "spearman": baseline, "norm": "none", "layer": None, "alpha": None},
        {"label": "NS l=5 a=2", "spearman": ns, "norm": "scale", "layer": 5, "alpha": 2.0},
        {"label": "NR l=5", "spearman": nr, "norm": "recover", "layer": 5, "alpha": 1.0},
    ]


def test_choose_ranks_by_the_mean_and_ships_only_what_helps_raw_text():
    from cpembed import CPConfig

    senteval = _records(70.0, 72.0, 71.0)
    helps = report.choose(senteval, _records(80.0, 79.0, 81.0))  # means 75, 75.5, 76
    assert helps["scale"] == CPConfig(5, 2.0) and helps["default"] == CPConfig(5, 1.0, "recover")
    # NS has the best mean (75.6) but loses on raw dev; NR is shipped: it helps both.
    mixed = report.choose(_records(70.0, 73.2, 70.6), _records(80.0, 78.0, 80.2))
    assert mixed["scale"] == CPConfig(5, 2.0) and mixed["default"] == CPConfig(5, 1.0, "recover")
    lowercase_only = report.choose(senteval, _records(80.0, 78.0, 79.5))  # no setting helps raw dev
    assert lowercase_only["default"] is None
    assert report.choose(senteval, None)["default"] == CPConfig(5, 2.0)  # SentEval dev alone


def test_report_shows_raw_dev_controls_and_defaults(tiny_lm, tmp_path):
    data = write_senteval(tmp_path / "downstream")
    raw = write_raw_stsb(tmp_path / "raw")
    out = tmp_path / "results"
    report.run_model_prompt("tiny", tiny_lm, "prompteol", data, raw, out, batch_size=4, evaluate=False)
    folder = out / "tiny" / "prompteol"
    labels = [r["label"] for r in json.loads((folder / "controls.json").read_text())["records"]]
    assert "zero l=" in " ".join(labels) and len(labels) == 9
    assert not (folder / "sts.json").exists()  # the search phase evaluates nothing on test splits
    markdown = tmp_path / "RESULTS.md"
    report_page.write_markdown(out, markdown, ["tiny"], ["prompteol"], "make results")
    text = markdown.read_text()
    assert "Raw STS-B dev, same grid" in text and "Is it the contrast?" in text
    assert "## Defaults this rule gives" in text and "| tiny | prompteol |" in text
    assert "## tiny: is it the contrast?" in text and (out / "tiny" / "controls.png").stat().st_size > 1000
    # The same controls on raw dev: the same rows, each CP or control row with its interval, in the table.
    raw_controls = json.loads((folder / "controls_raw.json").read_text())
    assert [r["label"] for r in raw_controls["records"]] == labels and raw_controls["split"] == "STS-B raw dev"
    raw_base = raw_controls["records"][0]
    assert raw_base["label"] == "baseline" and raw_base["difference"] == 0.0 and "low" not in raw_base
    for record in raw_controls["records"][1:]:
        assert record["difference"] == pytest.approx(record["spearman"] - raw_base["spearman"], abs=1e-3)
        assert record["low"] <= record["high"]
        shown = f"{record['difference']:+.2f} [{record['low']:+.2f}, {record['high']:+.2f}]"
        assert f"| {record['spearman']:.2f} | {shown} |" in text
    # Each control against CP with the sentence's own vector, of its norm: a difference of two raw scores.
    raw_score = {r["label"]: r["spearman"] for r in raw_controls["records"]}
    cp_rows = [r for r in raw_controls["records"] if r["norm"] != "none" and "intervention" not in r]
    assert [r["norm"] for r in cp_rows] == ["scale", "recover"] and all("vs_cp" not in r for r in cp_rows)
    for record in raw_controls["records"]:
        if "intervention" not in record:  # the baseline and CP rows
            continue
        cp = cp_rows[1] if record["norm"] == "recover" else cp_rows[0]
        assert record["vs_cp"] == pytest.approx(raw_score[record["label"]] - raw_score[cp["label"]], abs=1e-3)
        assert record["vs_cp_low"] <= record["vs_cp_high"]
        assert f"| {record['vs_cp']:+.2f} [{record['vs_cp_low']:+.2f}, {record['vs_cp_high']:+.2f}] |" in text
    import matplotlib.image

    figure_height = matplotlib.image.imread(out / "tiny" / "controls.png").shape[0]
    assert figure_height == 2 * 432  # two rows of panels: SentEval dev, then raw dev (3.6 in at 120 dpi each)
    assert "bottom row: raw STS-B dev" in text and "controls on raw STS-B dev" not in text
    (folder / "controls_raw.json").unlink()  # a report from before this step still renders, and says so
    report_page.write_markdown(out, markdown, ["tiny"], ["prompteol"], "make results")
    text = markdown.read_text()
    assert "- tiny / prompteol: controls on raw STS-B dev" in text and "| — | — | — |" in text
    # The chosen rows on raw dev, each with its interval; their scores are the raw grid's.
    intervals = json.loads((folder / "intervals_raw.json").read_text())
    assert intervals["source"] == "grid_raw.json"  # the raw grid's own similarities, no second encoding
    raw_grid = {r["label"]: r["spearman"] for r in json.loads((folder / "grid_raw.json").read_text())["records"]}
    assert intervals["records"][0] == {"label": "baseline", "spearman": raw_grid["baseline"], "difference": 0.0}
    for record in intervals["records"][1:]:
        assert record["spearman"] == pytest.approx(raw_grid[record["label"]], abs=1e-3)
        assert record["low"] <= record["difference"] <= record["high"]
        shown = f"{record['difference']:+.2f} [{record['low']:+.2f}, {record['high']:+.2f}]"
        assert f"| {shown} |" in text
    default = report.choose(
        json.loads((folder / "grid.json").read_text())["records"],
        json.loads((folder / "grid_raw.json").read_text())["records"],
    )["default"]
    glance = text.split("## At a glance")[1].split("\n## ")[0]
    if default is None:  # the tiny llama: nothing helps raw dev
        assert "| no CP |" in glance
    else:  # the tiny qwen2: the default's interval stands beside it
        record = next(r for r in intervals["records"] if r["label"] == report.label(default))
        assert f"{report.label(default)}: raw dev {record['difference']:+.2f} [" in glance


def test_intervals_copied_from_the_raw_grid_equal_a_second_encoding(tiny_lm, tmp_path, monkeypatch):
    """Raw grids written before they kept intervals get them by encoding the chosen rows again;
    both ways must give the same numbers."""
    from cpembed import CPEncoder

    raw = write_raw_stsb(tmp_path / "raw")
    folder = tmp_path / "results"
    encoder = CPEncoder(tiny_lm, recipe=None)
    raw_grid = report._raw_grid_step(encoder, raw, folder, 4)
    assert all(("low" in r) == (r["norm"] != "none") for r in raw_grid)
    chosen = [None, report._config(raw_grid[3]), report._config(raw_grid[-1])]
    copied = report._intervals_step(encoder, raw, folder, chosen, raw_grid, 4)

    (folder / "intervals_raw.json").unlink()
    old_grid = [{k: v for k, v in r.items() if k not in ("low", "high", "difference")} for r in raw_grid]
    encodings = []
    monkeypatch.setattr(report, "score_settings", lambda *a, **k: encodings.append(1) or score_settings(*a, **k))
    again = report._intervals_step(encoder, raw, folder, chosen, old_grid, 4)
    assert copied["source"] == "grid_raw.json" and again["source"] == "encoded again" and encodings == [1]
    assert [r["label"] for r in copied["records"]] == [r["label"] for r in again["records"]]
    for mine, theirs in zip(copied["records"], again["records"], strict=True):
        assert mine.keys() == theirs.keys()
        assert all(mine[k] == pytest.approx(theirs[k], abs=1e-3) for k in mine if k != "label")


def test_a_stopped_step_resumes_its_encoding(tiny_lm, tmp_path, monkeypatch, own_cache):
    from cpembed import CPEncoder, cache

    data = write_senteval(tmp_path / "downstream")
    folder = tmp_path / "results" / "tiny" / "prompteol"
    monkeypatch.setattr(cache, "CHUNK_SENTENCES", 1)  # the fixture's dev split has 6 sentences
    real, calls = CPEncoder.encode_settings, []

    def killed_on_third_chunk(*args, **kwargs):
        if kwargs.get("cache") is not None:  # the call that reads the cache, then computes chunk by chunk
            return real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(CPEncoder, "encode_settings", killed_on_third_chunk)
    encoder = CPEncoder(tiny_lm, recipe=None)
    with pytest.raises(KeyboardInterrupt):  # the interrupt reaches the caller: nothing swallows it
        report._grid_step("tiny", encoder, data, folder, 4)
    assert len(calls) == 3 and not (folder / "grid.json").exists()

    calls.clear()
    monkeypatch.setattr(
        CPEncoder, "encode_settings", lambda *a, **k: (k.get("cache") is None and calls.append(1)) or real(*a, **k)
    )
    report._grid_step("tiny", encoder, data, folder, 4)
    dev = report.load_stsb(data, "dev")
    chunks = len(set(dev.sentences1 + dev.sentences2))  # one sentence per chunk
    assert len(calls) == chunks - 2  # the two chunks the stopped run finished were read from the cache
    assert json.loads((folder / "grid.json").read_text())["seconds"] > 0


def test_the_report_command_rewrites_the_markdown_as_it_goes(tmp_path, monkeypatch):
    """A long run stopped after its first model and prompt leaves a report of what it finished."""
    from click.testing import CliRunner
    from experiments.__main__ import report as main

    data = write_senteval(tmp_path / "downstream")
    raw = write_raw_stsb(tmp_path / "raw")
    markdown = tmp_path / "RESULTS.md"

    def first_step_then_stopped(*args, progress, dtype, device, **kwargs):
        assert (dtype, device) == ("bfloat16", "cpu")  # float32 unless asked
        progress()
        assert markdown.is_file()
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "run", first_step_then_stopped)
    options = [
        "--data",
        str(data),
        "--raw-data",
        str(raw),
        "--results",
        str(tmp_path / "r"),
        "--markdown",
        str(markdown),
    ]
    options += ["--dtype", "bfloat16", "--device", "cpu"]
    result = CliRunner().invoke(main, ["--models", "tiny", "--prompts", "prompteol", *options])
    assert result.exit_code == 1 and "Aborted" in result.output  # click's answer to an interrupt
    assert "- tiny / prompteol: search and evaluation" in markdown.read_text()


def test_dev_only_reaches_the_run_and_refuses_the_test_split_modes(tmp_path, monkeypatch):
    from click.testing import CliRunner
    from experiments.__main__ import report as main

    seen = []
    monkeypatch.setattr(report, "run", lambda *a, dev_only, **k: seen.append(dev_only))
    data, raw = write_senteval(tmp_path / "downstream"), write_raw_stsb(tmp_path / "raw")
    options = ["--data", str(data), "--raw-data", str(raw)]
    options += ["--results", str(tmp_path / "r"), "--markdown", str(tmp_path / "RESULTS.md"), "--models", "tiny"]
    assert CliRunner().invoke(main, [*options, "--dev-only"]).exit_code == 0
    assert CliRunner().invoke(main, options).exit_code == 0
    assert seen == [True, False]
    refused = CliRunner().invoke(main, [*options, "--dev-only", "--recipes"])
    assert refused.exit_code == 2 and "run --explain, --tp, --recipes or --beyond without it" in refused.output
    assert seen == [True, False]


def test_alphas_beyond_the_grid_run_only_at_its_edge_and_agree_with_it(tiny_lm, tmp_path, monkeypatch):
    data = write_senteval(tmp_path / "downstream")
    raw = write_raw_stsb(tmp_path / "raw")
    out = tmp_path / "results"
    folder = out / "tiny" / "prompteol"
    markdown = tmp_path / "RESULTS.md"
    for module in (report, report_page):  # the steps and the page ask the same question
        monkeypatch.setattr(module, "at_the_grid_edge", lambda choice: False)  # nothing to run, nothing missing
    report.run_model_prompt("tiny", tiny_lm, "prompteol", data, raw, out, batch_size=4, evaluate=False)
    report_page.write_markdown(out, markdown, ["tiny"], ["prompteol"], "make results")
    assert not (folder / "alpha_beyond.json").exists() and "beyond the grid" not in markdown.read_text().lower()

    for module in (report, report_page):
        monkeypatch.setattr(module, "at_the_grid_edge", lambda choice: True)
    report_page.write_markdown(out, markdown, ["tiny"], ["prompteol"], "make results")
    assert "- tiny / prompteol: NS alphas beyond the grid" in markdown.read_text()
    report.run_model_prompt("tiny", tiny_lm, "prompteol", data, raw, out, batch_size=4, evaluate=False)
    step = json.loads((folder / "alpha_beyond.json").read_text())
    grid = json.loads((folder / "grid.json").read_text())["records"]
    raw_grid = json.loads((folder / "grid_raw.json").read_text())["records"]
    layer = report.choose(grid, raw_grid)["scale"].layer
    labels = [r["label"] for r in step["records"]]
    assert step["layer"] == layer and labels == ["baseline", *(f"NS l={layer} a={a:g}" for a in report.BEYOND_ALPHAS)]
    # Its baseline and alpha=4 rows are the grid's own settings, scored again in another pass.
    on_grid, on_raw_grid = {r["label"]: r for r in grid}, {r["label"]: r for r in raw_grid}
    for record in step["records"][:2]:
        assert record["STS-B dev"] == pytest.approx(on_grid[record["label"]]["spearman"], abs=1e-3)
        assert record["STS-B raw dev"] == pytest.approx(on_raw_grid[record["label"]]["spearman"], abs=1e-3)
        assert record["spearman"] == pytest.approx((record["STS-B dev"] + record["STS-B raw dev"]) / 2, abs=1e-3)
    # Each alpha past the grid against the grid's alpha=4 on raw dev, with its interval.
    assert all("vs_edge" not in r for r in step["records"][:2])
    for record in step["records"][2:]:
        expected = record["STS-B raw dev"] - step["records"][1]["STS-B raw dev"]
        assert record["vs_edge"] == pytest.approx(expected, abs=1e-3)
        assert record["vs_edge_low"] <= record["vs_edge"] <= record["vs_edge_high"]
    report_page.write_markdown(out, markdown, ["tiny"], ["prompteol"], "make results")
    text = markdown.read_text()
    assert "NS alphas beyond the grid" not in text and f"so NS l={layer} with larger alphas" in text
    last = step["records"][-1]
    shown = f"{last['vs_edge']:+.2f} [{last['vs_edge_low']:+.2f}, {last['vs_edge_high']:+.2f}]"
    assert f"| {last['label']} | {last['STS-B dev']:.2f} | {last['STS-B raw dev']:.2f} |" in text and shown in text


def test_the_report_reads_every_dev_split_first_and_a_models_sts_before_its_transfer(
    tiny_models, tmp_path, monkeypatch
):
    """A real run of two tiny models, the data files it opens recorded in order with the step each
    is opened for: the choices read STS-B dev (SentEval's and raw) and nothing else, every one of
    them before any test split; the test splits are read only by the evaluation steps, one model's
    after the other's, each model's STS before its transfer tasks. `dev_only` opens no test split."""
    from experiments import baselines

    from cpembed.evaluation import data as data_module
    from senteval_fixture import write_transfer

    data = write_transfer(write_senteval(tmp_path / "downstream"))
    raw = write_raw_stsb(tmp_path / "raw")
    events = []  # ("step", results path) when a step starts computing; ("read", data path)
    real_read, real_step, real_extras = data_module._read_lines, report._step, report.run_extras

    def reading(path, *args):
        events.append(("read", path.relative_to(tmp_path).as_posix()))
        return real_read(path, *args)

    def step(path, compute):
        if not path.is_file():
            events.append(("step", path.relative_to(tmp_path).as_posix()))
        return real_step(path, compute)

    class MiniLM:  # a stand-in for the baseline: a vector of its own for each sentence
        def encode(self, sentences: list[str], batch_size: int = 64) -> np.ndarray:
            return np.stack([np.random.default_rng(zlib.crc32(s.encode())).normal(size=8) for s in sentences])

    monkeypatch.setattr(data_module, "_read_lines", reading)
    monkeypatch.setattr(report, "_step", step)
    monkeypatch.setattr(baselines, "MiniLMEncoder", MiniLM)
    monkeypatch.setattr(
        report, "load_model", lambda name, **kw: tiny_models[{"small": "llama", "large": "qwen2"}[name]]
    )
    monkeypatch.setattr(
        report, "run_extras", lambda *a, **k: real_extras(*a, **k, transfer_tasks=["MRPC"], inner_folds=3)
    )

    def reads(out: str, *args, **kwargs) -> list[tuple[str, str]]:
        """Each data file read, with the step (results path) it was read for."""
        events.clear()
        report.run(*args, data, raw, tmp_path / out, batch_size=8, **kwargs)
        found, current = [], None
        for kind, path in events:
            if kind == "step":
                current = path
            else:
                found.append((path, current))
        return found

    dev_files = {"downstream/STS/STSBenchmark/sts-dev.csv", "raw/sts-dev.csv"}

    def evaluation(step: str) -> tuple[str, str] | None:
        """("small/prompteol", "sts") for a step of an evaluation on test splits, else None."""
        if step.endswith("/all-MiniLM-L6-v2/sts.json"):
            return "all-MiniLM-L6-v2", "sts"
        for kind in ("sts", "transfer"):
            if f"/{kind}-tasks/" in step:
                return step.split("/", 1)[1].split(f"/{kind}-tasks/")[0], kind
        return None

    opened = reads("full", ["small", "large"], ["prompteol", "cot"])
    is_dev = [path in dev_files for path, _ in opened]
    first_test = is_dev.index(False)
    assert first_test > 0 and not any(is_dev[first_test:])  # every dev read before any other
    assert {path for path, _ in opened[:first_test]} == dev_files
    assert all(evaluation(step) is None for _, step in opened[:first_test])  # the choices read dev alone
    assert all(evaluation(step) is not None for _, step in opened[first_test:])
    tests = {path for path, _ in opened[first_test:]}
    assert {
        "downstream/STS/STS12-en-test/STS.input.MSRpar.txt",
        "downstream/STS/STSBenchmark/sts-test.csv",
        "downstream/SICK/SICK_test_annotated.txt",
        "raw/sts-test.csv",
        "downstream/MRPC/msr_paraphrase_test.txt",
    } <= tests
    steps = [key for key, _ in itertools.groupby(evaluation(step) for _, step in opened[first_test:])]
    assert steps == [
        ("all-MiniLM-L6-v2", "sts"),  # the baseline to compare with, before the models' evaluations
        ("small/prompteol", "sts"),
        ("small/cot", "sts"),
        ("small/prompteol", "transfer"),
        ("large/prompteol", "sts"),
        ("large/cot", "sts"),
        ("large/prompteol", "transfer"),
    ]

    assert {path for path, _ in reads("dev-only", ["small"], ["prompteol", "cot"], dev_only=True)} == dev_files
    no_prompteol = reads("cot-only", ["small"], ["cot"])  # no PromptEOL: no sweep, no transfer tasks
    assert {step.split("/")[2] for _, step in no_prompteol if "MiniLM" not in step} == {"cot"}
    assert {evaluation(step) for _, step in no_prompteol} == {None, ("all-MiniLM-L6-v2", "sts"), ("small/cot", "sts")}


def test_beyond_sts_steps_run_resume_and_render(tiny_lm, tmp_path, monkeypatch, own_cache):
    """Baseline and the default CP from one pass per task, each CP row with its interval; a second run
    computes nothing; the page gains the section, and only test splits are read."""
    from experiments import beyond_steps

    from beyond_fixture import write_beyond
    from cpembed import CPConfig
    from cpembed.evaluation import beyond

    root = write_beyond(tmp_path / "beyond")
    out = tmp_path / "results"
    monkeypatch.setattr(beyond_steps, "default_cp", lambda model, prompt: CPConfig(layer=3, alpha=2.0))
    splits = []
    for name in ("load_scifact", "load_wikiqa", "load_stsb_multi"):
        real = getattr(beyond, name)
        monkeypatch.setattr(beyond, name, lambda *a, real=real: splits.append(a[-1]) or real(*a))
    beyond_steps.run_beyond("tiny", tiny_lm, "prompteol", root, out, batch_size=4)
    assert set(splits) == {"test"}  # the section reports test splits and chooses nothing on them
    folder = out / "tiny" / "prompteol" / "beyond"
    assert sorted(p.stem for p in folder.glob("*.json")) == sorted(beyond_steps.TASKS)
    rerank = json.loads((folder / "rerank.json").read_text())
    base, cp = rerank["rows"]
    assert base["setting"] == "baseline" and cp["setting"] == "NS l=3 a=2"
    assert cp["MAP low"] <= cp["MAP vs baseline"] <= cp["MAP high"]
    multilingual = json.loads((folder / "sts-multilingual.json").read_text())
    assert {r["language"] for r in multilingual["translated"]} == {"de", "zh"}
    base, cp = multilingual["rows"]
    assert "mean low" not in base and cp["mean low"] <= cp["mean"] - base["mean"] <= cp["mean high"]
    assert all(cp[f"{lang} low"] <= cp[lang] - base[lang] <= cp[f"{lang} high"] for lang in beyond.LANGUAGES)
    assert all("low" in r for r in multilingual["translated"] if r["setting"] != "baseline")

    monkeypatch.setattr(beyond_steps, "encode_with_controls", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    beyond_steps.run_beyond("tiny", tiny_lm, "prompteol", root, out, batch_size=4)  # every step is kept
    markdown = tmp_path / "RESULTS.md"
    report_page.write_markdown(out, markdown, ["tiny"], ["prompteol", "cot"], "make results")
    text = markdown.read_text()
    assert "## Beyond STS" in text and "| tiny, prompteol | NS l=3 a=2 |" in text
    assert "- tiny / cot: beyond-STS" in text and "STS in 11 languages" in text
    assert f"{cp['mean'] - base['mean']:+.2f} [{cp['mean low']:+.2f}, {cp['mean high']:+.2f}]" in text


def test_tp_dev_step_runs_once_reads_dev_splits_only_and_renders(tiny_lm, tmp_path, monkeypatch, own_cache):
    from experiments import tp_steps

    from cpembed import CPConfig, CPEncoder, TPConfig
    from cpembed.evaluation.data import load_raw_stsb
    from cpembed.evaluation.metrics import paired_cosine, spearman

    data, raw = write_senteval(tmp_path / "downstream"), write_raw_stsb(tmp_path / "raw")
    out = tmp_path / "results"
    monkeypatch.setattr(tp_steps, "default_cp", lambda model, prompt: CPConfig(layer=3, alpha=2.0))
    monkeypatch.setattr(tp_steps, "TP_RANGES", ("2-3", "2-7"))  # the tiny model has 6 layers: 2-7 is refused
    splits = []
    for name in ("load_stsb", "load_raw_stsb"):
        real = getattr(tp_steps, name)
        monkeypatch.setattr(tp_steps, name, lambda *a, real=real: splits.append(a[-1]) or real(*a))
    with pytest.raises(Exception, match="out of range for a 6-layer model"):
        tp_steps.run_tp("tiny", tiny_lm, "prompteol", data, raw, out, batch_size=4)
    monkeypatch.setattr(tp_steps, "TP_RANGES", ("2-3", "2-4"))
    monkeypatch.setattr(tp_steps, "TP_WITH_CP", "2-3")
    monkeypatch.setattr(tp_steps, "TP_AT_EARLY_OUTPUT", ("2-3",))
    tp_steps.run_tp("tiny", tiny_lm, "prompteol", data, raw, out, batch_size=4)
    assert set(splits) == {"dev"}
    step = json.loads((out / "tiny" / "prompteol" / "tp_dev.json").read_text())
    assert [(r["tp"], r["cp"], r["output_layer"]) for r in step["rows"]] == [
        (None, "baseline", 6),
        (None, "NS l=3 a=2", 6),
        ("2-3", "baseline", 6),
        ("2-3", "NS l=3 a=2", 6),
        ("2-4", "baseline", 6),
        (None, "baseline", 5),  # 27/32 of the 6 layers, where the paper's code reads TP
        ("2-3", "baseline", 5),
    ]
    early = CPEncoder(tiny_lm, "prompteol", cp=None, tp=TPConfig.parse("2-3"), output_layer=5)
    test = load_raw_stsb(raw, "dev")
    expected = 100 * spearman(paired_cosine(early.encode(test.sentences1), early.encode(test.sentences2)), test.scores)
    assert step["rows"][6]["raw STS-B dev"] == pytest.approx(expected, abs=1e-6)
    for row in step["rows"]:
        if row["tp"] or row["cp"] != "baseline":  # against the plain baseline read at the same layer
            plain = next(r for r in step["rows"] if r["output_layer"] == row["output_layer"] and r["tp"] is None)
            gain = row["raw STS-B dev"] - plain["raw STS-B dev"]
            assert row["raw low"] <= gain <= row["raw high"]
    with monkeypatch.context() as patched:
        patched.setattr(CPEncoder, "encode_settings", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
        tp_steps.run_tp("tiny", tiny_lm, "prompteol", data, raw, out, batch_size=4)  # kept, not run again
    monkeypatch.setattr(tp_steps, "TP_RANGES", ("1-3", "2-3", "2-4"))  # a range added later runs the step again
    tp_steps.run_tp("tiny", tiny_lm, "prompteol", data, raw, out, batch_size=4)
    rerun = json.loads((out / "tiny" / "prompteol" / "tp_dev.json").read_text())["rows"]
    assert ("1-3", "baseline") in [(r["tp"], r["cp"]) for r in rerun] and rerun[4] == step["rows"][3]
    markdown = tmp_path / "RESULTS.md"
    report_page.write_markdown(out, markdown, ["tiny"], ["prompteol"], "make results")
    assert "## Token Prepending on the dev splits" in markdown.read_text()


def test_explain_step_measures_stop_word_shares_and_renders(tiny_lm, tmp_path, monkeypatch, own_cache):
    from experiments import explain_steps

    from cpembed import CPConfig

    raw, out = write_raw_stsb(tmp_path / "raw"), tmp_path / "results"
    monkeypatch.setattr(explain_steps, "default_cp", lambda model, prompt: CPConfig(layer=3, alpha=2.0))
    explain_steps.run_explain("tiny", tiny_lm, "prompteol", raw, out, count=6)
    step = json.loads((out / "tiny" / "prompteol" / "explain.json").read_text())
    assert step["sentences"] == 6 and set(step["rows"]) == {"attention", "saliency"}
    for r in step["rows"].values():
        assert 0 <= r["plain"] <= 100 and r["low"] <= r["CP"] - r["plain"] <= r["high"]
    assert (out / "tiny" / "prompteol" / "explain.png").is_file()
    markdown = tmp_path / "RESULTS.md"
    report_page.write_markdown(out, markdown, ["tiny"], ["prompteol"], "make results")
    assert "## Does CP take weight away from stop words?" in markdown.read_text()


def test_recipe_is_chosen_on_dev_then_scored_on_test_with_intervals(tiny_lm, tmp_path, monkeypatch, own_cache):
    from experiments import recipe_steps

    from cpembed import CPConfig, CPEncoder, Recipe, TPConfig
    from cpembed.evaluation.data import load_raw_stsb
    from cpembed.evaluation.metrics import paired_cosine, spearman

    data, raw = write_senteval(tmp_path / "downstream"), write_raw_stsb(tmp_path / "raw")
    out = tmp_path / "results"
    for prompt in ("prompteol", "cot"):
        report.run_model_prompt("tiny", tiny_lm, prompt, data, raw, out, batch_size=4, evaluate=False)
    candidates = recipe_steps.recipe_candidates(out, "tiny", ("prompteol", "cot", "knowledge"))
    assert {c["prompt"] for c in candidates} == {"prompteol", "cot"}  # knowledge has not run
    chosen = recipe_steps.choose_recipe(candidates)
    plain = next(c for c in candidates if c["prompt"] == "prompteol" and c["cp"] is None)
    assert chosen is plain or (chosen["score"] > plain["score"] and chosen["raw STS-B dev"] > plain["raw STS-B dev"])

    recipe = Recipe("cot", CPConfig(layer=3, alpha=2.0), TPConfig(last=3))  # every part of a recipe at once
    step = recipe_steps.run_recipe_test("tiny", tiny_lm, recipe, data, raw, out, batch_size=4)
    # CP's own gain is measured against the recipe without CP: the same prompt with the same TP
    assert [r["row"] for r in step["rows"]] == ["plain PromptEOL", "cot + TP 2-3", "recipe"]
    test = load_raw_stsb(raw, "test")

    def raw_test_score(encoder):
        return 100 * spearman(
            paired_cosine(encoder.encode(test.sentences1), encoder.encode(test.sentences2)), test.scores
        )

    plain_row, own, row = step["rows"]
    assert row["STSBenchmark-raw"] == pytest.approx(
        raw_test_score(CPEncoder(tiny_lm, "cot", cp=recipe.cp, tp=recipe.tp)), abs=1e-6
    )
    assert own["STSBenchmark-raw"] == pytest.approx(
        raw_test_score(CPEncoder(tiny_lm, "cot", cp=None, tp=recipe.tp)), abs=1e-6
    )
    for key, base in (("vs PromptEOL", plain_row), ("vs its prompt", own)):
        low, high = row[f"raw {key}"]
        assert low <= row["STSBenchmark-raw"] - base["STSBenchmark-raw"] <= high
        low, high = row[f"average {key}"]
        assert low <= row["average"] - base["average"] <= high
    monkeypatch.setattr(CPEncoder, "encode_settings", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    assert recipe_steps.run_recipe_test("tiny", tiny_lm, recipe, data, raw, out, batch_size=4) == step  # kept
    markdown = tmp_path / "RESULTS.md"
    report_page.write_markdown(out, markdown, ["tiny"], ["prompteol", "cot"], "make results")
    text = markdown.read_text().split("## Recipes")[1]
    assert "**tiny: dev splits**" in text and "recipe cot + NS l=3 a=2 + TP 2-3" in text
    assert "- Against cot + TP 2-3 (the recipe without CP): seven-task average" in text
    for offset, side in ((+1.5, "1.50 points behind it"), (-2.0, "2.00 points ahead of it")):
        minilm = out / "all-MiniLM-L6-v2" / "sts.json"
        minilm.parent.mkdir(parents=True, exist_ok=True)
        minilm.write_text(json.dumps({"report": {"average": row["average"] + offset, "tasks": {}}}))
        report_page.write_markdown(out, markdown, ["tiny"], ["prompteol", "cot"], "make results")
        assert side in markdown.read_text().split("## Recipes")[1]


def test_a_searched_auxiliary_prompt_is_a_candidate_only_if_it_beat_the_papers(tmp_path):
    from experiments import recipe_steps

    from cpembed import CPConfig
    from cpembed.prompts import IRRELEVANT

    folder = tmp_path / "m" / "prompteol"
    folder.mkdir(parents=True)
    grid = [  # the paper's auxiliary prompt helps at no setting: no default CP
        {"label": "baseline", "norm": "none", "layer": None, "alpha": None},
        {"label": "NS l=5 a=1", "norm": "scale", "layer": 5, "alpha": 1.0},
        {"label": "NR l=5", "norm": "recover", "layer": 5, "alpha": 1.0},
    ]
    for name in ("grid.json", "grid_raw.json"):
        records = [r | {"spearman": 71.0 if r["norm"] == "none" else 60.0} for r in grid]
        (folder / name).write_text(json.dumps({"records": records}))
    style = 'The style of : "{sentence}" in one word:"'

    def row(template, senteval, raw_dev):
        scores = {"label": "x", "spearman": (senteval + raw_dev) / 2, "STS-B dev": senteval, "STS-B raw dev": raw_dev}
        return scores | {"layer": 5, "alpha": 1.0, "norm": "recover", "site": "heads", "aux_template": template}

    def candidates(paper_raw):
        report = {"grid": [{"label": "baseline"}, row(IRRELEVANT, 72.0, paper_raw), row(style, 73.0, 74.0)]}
        (folder / "aux_prompt.json").write_text(json.dumps(report))
        return recipe_steps.recipe_candidates(tmp_path, "m", ("prompteol",))

    searched = [c for c in candidates(paper_raw=73.0) if c["cp"] is not None]
    assert [(c["cp"], c["raw STS-B dev"], c["score"]) for c in searched] == [
        (CPConfig(5, 1.0, "recover", "heads", style), 74.0, 73.5)
    ]
    chosen = recipe_steps.as_recipe(recipe_steps.choose_recipe(candidates(paper_raw=73.0)))
    assert chosen.cp.aux_template == style and "with aux" in recipe_steps.describe(chosen)
    assert all(c["cp"] is None for c in candidates(paper_raw=74.5))  # worse than the paper's prompt on raw dev


def test_a_run_of_one_model_and_prompt_keeps_the_others_on_the_page(tmp_path):
    from experiments.__main__ import _on_page

    for folder in ("smollm2-135m/cot", "qwen2.5-coder-1.5b/prompteol", "all-MiniLM-L6-v2/beyond"):
        (tmp_path / folder).mkdir(parents=True)
    models, prompts = _on_page(tmp_path, ["qwen2.5-coder-0.5b"], ["prompteol", "my-template"])
    assert models == ["smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]  # built-in order; no baseline
    assert prompts == ["prompteol", "cot", "my-template"]


def test_a_prompteol_recipe_scores_its_plain_rows_alike(tiny_lm, tmp_path, own_cache):
    """A PromptEOL recipe's two plain rows (plain PromptEOL and the recipe without CP) are one
    embedding: they share a pass and match, and CP's gain is measured against it."""
    from experiments import recipe_steps

    from cpembed import CPConfig, Recipe

    data, raw = write_senteval(tmp_path / "downstream"), write_raw_stsb(tmp_path / "raw")
    recipe = Recipe("prompteol", CPConfig(layer=3, alpha=2.0))
    step = recipe_steps.run_recipe_test("tiny", tiny_lm, recipe, data, raw, tmp_path / "results", batch_size=4)
    plain, own, row = step["rows"]
    assert [plain["row"], own["row"]] == ["plain PromptEOL", "plain prompteol"]
    assert {k: v for k, v in plain.items() if k != "row"} == {k: v for k, v in own.items() if k != "row"}
    assert row["average vs PromptEOL"] == row["average vs its prompt"]
    assert row["average"] != plain["average"]


def test_a_recipe_runs_the_beyond_sts_tasks_against_plain_prompteol_and_itself_without_cp(
    tiny_lm, tmp_path, monkeypatch, own_cache
):
    """Every task scores plain PromptEOL, the recipe without CP and the recipe, with intervals against
    the first and, for CP's own gain, against the second; only test splits are read, a second run
    computes nothing, and the recipe section gains the table."""
    from experiments import beyond_steps, recipe_steps

    from beyond_fixture import write_beyond
    from cpembed import CPConfig, CPEncoder, Recipe, TPConfig
    from cpembed.evaluation import beyond

    root, out = write_beyond(tmp_path / "beyond"), tmp_path / "results"
    splits = []
    for name in ("load_scifact", "load_wikiqa", "load_stsb_multi"):
        real = getattr(beyond, name)
        monkeypatch.setattr(beyond, name, lambda *a, real=real: splits.append(a[-1]) or real(*a))
    recipe = Recipe("cot", CPConfig(layer=3, alpha=2.0), TPConfig(last=3))
    tasks = ("rerank", "sts-multilingual")
    recipe_steps.run_recipe_beyond("tiny", tiny_lm, recipe, root, out, batch_size=4, tasks=tasks)
    assert set(splits) == {"test"}
    assert sorted(p.stem for p in (out / "tiny" / "recipe-beyond").glob("*.json")) == sorted(tasks)
    rerank = json.loads((out / "tiny" / "recipe-beyond" / "rerank.json").read_text())
    plain, own, row = rerank["rows"]
    assert [plain["setting"], own["setting"], row["setting"]] == ["plain PromptEOL", "cot + TP 2-3", "recipe"]
    encoder = CPEncoder(tiny_lm, "cot", cp=recipe.cp, tp=recipe.tp)  # the recipe, encoded on its own
    assert row["MAP"] == pytest.approx(
        beyond.evaluate_rerank(encoder.encode, encoder.encode, beyond.load_wikiqa(root, "test"))["map"], abs=1e-6
    )
    assert row["MAP low"] <= row["MAP"] - plain["MAP"] <= row["MAP high"]
    over = rerank["over its prompt"]  # the recipe against the recipe without CP
    assert over["MAP"] == row["MAP"] and over["MAP low"] <= row["MAP"] - own["MAP"] <= over["MAP high"]
    assert (over["MAP low"], over["MAP high"]) != (row["MAP low"], row["MAP high"])

    monkeypatch.setattr(beyond_steps, "encode_with_controls", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    recipe_steps.run_recipe_beyond("tiny", tiny_lm, recipe, root, out, batch_size=4, tasks=tasks)  # kept
    text = "\n".join(recipe_steps._beyond_lines(out, "tiny", recipe_steps.describe(recipe)))
    assert f"| WikiQA reranking | MAP | {plain['MAP']:.2f} | {own['MAP']:.2f} | {row['MAP']:.2f} | — |" in text
    assert f"{row['MAP'] - own['MAP']:+.2f} [{over['MAP low']:+.2f}, {over['MAP high']:+.2f}] |" in text
    assert "Not run yet: SciFact retrieval, TwitterURL pairs, 20 Newsgroups clustering." in text
    assert recipe_steps._beyond_lines(out, "tiny", "another recipe") == []  # a changed recipe's old steps drop out


def test_a_stopped_retrieval_step_resumes_from_its_saved_slices_on_a_new_machine(
    tiny_lm, tmp_path, monkeypatch, own_cache
):
    """SciFact is ranked a slice at a time with the tallies saved beside the step: stopped after the
    first slice and resumed with an empty embedding cache, it encodes only the rest (and nothing for
    the recipe's second comparison), scores what an uninterrupted run scores, and removes the saved
    tallies once the step is written; another recipe takes none of them for its own."""
    from experiments import beyond_steps, recipe_steps

    from beyond_fixture import write_beyond
    from cpembed import CPConfig, Recipe
    from cpembed.evaluation import beyond

    root = write_beyond(tmp_path / "beyond")
    data = beyond.load_scifact(root, "test")
    recipe = Recipe("cot", CPConfig(layer=3, alpha=2.0))  # three rows: plain PromptEOL, plain cot, the recipe
    monkeypatch.setattr(beyond_steps, "RETRIEVAL_SLICE", 1)
    whole = tmp_path / "whole"
    recipe_steps.run_recipe_beyond("tiny", tiny_lm, recipe, root, whole, batch_size=4, tasks=("retrieval",))

    stopped = tmp_path / "stopped"
    counted = []
    real_count = beyond.RetrievalTally.count

    def count_then_stop(tally, *args):
        counted.append(args[1])
        if len(counted) == 5:  # three rows a slice: it stops in the second slice, the first saved
            raise KeyboardInterrupt
        real_count(tally, *args)

    monkeypatch.setattr(beyond.RetrievalTally, "count", count_then_stop)
    with pytest.raises(KeyboardInterrupt):
        recipe_steps.run_recipe_beyond("tiny", tiny_lm, recipe, root, stopped, batch_size=4, tasks=("retrieval",))
    partial = stopped / "tiny" / "recipe-beyond" / "retrieval.partial.json"
    saved = json.loads(partial.read_text())
    first = len(beyond.relevant_documents(data))
    assert len(counted[0]) == first < len(data.corpus)
    assert len(saved["tallies"]) == 3 and {t["counted"] for t in saved["tallies"].values()} == {first}
    elsewhere = tmp_path / "another-recipe" / "tiny" / "recipe-beyond"
    elsewhere.mkdir(parents=True)
    shutil.copy(partial, elsewhere / partial.name)
    cut_short = tmp_path / "cut-short.partial.json"
    cut_short.write_text(partial.read_text()[:40])
    assert beyond_steps._read_progress(cut_short) == {}  # a file a crash cut short is a run to start again

    monkeypatch.setattr(beyond.RetrievalTally, "count", real_count)
    monkeypatch.setenv("CPEMBED_CACHE", str(tmp_path / "another-machine"))
    encoded = []
    real_encode = beyond_steps.encode_with_controls
    monkeypatch.setattr(
        beyond_steps, "encode_with_controls", lambda e, texts, *a: encoded.extend(texts) or real_encode(e, texts, *a)
    )
    other = Recipe("cot", CPConfig(layer=2, alpha=2.0))  # plain PromptEOL and plain cot resume; its CP row cannot
    recipe_steps.run_recipe_beyond(
        "tiny", tiny_lm, other, root, elsewhere.parents[1], batch_size=4, tasks=("retrieval",)
    )
    assert len(encoded) == 2 * (len(data.queries) + len(data.corpus))  # both encoders, from the first slice
    encoded.clear()
    recipe_steps.run_recipe_beyond("tiny", tiny_lm, recipe, root, stopped, batch_size=4, tasks=("retrieval",))
    assert len(encoded) == 2 * (len(data.queries) + len(data.corpus) - first)  # PromptEOL's pass, cot's pass
    assert not partial.exists()
    resumed = json.loads((stopped / "tiny" / "recipe-beyond" / "retrieval.json").read_text())
    expected = json.loads((whole / "tiny" / "recipe-beyond" / "retrieval.json").read_text())
    assert resumed["rows"] == expected["rows"] and resumed["over its prompt"] == expected["over its prompt"]


def test_a_prompteol_recipe_on_the_beyond_sts_tasks_has_one_plain_row(tiny_lm, tmp_path, own_cache):
    """Plain PromptEOL is the recipe without CP: one row, one pass with the recipe's CP, one comparison."""
    from experiments import recipe_steps

    from beyond_fixture import write_beyond
    from cpembed import CPConfig, Recipe

    root, out = write_beyond(tmp_path / "beyond"), tmp_path / "results"
    recipe = Recipe("prompteol", CPConfig(layer=3, alpha=2.0))
    recipe_steps.run_recipe_beyond("tiny", tiny_lm, recipe, root, out, batch_size=4, tasks=("pairs",))
    step = json.loads((out / "tiny" / "recipe-beyond" / "pairs.json").read_text())
    assert [r["setting"] for r in step["rows"]] == ["plain PromptEOL", "recipe"] and "over its prompt" not in step
    header = recipe_steps._beyond_lines(out, "tiny", recipe_steps.describe(recipe))[2]
    assert header.endswith("| all-MiniLM-L6-v2 | recipe - plain PromptEOL [95%] |")


def test_the_report_command_names_the_tasks_it_knows(tmp_path):
    from click.testing import CliRunner
    from experiments.__main__ import report as main

    refused = CliRunner().invoke(main, ["--beyond", "--tasks", "rerank,search", "--results", str(tmp_path)])
    assert refused.exit_code == 2 and "unknown search; choose from rerank, pairs" in refused.output


def test_any_prompt_can_be_swept_and_its_best_layers_become_recipe_candidates(tiny_lm, tmp_path, monkeypatch):
    """`--sweep` reaches `run_sweep` for each prompt; a swept prompt's best layers on raw dev are
    candidates of the recipe rule with both dev scores, and the page shows the sweep under its name."""
    from click.testing import CliRunner
    from experiments import recipe_steps
    from experiments.__main__ import report as main

    data, raw = write_senteval(tmp_path / "downstream"), write_raw_stsb(tmp_path / "raw")
    out = tmp_path / "results"
    report.run_model_prompt("tiny", tiny_lm, "cot", data, raw, out, batch_size=4, evaluate=False)
    best = report.run_sweep("tiny", tiny_lm, "cot", data, raw, out, batch_size=4)
    folder = out / "tiny" / "cot"
    sweep = json.loads((folder / "layers.json").read_text())
    assert sweep["alpha"] == best.alpha and (folder / "layers.png").is_file()
    on_raw = {r["label"]: r["spearman"] for r in json.loads((folder / "layers_raw.json").read_text())["records"]}
    on_senteval = {r["label"]: r["spearman"] for r in sweep["records"]}
    candidates = [c for c in recipe_steps.recipe_candidates(out, "tiny", ("cot",)) if c["cp"] is not None]
    found = {recipe_steps._cp_label(c["cp"]): (c["STS-B dev"], c["raw STS-B dev"]) for c in candidates}
    assert len(on_raw) - 1 == report.SWEEP_TOP and all(
        found[name] == (on_senteval[name], on_raw[name]) for name in on_raw if name != "baseline"
    )
    markdown = tmp_path / "RESULTS.md"
    report_page.write_markdown(out, markdown, ["tiny"], ["prompteol", "cot"], "make results")
    assert "### tiny, Pretended CoT: CP at every layer" in markdown.read_text()

    seen = []
    monkeypatch.setattr(report, "run_sweep", lambda model, lm, prompt, *a: seen.append((model, prompt)))
    monkeypatch.setattr("experiments.__main__.report_model", lambda *a: None)
    options = ["--data", str(data), "--raw-data", str(raw), "--results", str(out), "--markdown", str(markdown)]
    result = CliRunner().invoke(main, [*options, "--sweep", "--models", "tiny", "--prompts", "cot,ck"])
    assert result.exit_code == 0, result.output
    assert seen == [("tiny", "cot"), ("tiny", "ck")]
