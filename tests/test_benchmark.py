"""The benchmark's naive runner is a fair comparison (same embeddings), and `cpembed bench` runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import SENTENCES
from cpembed import CPConfig, CPEncoder
from cpembed.benchmark import sentences_of
from cpembed.cli import main
from cpembed.naive import NaiveCP


@pytest.mark.parametrize("prompt", ["prompteol", "ck"])
@pytest.mark.parametrize("cp", [None, CPConfig(layer=3, alpha=2.0), CPConfig(layer=2, norm="recover", site="ffn")])
def test_naive_two_pass_equals_the_encoder(tiny_lm, prompt, cp):
    encoder = CPEncoder(tiny_lm, prompt=prompt, cp=cp)
    naive = NaiveCP(CPEncoder(tiny_lm, prompt=prompt, cp=cp, engine="padded")).encode(SENTENCES, batch_size=4)
    np.testing.assert_allclose(naive, encoder.encode(SENTENCES), atol=1e-5, rtol=1e-5)


def test_benchmark_sentences_have_the_asked_length():
    texts = sentences_of(12, 5)
    assert len(set(texts)) == 5 and all(len(t.split()) == 12 for t in texts)


def test_bench_command_writes_the_report(tiny_model_dir, tmp_path):
    target = tmp_path / "docs" / "PERFORMANCE.md"
    result = CliRunner().invoke(
        main, ["bench", "--model", tiny_model_dir, "--quick", "--count", "8", "--output", str(target)]
    )
    assert result.exit_code == 0, result.output
    text = target.read_text()
    assert "| prompteol | 8 | 16 |" in text and "CP fast / naive" in text and "## Memory" in text
    assert (target.parent / "performance" / "throughput.png").read_bytes()[:4] == b"\x89PNG"
    timings = json.loads((target.parent / "performance" / "bench.json").read_text())["timings"]
    assert {t["name"] for t in timings} == {"plain", "plain (padded)", "CP fast", "CP padded", "CP naive"}


@pytest.mark.parametrize("engine", ["packed", "padded"])
def test_opening_cache_benchmark_writes_its_section(tiny_model_dir, tmp_path, monkeypatch, engine):
    import runpy
    import sys
    from pathlib import Path

    from cpembed import packing

    script = Path(__file__).parents[1] / "benchmarks" / "prefix_cache.py"
    target = tmp_path / "docs" / "PERFORMANCE.md"
    args = ["--model", tiny_model_dir, "--count", "4", "--rounds", "1", "--prompts", "prompteol", "--words", "8,20"]
    monkeypatch.setattr(sys, "argv", [str(script), *args, "--engine", engine, "--output", str(target)])
    cache = packing.cached_prefix
    runpy.run_path(str(script), run_name="__main__")
    assert packing.cached_prefix is cache  # the uncached runs put the cache back
    text = target.read_text()
    title = "## The template's opening, computed once per model"
    assert (title + ": the padded engine" in text) == (engine == "padded") and title in text
    name = "prefix_cache" if engine == "packed" else "prefix_cache_padded"
    rows = json.loads((target.parent / "performance" / f"{name}.json").read_text())["rows"]
    assert {r["engine"] for r in rows} == {"plain", "CP fast", "CP fast, opening per pack", "CP naive"}
    assert all(r["rate"] > 0 for r in rows) and len(rows) == 2 * 4


def test_gpu_benchmark_parts_write_their_section(tmp_path):
    """The GPU script's measurements, run on the CPU with a tiny 8-layer model (the paper's grid
    reaches layer 7), rendered as PERFORMANCE.md renders them."""
    import runpy
    from pathlib import Path

    from transformers import AutoModelForCausalLM, LlamaConfig

    from conftest import _COMMON, make_tokenizer
    from cpembed import LanguageModel
    from cpembed.benchmark import machine, save_measurement

    script = runpy.run_path(str(Path(__file__).parents[1] / "benchmarks" / "large_model_gpu.py"), run_name="gpu")
    tokenizer = make_tokenizer(bos=True)
    config = LlamaConfig(vocab_size=len(tokenizer), **(_COMMON | {"num_hidden_layers": 8}))
    lm = LanguageModel("tiny-8", AutoModelForCausalLM.from_config(config), tokenizer)
    engines = ("plain (padded)", "plain", "CP padded", "CP fast", "CP naive")
    case = dict(prompt="prompteol", words=12, batch_size=4, seconds=1.0, rate=4.0, peak_gib=0.0)
    rows = [case | {"engine": engine} for engine in engines]
    result = {
        "command": "python benchmarks/large_model_gpu.py",
        "machine": machine(),
        "model": lm.name,
        "num_layers": 8,
        "dtype": "float32",
        "count": 4,
        "rounds": 1,
        "rows": rows,
        "grid": script["grid_over_plain"](lm, 4, 1),
        "pack_budget": script["pack_budgets"](lm, 6, 1, budgets=(40, 768)),
        "opening_cache": script["opening_cache"](lm, 4, 1, batch_size=2),
    }
    text = save_measurement(tmp_path / "PERFORMANCE.md", "gpu", result).read_text()
    assert "## A 7B-sized model on a GPU" in text and "| prompteol | 12 | 4 | 4 | 4 | 4 | 4 | 4 | 1.00 |" in text
    assert "| 40 |" in text and "| 768 |" in text and "the grid costs" in text
    sweep = {(r["budget"], r["run"]): r for r in result["pack_budget"]["rows"]}
    packed = {(budget, run) for budget in (40, 768) for run in ("plain", "CP", "grid")}
    assert set(sweep) == {("padded", "plain"), ("padded", "CP"), *packed}
    assert all(r["rate"] > 0 for r in sweep.values())
    opening = {(r["prompt"], r["run"], r["opening"]) for r in result["opening_cache"]["rows"]}
    assert opening == {
        (p, run, o) for p in ("prompteol", "knowledge") for run in ("plain", "CP") for o in ("cached", "per batch")
    }
    assert "**The template's opening, cached.**" in text and text.count("| knowledge | CP |") == 1


def test_engines_benchmark_writes_its_section(tiny_model_dir, tmp_path, monkeypatch):
    import runpy
    import sys
    from pathlib import Path

    script = Path(__file__).parents[1] / "benchmarks" / "engines.py"
    target = tmp_path / "docs" / "PERFORMANCE.md"
    args = ["--model", tiny_model_dir, "--count", "4", "--rounds", "1", "--prompts", "prompteol", "--words", "8,20"]
    monkeypatch.setattr(sys, "argv", [str(script), *args, "--batch-sizes", "2", "--output", str(target)])
    runpy.run_path(str(script), run_name="__main__")
    rows = json.loads((target.parent / "performance" / "engines.json").read_text())["rows"]
    assert len(rows) == 2 * 2 * 2 and {r["engine"] for r in rows} == {"packed", "padded"}
    text = target.read_text()
    assert "## Packed against padded" in text and "| prompteol | CP | 20 | 2 |" in text
    assert "configurations." in text.split("## Packed against padded")[1]
