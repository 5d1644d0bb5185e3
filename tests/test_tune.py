"""`cpembed tune`: successive halving within a budget, on the user's data or the shared tuning splits."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import assert_same_embeddings
from cpembed import CPEncoder
from cpembed.cli import main
from cpembed.errors import InvalidValueError
from cpembed.evaluation import tune as tuning
from cpembed.evaluation.metrics import paired_cosine, spearman
from cpembed.postprocess import fit
from cpembed.spec import EncoderSpec

WORDS = "cat dog bird fish horse tree river stone cloud apple bread music train city road".split()


def pairs_file(path, n: int = 40, label: bool = False):
    rng = np.random.default_rng(1)
    lines = ["sentence1\tsentence2\t" + ("label" if label else "score")]
    for i in range(n):
        a = " ".join(rng.choice(WORDS, 4))
        b = " ".join(rng.choice(WORDS, 4)) if i % 2 else a + " again"
        lines.append(f"{a}\t{b}\t{int(i % 2 == 0) if label else round(float(rng.uniform(0, 5)), 2)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_budgets_parse_and_nonsense_is_refused():
    assert [tuning.parse_budget(b) for b in ("90s", "10m", "1.5h", "30")] == [90, 600, 5400, 30]
    for bad in ("", "ten minutes", "0m", "-5s"):
        with pytest.raises(InvalidValueError, match="budget must look like"):
            tuning.parse_budget(bad)


def test_user_data_is_read_by_column_name_and_test_splits_are_refused(tmp_path):
    path = tmp_path / "mine.tsv"
    path.write_text("id\tscore\tsentence2\tsentence1\n" + "".join(f"{i}\t{i % 5}\tb {i}\ta {i}\n" for i in range(12)))
    (task,) = tuning.user_tasks("sts", path)
    assert task.units == 12 and task.first[0] == "a 0" and task.gold[3] == 3.0
    with pytest.raises(InvalidValueError, match="lacks label"):
        tuning.user_tasks("pairs", path)
    for name in ("sts-test.tsv", "test.tsv", "my_test_pairs.tsv"):
        with pytest.raises(InvalidValueError, match="looks like a test split"):
            tuning.user_tasks("sts", tmp_path / name)
    with pytest.raises(InvalidValueError, match="no data at .*a JSONL file"):
        tuning.user_tasks("reranking", tmp_path / "nothing.jsonl")
    (tmp_path / "broken.jsonl").write_text("{not json\n")
    with pytest.raises(InvalidValueError, match="broken.jsonl is not a JSONL file"):
        tuning.user_tasks("reranking", tmp_path / "broken.jsonl")


def test_one_round_scores_every_candidate_as_the_encoder_would(tiny_lm, tmp_path):
    """With the whole set in the first round, the chosen candidate's score is its score computed
    from scratch: the encoder with that setting, the post-processing fitted on the same texts."""
    tasks = tuning.user_tasks("sts", pairs_file(tmp_path / "pairs.tsv", 30))
    result = tuning.tune(tiny_lm, "sts", tasks, budget=600, prompts=["prompteol", "cot"], start_units=1000)
    assert len(result.rounds) == 1 and result.complete
    assert result.rounds[0].candidates == 2 * len(tuning.cp_settings(tiny_lm.num_layers)) * 2  # x (none, center)
    task = tasks[0]
    for candidate, score in ((result.best, result.best_score), (tuning.Candidate(*tuning.BASELINE), result.baseline)):
        encoder = CPEncoder(tiny_lm, candidate.prompt, cp=candidate.cp)
        rows = encoder.encode(task.texts(task.units))
        if candidate.post != "none":
            rows = fit(rows, "center", "").apply(rows)
        n = task.units
        expected = 100 * spearman(paired_cosine(rows[:n], rows[n:]), task.gold[task.order])
        assert score == pytest.approx(expected, abs=1e-6)
    if result.beat_noise:
        assert result.chosen == result.best and result.interval[0] > 0
    else:
        assert result.chosen == tuning.Candidate(*tuning.BASELINE)


def test_examples_and_aux_wordings_are_candidates_scored_as_the_encoder_would(tiny_lm, tmp_path):
    """An in-context example is another prompt and an auxiliary wording another CP setting: each
    candidate's score is the encoder's with that demonstration and wording, computed from scratch."""
    from cpembed.evaluation.aux_search import aux_candidates

    tasks = tuning.user_tasks("sts", pairs_file(tmp_path / "pairs.tsv", 30))
    example, wording = ("two dogs run on the beach", "Dogs"), aux_candidates()["stop words / of"]
    result = tuning.tune(
        tiny_lm, "sts", tasks, 600, prompts=["prompteol"], layers=[2], examples=[example],
        aux_templates=[wording], start_units=1000,
    )  # fmt: skip
    settings = tuning.cp_settings(tiny_lm.num_layers, [2], aux_templates=[wording])
    assert len(settings) == 1 + 5 + 1  # plain, NS at four alphas and NR, NR with the other wording
    assert result.rounds[0].candidates == 2 * len(settings) * 2  # (no example, example) x settings x posts
    task = tasks[0]
    for cp in (settings[-1], None):
        candidate = tuning.Candidate("prompteol", cp, "none", example)
        encoder = CPEncoder(tiny_lm, "prompteol", cp=cp, demonstrations=[example])
        rows = encoder.encode(task.texts(task.units))
        expected = 100 * spearman(paired_cosine(rows[: task.units], rows[task.units :]), task.gold[task.order])
        assert result.scores[candidate.label()] == pytest.approx(expected, abs=1e-6)
    assert "prompteol with example 'two dogs run on the beach' -> Dogs NR l=2 aux 'stop words / of'" in result.scores
    sentences = tuning.example_sentences(tasks, 3)
    assert len(sentences) == 3 == len(set(sentences)) and sentences == tuning.example_sentences(tasks, 3)
    assert set(sentences) <= {s for s in task.texts(task.units)}


def test_the_cli_tries_demonstrations_and_aux_wordings_on_request(tiny_model_dir, tmp_path):
    data = pairs_file(tmp_path / "pairs.tsv", 24)
    args = ["tune", tiny_model_dir, "--job", "sts", "--data", str(data), "--budget", "5m", "--no-cache"]
    args += ["--prompts", "prompteol", "--layers", "2", "--demonstrations", "2", "--aux-prompts", "1"]
    done = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "s.json")])
    assert done.exit_code == 0, done.output
    spec = EncoderSpec.load(tmp_path / "s.json")
    expected = CPEncoder(
        tiny_model_dir, spec.prompt, cp=spec.cp, demonstrations=spec.demonstrations, postprocess=spec.postprocess
    )
    assert_same_embeddings(CPEncoder.from_spec(spec).encode(["a cat"]), expected.encode(["a cat"]))
    assert CliRunner().invoke(main, [*args[:-2], "--aux-prompts", "-1"]).exit_code == 2


def test_the_models_answer_word_is_greedy_and_one_word(tiny_lm):
    from cpembed.evaluation.demonstrations import answer_word

    encoder = CPEncoder(tiny_lm, cp=None)
    word = answer_word(encoder, "two dogs run on the beach")
    assert word is None or (word.strip() == word and '"' not in word and " " not in word and word)
    assert answer_word(encoder, "two dogs run on the beach") == word  # greedy: the same every time


def test_rounds_triple_the_units_and_keep_a_third(tiny_lm, tmp_path):
    tasks = tuning.user_tasks("pairs", pairs_file(tmp_path / "pairs.tsv", 40, label=True))
    result = tuning.tune(tiny_lm, "pairs", tasks, budget=600, prompts=["prompteol"], start_units=10)
    assert [r.units for r in result.rounds] == [10, 30, 40] and result.complete
    counts = [r.candidates for r in result.rounds]
    assert counts[1] < counts[0] and counts[2] <= counts[1]


def test_a_budget_too_small_for_the_next_round_stops_the_search(tiny_lm, tmp_path):
    tasks = tuning.user_tasks("sts", pairs_file(tmp_path / "pairs.tsv", 40))
    result = tuning.tune(tiny_lm, "sts", tasks, budget=1e-3, prompts=["prompteol"], start_units=10)
    assert len(result.rounds) == 1 and not result.complete
    # within a round, a prompt starts only while the budget lasts: here only the first one ran
    lines = []
    result = tuning.tune(tiny_lm, "sts", tasks, 1e-3, prompts=["cot", "knowledge"], start_units=10, report=lines.append)
    assert result.best.prompt == "cot" and "before knowledge was scored" in " ".join(lines)


def test_a_prompt_that_would_end_past_the_budget_is_not_started(tiny_lm, tmp_path, monkeypatch):
    """The first prompt of a round shows what a pass costs; the next starts only if it should end in time."""
    import time

    real = CPEncoder.encode_settings

    def slow(self, *args, **kwargs):
        time.sleep(0.4)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(CPEncoder, "encode_settings", slow)
    tasks = tuning.user_tasks("sts", pairs_file(tmp_path / "pairs.tsv", 40))
    lines = []
    result = tuning.tune(tiny_lm, "sts", tasks, 0.6, prompts=["prompteol", "cot"], start_units=10, report=lines.append)
    assert {c.split()[0] for c in result.scores} == {"prompteol"}  # cot never started
    assert "before cot was scored (it would take about" in " ".join(lines)


def test_the_cli_writes_a_spec_that_encodes_like_the_chosen_setting(tiny_model_dir, tmp_path):
    data = pairs_file(tmp_path / "pairs.tsv", 24)
    runner = CliRunner()
    args = ["tune", tiny_model_dir, "--job", "sts", "--data", str(data), "--budget", "5m", "--no-cache"]
    done = runner.invoke(main, [*args, "--prompts", "prompteol", "-o", str(tmp_path / "s.json")])
    assert done.exit_code == 0, done.output
    assert "Use it: cpembed encode --spec" in done.stdout and "round" in done.stdout
    spec = EncoderSpec.load(tmp_path / "s.json")
    assert spec.job == "sts" and spec.weights and spec.origin["rounds"]
    plain = tuning.Candidate(*tuning.BASELINE).label()
    assert spec.origin["chosen"] == (spec.origin["best"]["candidate"] if spec.origin["beat_noise"] else plain)
    encoder = CPEncoder.from_spec(spec)
    expected = CPEncoder(tiny_model_dir, spec.prompt, cp=spec.cp, postprocess=spec.postprocess)
    assert_same_embeddings(encoder.encode(["a cat", "a dog"]), expected.encode(["a cat", "a dog"]))
    by_spec = runner.invoke(main, ["similarity", "a cat", "a dog", "--spec", str(tmp_path / "s.json")])
    assert by_spec.exit_code == 0, by_spec.output
    assert json.loads((tmp_path / "s.json").read_text())["origin"]["metric"] == "sts"


def test_without_data_the_cli_says_what_the_job_needs(tiny_model_dir):
    done = CliRunner().invoke(main, ["tune", tiny_model_dir, "--job", "reranking"])
    assert done.exit_code == 2
    assert "JSONL" in done.output and "--data" in done.output


@pytest.mark.parametrize("job", tuning.JOBS)
def test_each_jobs_shared_tuning_split_loads_and_scores(job, senteval_data, raw_stsb_data, beyond_data):
    """On the real tuning splits, with a random embedding: every job's task reads and scores its units."""
    tasks = tuning.shared_tasks(job, senteval_data, raw_stsb_data, beyond_data)
    rng = np.random.default_rng(0)

    def embed(texts):
        return rng.normal(size=(len(texts), 16))

    for task in tasks:
        assert task.units > 20 and task.texts(12)
        assert "test" not in task.name.lower()
        scored = task.evaluate(embed, 24)
        assert np.isfinite(scored.value)


def test_a_retrieval_round_ranks_its_queries_over_their_judged_documents_and_a_share_of_the_others():
    from cpembed.evaluation.beyond import Retrieval

    queries = {f"q{i}": f"query {i}" for i in range(40)}
    corpus = {f"d{i}": f"document {i}" for i in range(240)}
    qrels = {f"q{i}": {f"d{i}": 1} for i in range(40)}  # d0..d39 judged, d40..d239 the others
    task = tuning.RetrievalTask("toy", Retrieval(queries, corpus, qrels), corpus_size=140)
    first, whole = task._subset(10), task._subset(40)
    assert set(whole.corpus) == {f"d{i}" for i in range(40)} | set(task.others) and len(whole.corpus) == 140
    assert {d for q in first.qrels.values() for d in q} <= set(first.corpus)  # its own judged documents
    assert len(first.corpus) == 10 + 25  # and a quarter of the 100 others, as it has a quarter of the queries
    assert set(first.corpus) <= set(whole.corpus) and set(first.queries) <= set(whole.queries)
    assert len(task.texts(10)) == 10 + 35


def test_the_tune_check_scores_the_budget_choice_against_the_whole_grids_best(tmp_path):
    from experiments.tune_check import tune_check_markdown

    folder = tmp_path / "m" / "tune-check"
    folder.mkdir(parents=True)
    rounds = [{"units": 64}, {"units": 192}]
    origin = {"chosen": "cot NR l=3", "score": 80.0, "seconds": 500.0, "rounds": rounds}
    (folder / "budget-float32.json").write_text(json.dumps({"wall_seconds": 510.0, "spec": {"origin": origin}}))
    assert tune_check_markdown(tmp_path, ["m"]) == []  # no grid yet: no section
    scores = {"cot NR l=3": 79.5, "ck NS l=1 a=0.5": 79.9, "prompteol plain": 70.0}
    grid = {"scores": scores, "baseline": 70.0, "best": {"candidate": "ck NS l=1 a=0.5", "score": 79.9}, "seconds": 9}
    (folder / "grid-float32.json").write_text(json.dumps(grid))
    (row,) = [line for line in tune_check_markdown(tmp_path, ["m"]) if line.startswith("| m |")]
    assert "| 79.50 |" in row and "0.40 (not met)" in row and "64 / 192" in row
    origin["chosen"] = "prompteol plain"  # nothing beat plain PromptEOL: the spec is plain
    (folder / "budget-float32.json").write_text(json.dumps({"wall_seconds": 510.0, "spec": {"origin": origin}}))
    (row,) = [line for line in tune_check_markdown(tmp_path, ["m"]) if line.startswith("| m |")]
    assert "| prompteol plain |" in row and "9.90 (not met)" in row


def test_the_tune_check_grid_step_scores_every_candidate_on_the_whole_set(tiny_model_dir, tmp_path, monkeypatch):
    from experiments import tune_check

    tasks = tuning.user_tasks("sts", pairs_file(tmp_path / "pairs.tsv", 20))
    monkeypatch.setattr(tuning, "shared_tasks", lambda job: tasks)
    path = tmp_path / "grid-float32.json"
    tune_check._run_grid(tiny_model_dir, "float32", path, batch_size=8)
    record = json.loads(path.read_text())
    assert record["best"]["score"] == max(record["scores"].values())
    assert "prompteol plain" in record["scores"] and record["units"] == ["pairs.tsv (20)"]
