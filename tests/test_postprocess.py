"""Fitted post-processing: the arithmetic on hand-made data, its place in encode, and refusals."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import SENTENCES
from cpembed import CPConfig, CPEncoder
from cpembed.cli import main
from cpembed.errors import InputNotFoundError, InvalidValueError
from cpembed.postprocess import PostProcess, fit

CORPUS = [f"Sentence number {i} talks about {topic}." for i in range(40) for topic in ("cats", "rain", "money")]


def test_centering_subtracts_the_mean_computed_by_hand():
    x = np.array([[1.0, 2.0], [3.0, 6.0]])
    fitted = fit(x, "center", settings="s")
    np.testing.assert_allclose(fitted.mean, [2.0, 4.0])
    np.testing.assert_allclose(fitted.apply(x), [[-1.0, -2.0], [1.0, 2.0]])
    assert fitted.dimensions == 2


def test_whitening_of_a_diagonal_covariance_is_the_scaling_by_hand():
    # Variances 4 (first axis) and 1 (second): the first component is the first axis, divided by 2.
    x = np.array([[2.0, 0.0], [-2.0, 0.0], [0.0, 1.0], [0.0, -1.0]]) * np.sqrt(3 / 2)  # np.cov divides by n - 1
    fitted = fit(x, "whiten", settings="s")
    np.testing.assert_allclose(np.abs(fitted.transform), [[0.5, 0.0], [0.0, 1.0]], atol=1e-12)
    np.testing.assert_allclose(np.cov(fitted.apply(x), rowvar=False), np.eye(2), atol=1e-6)


def test_whitening_gives_unit_covariance_with_components_by_variance():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 6)) @ rng.normal(size=(6, 6)) + 5.0
    fitted = fit(x, "whiten", settings="s")
    white = fitted.apply(x).astype(np.float64)
    np.testing.assert_allclose(white.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(np.cov(white, rowvar=False), np.eye(6), atol=1e-4)
    variances = np.cov(x - fitted.mean, rowvar=False)
    kept = fitted.transform / np.linalg.norm(fitted.transform, axis=0)
    explained = np.einsum("ij,jk,ki->i", kept.T, variances, kept)
    assert np.all(np.diff(explained) <= 1e-9), "components must come by decreasing variance"
    reduced = fit(x, "whiten", settings="s", dimensions=3)
    np.testing.assert_allclose(reduced.apply(x), fitted.apply(x)[:, :3], atol=1e-5)


def test_bad_fits_are_refused_with_the_reason():
    x = np.ones((3, 4))
    with pytest.raises(InvalidValueError, match="kind"):
        fit(x, "pca", settings="s")
    with pytest.raises(InvalidValueError, match="at least 2"):
        fit(x[:1], "center", settings="s")
    with pytest.raises(InvalidValueError, match="whiten"):
        fit(x, "center", settings="s", dimensions=2)
    with pytest.raises(InvalidValueError, match="dimensions"):
        fit(x, "whiten", settings="s", dimensions=5)
    with pytest.raises(InvalidValueError, match="width 4"):
        fit(x, "center", settings="s").apply(np.ones((2, 3)))


def test_a_fit_round_trips_through_its_file(tmp_path):
    x = np.random.default_rng(1).normal(size=(50, 5))
    fitted = fit(x, "whiten", settings="abc", dimensions=4, source="corpus.txt")
    path = fitted.save(tmp_path / "fit.npz")
    loaded = PostProcess.load(path)
    assert (loaded.kind, loaded.settings, loaded.source, loaded.sentences, loaded.dimensions) == (
        "whiten",
        "abc",
        "corpus.txt",
        50,
        4,
    )
    np.testing.assert_array_equal(loaded.apply(x), fitted.apply(x))
    assert loaded.describe() == fitted.describe()
    assert not list(tmp_path.glob("*.partial*"))


def test_a_missing_or_corrupt_fit_file_says_what_to_do(tmp_path):
    with pytest.raises(InputNotFoundError, match="cpembed fit"):
        PostProcess.load(tmp_path / "absent.npz")
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"not a zip file")
    with pytest.raises(InvalidValueError, match="not a post-processing fit"):
        PostProcess.load(corrupt)


def test_encode_applies_the_fit_to_the_engines_rows(tiny_lm):
    plain = CPEncoder(tiny_lm, cp=CPConfig(layer=2))
    rows = plain.encode(CORPUS)
    fitted = fit(rows, "whiten", plain.settings().digest(), dimensions=8)
    whitened = CPEncoder(tiny_lm, cp=CPConfig(layer=2), postprocess=fitted)
    assert whitened.embedding_dimension == 8
    np.testing.assert_allclose(whitened.encode(SENTENCES), fitted.apply(plain.encode(SENTENCES)), atol=1e-5)
    chunks = [SENTENCES[:2], SENTENCES[2:]]
    streamed = np.concatenate([e for _, e in whitened.encode_chunks(chunks, normalize_embeddings=True)])
    expected = whitened.encode(SENTENCES, normalize_embeddings=True)
    np.testing.assert_allclose(streamed, expected, atol=1e-5)


@pytest.mark.parametrize(
    "other",
    [
        dict(cp=CPConfig(layer=3)),  # another CP setting
        dict(cp=None),  # no CP
        dict(cp=CPConfig(layer=2), prompt="cot"),  # another prompt
        dict(cp=CPConfig(layer=2), output_layer=3),  # another output layer
    ],
)
def test_a_fit_made_for_other_settings_is_refused(tiny_lm, other):
    base = CPEncoder(tiny_lm, cp=CPConfig(layer=2))
    fitted = fit(base.encode(CORPUS[:20]), "center", base.settings().digest())
    with pytest.raises(InvalidValueError, match="other encoder settings"):
        CPEncoder(tiny_lm, postprocess=fitted, **other)


def test_a_fit_on_another_model_is_refused(tiny_models):
    base = CPEncoder(tiny_models["llama"], cp=None)
    fitted = fit(base.encode(CORPUS[:20]), "center", base.settings().digest())
    with pytest.raises(InvalidValueError, match="other encoder settings"):
        CPEncoder(tiny_models["qwen2"], cp=None, postprocess=fitted)


def test_a_fit_cannot_serve_a_query_prompt_of_its_own(tiny_lm):
    base = CPEncoder(tiny_lm, cp=None)
    fitted = fit(base.encode(CORPUS[:20]), "center", base.settings().digest())
    with pytest.raises(InvalidValueError, match="query or document prompt"):
        CPEncoder(tiny_lm, cp=None, query_prompt="cot", postprocess=fitted)


def test_cli_fit_then_encode_with_the_fit(tiny_model_dir, tmp_path):
    corpus, fitted, out = tmp_path / "corpus.txt", tmp_path / "white.npz", tmp_path / "out.npy"
    corpus.write_text("\n".join(CORPUS) + "\n", encoding="utf-8")
    sentences = tmp_path / "in.txt"
    sentences.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    flags = ["--model", tiny_model_dir, "--layer", "2", "--alpha", "1"]
    runner = CliRunner()
    result = runner.invoke(main, ["fit", str(corpus), "-o", str(fitted), "--dimensions", "8", *flags])
    assert result.exit_code == 0, result.output
    assert "whiten fitted on 120 distinct non-empty lines" in result.output
    result = runner.invoke(main, ["encode", str(sentences), "-o", str(out), "--postprocess", str(fitted), *flags])
    assert result.exit_code == 0, result.output
    encoder = CPEncoder(tiny_model_dir, cp=CPConfig(layer=2, alpha=1.0), postprocess=fitted)
    np.testing.assert_allclose(np.load(out), encoder.encode(SENTENCES), atol=1e-5)
    assert np.load(out).shape == (len(SENTENCES), 8)
    # The same fit with another layer is refused in one line that names the fix.
    result = runner.invoke(main, ["encode", str(sentences), "--postprocess", str(fitted), "--model", tiny_model_dir])
    assert result.exit_code == 2
    assert "cpembed fit" in result.output


def test_cli_fit_on_the_tuning_corpus_is_the_packaged_recipes_way(tiny_model_dir, tmp_path):
    from beyond_fixture import write_beyond
    from cpembed.evaluation.corpus import PER_SOURCE, tuning_corpus
    from senteval_fixture import write_senteval

    data, beyond = write_senteval(tmp_path / "downstream"), write_beyond(tmp_path / "beyond")
    fitted = tmp_path / "tuning.npz"
    flags = ["--model", tiny_model_dir, "--layer", "2", "--alpha", "1"]
    where = ["--data", str(data), "--beyond-data", str(beyond)]
    result = CliRunner().invoke(main, ["fit", "--tuning", *where, "-o", str(fitted), "--kind", "center", *flags])
    assert result.exit_code == 0, result.output
    encoder = CPEncoder(tiny_model_dir, cp=CPConfig(layer=2, alpha=1.0))
    rows = encoder.encode(tuning_corpus(data, beyond, PER_SOURCE))
    expected = fit(rows, "center", encoder.settings().digest(), source="tuning corpus")
    loaded = PostProcess.load(fitted)
    np.testing.assert_allclose(loaded.mean, expected.mean, atol=1e-6)
    assert (loaded.source, loaded.sentences, loaded.settings) == ("tuning corpus", len(rows), expected.settings)
    both = CliRunner().invoke(main, ["fit", str(fitted), "--tuning", "-o", str(fitted), *flags])
    assert both.exit_code == 2 and "not both" in both.output
    neither = CliRunner().invoke(main, ["fit", "-o", str(fitted), *flags])
    assert neither.exit_code == 2 and "give a CORPUS file or --tuning" in neither.output
