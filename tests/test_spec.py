"""EncoderSpec: one serializable spec, one resolver, and every surface building from it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import SENTENCES, assert_same_embeddings
from cpembed import CPConfig, CPEncoder, TPConfig
from cpembed.cli import main
from cpembed.errors import InputNotFoundError, InvalidValueError
from cpembed.postprocess import fit
from cpembed.spec import EMBEDDING_FIELDS, ORIGIN_FIELDS, EncoderSpec, resolve

# A spec with every field away from its default, so that a field lost on the way shows.
FULL = EncoderSpec(
    model="some-model",
    prompt="cot",
    cp=CPConfig(layer=3, alpha=2.5, norm="scale", site="ffn", aux_template='Noise of : "{sentence}" in one word:"'),
    tp=TPConfig(last=4, first=2, seed=7),
    output_layer=-2,
    dtype="bfloat16",
    max_length=256,
    demonstrations=(("A jockey riding a horse.", "Equestrian"),),
    query_prompt="prompteol",
    document_prompt='Passage : "{sentence}" means in one word:"',
    postprocess="fits/whiten.npz",
    weights="ab" * 32,
    recipe="best",
    job="reranking",
    about="for tests",
    origin={"dev": {"raw STS-B dev": 79.1}, "data": ["wikiqa dev"]},
)
OTHER_VALUES = {
    "model": "another-model",
    "prompt": "knowledge",
    "cp": None,
    "tp": None,
    "output_layer": -1,
    "dtype": "float32",
    "max_length": 128,
    "demonstrations": (),
    "query_prompt": None,
    "document_prompt": None,
    "postprocess": "packaged:x.npz",
    "weights": "cd" * 32,
    "recipe": "fast",
    "job": "sts",
    "about": "other",
    "origin": {},
}


def test_every_field_is_declared_and_given_another_value_here():
    """A field added to EncoderSpec without a place in the digest (or out of it) and a
    serialization fails here, and so does one this test does not vary."""
    names = [f.name for f in dataclasses.fields(EncoderSpec)]
    assert sorted(names) == sorted(EMBEDDING_FIELDS + ORIGIN_FIELDS)
    assert sorted(names) == sorted(OTHER_VALUES)
    assert all(getattr(FULL, name) != value for name, value in OTHER_VALUES.items())


def test_a_spec_round_trips_through_a_dict_and_a_file(tmp_path):
    assert EncoderSpec.from_dict(FULL.to_dict()) == FULL
    assert EncoderSpec.from_dict(json.loads(json.dumps(FULL.to_dict()))) == FULL
    loaded = EncoderSpec.load(FULL.save(tmp_path / "spec.json"))
    # a fit's relative path is relative to the spec's folder, wherever the command runs
    assert loaded == dataclasses.replace(FULL, postprocess=str(tmp_path / "fits/whiten.npz"))


@pytest.mark.parametrize("name", EMBEDDING_FIELDS + ORIGIN_FIELDS)
def test_the_digest_changes_with_every_field_that_decides_the_embedding(name):
    changed = dataclasses.replace(FULL, **{name: OTHER_VALUES[name]})
    if name in EMBEDDING_FIELDS:
        assert changed.digest() != FULL.digest()
    else:  # where it came from does not change the embedding
        assert changed.digest() == FULL.digest()


def test_a_bad_spec_file_is_refused_with_what_is_wrong(tmp_path):
    with pytest.raises(InputNotFoundError, match="cpembed tune"):
        EncoderSpec.load(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(InvalidValueError, match="not JSON"):
        EncoderSpec.load(tmp_path / "broken.json")
    unknown = FULL.to_dict() | {"colour": "blue"}
    with pytest.raises(InvalidValueError, match="unknown spec field.*colour"):
        EncoderSpec.from_dict(unknown)
    with pytest.raises(InvalidValueError, match="format 99"):
        EncoderSpec.from_dict(FULL.to_dict() | {"format": 99})
    (tmp_path / "bad.json").write_text(json.dumps(FULL.to_dict() | {"cp": {"layer": 0}}), encoding="utf-8")
    with pytest.raises(InvalidValueError, match="bad.json is not a valid spec.*CP layer"):
        EncoderSpec.load(tmp_path / "bad.json")
    with pytest.raises(InvalidValueError, match="unknown prompt"):
        EncoderSpec(prompt="nonsense")


def test_resolve_is_what_the_encoder_embeds_with(tiny_lm):
    cp = CPConfig(layer=3, alpha=2.0)
    encoder = CPEncoder(tiny_lm, "cot", cp=cp, output_layer=-2)
    assert encoder.spec == dataclasses.replace(
        resolve(tiny_lm.name, "cot", cp=cp, output_layer=-2, num_layers=tiny_lm.num_layers),
        weights=tiny_lm.fingerprint,
        dtype="float32",
    )


@pytest.mark.parametrize(
    "arguments",
    [
        dict(prompt="cot", cp=CPConfig(layer=3, alpha=2.0)),
        dict(prompt="prompteol+knowledge", cp=CPConfig(layer=2, norm="recover"), output_layer=-2),
        dict(cp=None, tp=TPConfig(last=3)),
        dict(cp=CPConfig(layer=3), demonstrations=[("A jockey riding a horse.", "Equestrian")]),
        dict(cp=CPConfig(layer=3), query_prompt="cot"),
    ],
)
def test_an_encoder_from_its_saved_spec_embeds_the_same(tiny_lm, tmp_path, arguments):
    encoder = CPEncoder(tiny_lm, **arguments)
    again = CPEncoder.from_spec(encoder.spec.save(tmp_path / "spec.json"), model=tiny_lm)
    assert again.spec == encoder.spec
    assert_same_embeddings(again.encode(SENTENCES), encoder.encode(SENTENCES))
    assert_same_embeddings(again.encode_query(SENTENCES), encoder.encode_query(SENTENCES))


def test_a_spec_keeps_its_fit_by_reference(tiny_lm, tmp_path):
    plain = CPEncoder(tiny_lm, cp=CPConfig(layer=3))
    fitted = fit(plain.encode(SENTENCES * 3), "whiten", plain.settings().digest(), dimensions=8)
    path = fitted.save(tmp_path / "fits" / "whiten.npz")
    encoder = CPEncoder(tiny_lm, cp=CPConfig(layer=3), postprocess=path)
    again = CPEncoder.from_spec(encoder.spec.save(tmp_path / "spec.json"), model=tiny_lm)
    assert again.embedding_dimension == 8
    assert_same_embeddings(again.encode(SENTENCES), encoder.encode(SENTENCES))
    in_memory = CPEncoder(tiny_lm, cp=CPConfig(layer=3), postprocess=fitted)
    assert in_memory.spec.postprocess.startswith("object:")
    with pytest.raises(InvalidValueError, match="save the fit"):
        in_memory.spec.save(tmp_path / "memory.json")


def test_a_spec_made_for_other_weights_is_refused_with_both_fingerprints(tiny_models):
    llama, qwen = tiny_models["llama"], tiny_models["qwen2"]
    spec = dataclasses.replace(CPEncoder(llama, cp=None).spec, model=qwen.name)
    with pytest.raises(InvalidValueError, match=f"made for weights {llama.fingerprint[:16]}.*{qwen.fingerprint[:16]}"):
        CPEncoder.from_spec(spec, model=qwen)


def test_a_bad_layer_is_refused_before_any_weight_loads(tiny_model_dir, monkeypatch):
    import cpembed.encoder

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded before its layers were checked")

    monkeypatch.setattr(cpembed.encoder, "load_model", no_loading)
    with pytest.raises(InvalidValueError, match="CP layer 9 is out of range for a 6-layer model"):
        resolve(tiny_model_dir, cp=CPConfig(layer=9))
    with pytest.raises(InvalidValueError, match="CP layer 9 is out of range"):
        CPEncoder.from_spec(EncoderSpec(model=tiny_model_dir, cp=CPConfig(layer=9)))


def test_ray_refuses_a_bad_layer_before_reading_any_input(tiny_model_dir, tmp_path):
    pytest.importorskip("ray")
    from cpembed.distributed import embed_files

    never_read = tmp_path / "missing.jsonl"  # reading it would fail with another error
    with pytest.raises(InvalidValueError, match="CP layer 9 is out of range"):
        embed_files([str(never_read)], str(tmp_path / "out"), model=tiny_model_dir, cp=CPConfig(layer=9))
    spec = EncoderSpec(model=tiny_model_dir, cp=CPConfig(layer=9)).save(tmp_path / "spec.json")
    with pytest.raises(InvalidValueError, match="CP layer 9 is out of range"):
        embed_files([str(never_read)], str(tmp_path / "out"), spec=str(spec))
    assert not (tmp_path / "out").exists()


def test_only_the_resolver_builds_cp_settings_from_defaults_or_flags():
    """One resolver: no other module looks up the defaults table or the recipes to decide a setting."""
    source = Path(__file__).resolve().parents[1] / "src" / "cpembed"
    allowed = {source / "spec.py", source / "config.py", source / "__init__.py"}
    for path in sorted(source.rglob("*.py")):
        if path in allowed:
            continue
        text = path.read_text(encoding="utf-8")
        for call in ("default_cp(", "PAPER_CP", "chosen_recipe(", "MODEL_RECIPES["):
            assert call not in text, f"{path.relative_to(source)} resolves settings itself ({call}): use spec.resolve"


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_the_cli_writes_a_spec_and_every_command_takes_it(tiny_model_dir, tmp_path):
    flags = ["--model", tiny_model_dir, "--prompt", "cot", "--layer", "2", "--alpha", "3"]
    written = run("spec", *flags, "--output", str(tmp_path / "s.json"), "--about", "a test")
    assert written.exit_code == 0, written.output
    spec = EncoderSpec.load(tmp_path / "s.json")
    assert (spec.prompt, spec.cp, spec.about) == ("cot", CPConfig(layer=2, alpha=3.0), "a test")
    by_flags = run("similarity", "A cat sits.", "A dog runs.", *flags)
    by_spec = run("similarity", "A cat sits.", "A dog runs.", "--spec", str(tmp_path / "s.json"))
    assert by_spec.exit_code == 0, by_spec.output
    assert by_spec.stdout == by_flags.stdout
    assert "cpembed: spec: a test" in by_spec.stderr
    refused = run("similarity", "a", "b", "--spec", str(tmp_path / "s.json"), "--layer", "3")
    assert refused.exit_code == 2 and "drop --layer" in refused.stderr
    missing = run("similarity", "a", "b", "--spec", str(tmp_path / "none.json"))
    assert missing.exit_code == 2 and "no spec file" in missing.stderr


def test_a_recipe_with_another_post_processing_says_so():
    kept = resolve("smollm2-135m", num_layers=30)
    assert kept.recipe == "best" and "replaced" not in kept.describe()
    mine = resolve("smollm2-135m", postprocess="mine.npz", num_layers=30)
    assert mine.describe().endswith("; its post-processing replaced by mine.npz")
    assert resolve("smollm2-135m", postprocess=None, num_layers=30).describe().endswith("replaced by none")
