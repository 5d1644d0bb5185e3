"""The bare Rust tokenizer cpembed runs gives the token ids, offsets, special ids and decoding of
transformers' tokenizer for the same folder: on the tiny test models (saved as a user's folder
would be) and on every installed built-in model (its folder in cpembed's cache)."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from conftest import CONFIGS, SENTENCES, save_tokenizer
from cpembed import models as models_module
from cpembed.models import BUILTIN_MODELS
from cpembed.prompts import IRRELEVANT, PROMPTEOL
from cpembed.tokenizer import Tokenizer, load_tokenizer

TEXTS = [
    *SENTENCES,
    PROMPTEOL.replace("{sentence}", "A man is playing a guitar."),
    IRRELEVANT.replace("{sentence}", "A man is playing a guitar."),
    "",
    " ",
    "  two  spaces\tand a tab\nand a newline",
    "Ünïcödé, 中文, العربية, emoji 🙂👍🏽, and a lone accent: é",
    "<s> </s> <pad> <|endoftext|> <|im_end|> special tokens written as text",
    '"quotes" and \'apostrophes\' in: "one word:"',
    "x" * 300,
]


def assert_same_as_transformers(ours: Tokenizer, theirs) -> None:
    for special in (True, False):
        expected = theirs(TEXTS, add_special_tokens=special, return_offsets_mapping=True)
        got = ours(TEXTS, add_special_tokens=special, return_offsets_mapping=True)
        assert got["input_ids"] == expected["input_ids"]
        assert [[tuple(o) for o in row] for row in got["offset_mapping"]] == [
            [tuple(o) for o in row] for row in expected["offset_mapping"]
        ]
        assert ours(TEXTS[0], add_special_tokens=special)["input_ids"] == expected["input_ids"][0]
    assert (ours.pad_token_id, ours.eos_token_id) == (theirs.pad_token_id, theirs.eos_token_id)
    for ids in theirs(TEXTS)["input_ids"]:
        for skip in (True, False):
            assert ours.decode(ids, skip_special_tokens=skip) == theirs.decode(ids, skip_special_tokens=skip)


@pytest.mark.parametrize("arch", list(CONFIGS))
@pytest.mark.parametrize("saved_by_cpembed", [True, False])
def test_a_tiny_models_tokenizer_matches_transformers(arch, saved_by_cpembed, tiny_models, tmp_path):
    save_tokenizer(tiny_models[arch], tmp_path)
    assert_same_as_transformers(load_tokenizer(tmp_path, saved_by_cpembed), AutoTokenizer.from_pretrained(tmp_path))


def test_a_transformers_tokenizer_is_reduced_to_its_rust_tokenizer(tiny_models, tmp_path):
    save_tokenizer(tiny_models["llama"], tmp_path)
    theirs = AutoTokenizer.from_pretrained(tmp_path)
    ours = Tokenizer.of(theirs)
    assert ours.backend is theirs.backend_tokenizer and Tokenizer.of(ours) is ours
    assert_same_as_transformers(ours, theirs)


@pytest.mark.model
@pytest.mark.parametrize("name", list(BUILTIN_MODELS))
def test_a_builtin_models_tokenizer_matches_transformers(name):
    spec = BUILTIN_MODELS[name]
    if not models_module._cache_entry(spec.name, spec.sha256).is_dir() and models_module.installed_parts(spec) is None:
        pytest.skip(f"{name} is not installed ({spec.install})")
    folder = models_module._builtin_folder(spec)
    assert_same_as_transformers(load_tokenizer(folder, saved_by_cpembed=True), AutoTokenizer.from_pretrained(folder))
