"""Tiny random decoder models and a byte-level BPE tokenizer, all built in code (no downloads).

`CPEMBED_TEST_DEVICE=cuda` puts the tiny models on a GPU, so the proofs of equality against the
reference run on the CUDA kernels too (`make test-cuda`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    AutoModelForCausalLM,
    Gemma3TextConfig,
    LlamaConfig,
    MistralConfig,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen3Config,
)

from cpembed import PROMPTS, LanguageModel
from cpembed.prompts import IRRELEVANT

# Tiny models gain nothing from threads, and OpenMP threads that spin while another process
# holds the cores slow every small op down by orders of magnitude.
torch.set_num_threads(1)

TEST_DEVICE = torch.device(os.environ.get("CPEMBED_TEST_DEVICE", "cpu"))


@pytest.fixture(autouse=True)
def float32_when_auto(monkeypatch):
    """Tests prove paths equal in float32 (to ~1e-5). On a CPU with AVX512-BF16 or AMX,
    `dtype="auto"` means bfloat16, so every test runs as on a machine without them; the tests of
    "auto" itself set the hardware answer again."""
    import cpembed.models

    monkeypatch.setattr(cpembed.models, "native_bfloat16", lambda device: False)


# The evaluation data beside the repo (never copied into it). Tests reach it only through the
# `senteval_data`, `raw_stsb_data` and `beyond_data` fixtures, which skip where it is absent; every other test
# runs with the library's data search pointed at nothing, so a test that reads the shared data
# without the fixture fails on every machine, data or not, instead of only on a fresh clone.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def no_evaluation_data_by_default(monkeypatch):
    import cpembed.evaluation.beyond
    import cpembed.evaluation.data

    monkeypatch.setattr(cpembed.evaluation.data, "SEARCH_PATHS", ())
    monkeypatch.setattr(cpembed.evaluation.data, "RAW_STSB_PATHS", ())
    monkeypatch.setattr(cpembed.evaluation.beyond, "BEYOND_PATHS", ())
    for variable in ("CPEMBED_DATA", "CPEMBED_RAW_DATA", "CPEMBED_BEYOND_DATA"):
        monkeypatch.delenv(variable, raising=False)


def _shared(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.is_dir():
        pytest.skip(f"{'/'.join(parts)} not found beside the repo")
    return path


@pytest.fixture(scope="session")
def senteval_data() -> Path:
    """SentEval's real `downstream/` folder; the test is skipped where it is absent."""
    return _shared("senteval", "downstream")


@pytest.fixture(scope="session")
def raw_stsb_data() -> Path:
    """The raw STS Benchmark folder; the test is skipped where it is absent."""
    return _shared("stsb-raw")


@pytest.fixture(scope="session")
def beyond_data() -> Path:
    """The beyond-STS folder (retrieval, reranking, pairs, clustering, 11 languages); skipped where absent."""
    return _shared("beyond-sts")


def assert_same_embeddings(actual, expected, err_msg: str = "") -> None:
    """Equal up to float32 rounding: 1e-5 relative, and 1e-5 of the largest value absolute, since
    two paths that sum the same products in another order (packed vs padded batches, other matrix
    kernels) differ by about that much relative to the size of what they sum, not to each entry."""
    expected = np.asarray(expected)
    atol = 1e-5 * max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=atol, err_msg=err_msg)


CORPUS = [
    *(t.text for p in PROMPTS.values() for t in p.templates),
    IRRELEVANT,
    "A man is playing a guitar. Someone plays the guitar. The stock market fell sharply today.",
    "a girl is styling her hair . a girl is brushing her hair . two dogs run on the beach .",
]

SENTENCES = [
    "A man is playing a guitar.",
    "Someone plays the guitar",
    'She said "hello" to the whole room, then left?',
    "The stock market fell sharply today after the announcement of new tariffs on steel imports.",
    "ok",
    "two dogs run on the beach .",
]


def make_tokenizer(bos: bool) -> PreTrainedTokenizerFast:
    """Byte-level BPE like LLaMA-3/Qwen; `bos=True` prepends <s> to every text, like LLaMA-2."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        show_progress=False,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer)
    if bos:
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def save_tokenizer(lm: LanguageModel, folder) -> None:
    """Save a tiny model's tokenizer as transformers does (a model folder a user would have)."""
    PreTrainedTokenizerFast(
        tokenizer_object=lm.tokenizer.backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    ).save_pretrained(folder)


# GQA (4 query heads, 2 kv heads) and head_dim * heads (48) != hidden_size (32), on purpose.
_COMMON = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=6,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=12,
    max_position_embeddings=512,
    initializer_range=0.2,  # large enough that CP's patch moves the output by far more than 1e-5
    pad_token_id=0,
    bos_token_id=1,
    eos_token_id=2,
)
CONFIGS = {
    "llama": (LlamaConfig, True),
    "qwen2": (Qwen2Config, False),
    "mistral": (MistralConfig, True),
    "qwen3": (Qwen3Config, False),
    "gemma3_text": (Gemma3TextConfig, True),
}


def make_lm(arch: str) -> LanguageModel:
    config_class, bos = CONFIGS[arch]
    tokenizer = make_tokenizer(bos)
    config = config_class(vocab_size=len(tokenizer), **_COMMON)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).to(TEST_DEVICE)
    return LanguageModel(f"tiny-{arch}", model, tokenizer)


@pytest.fixture(scope="session")
def tiny_models() -> dict[str, LanguageModel]:
    return {arch: make_lm(arch) for arch in CONFIGS}


@pytest.fixture(params=["llama", "qwen2"])
def tiny_lm(request, tiny_models) -> LanguageModel:
    return tiny_models[request.param]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    """The tiny LLaMA saved as a Hugging Face folder, for the CLI and folder-loading paths."""
    lm = make_lm("llama")
    folder = tmp_path_factory.mktemp("models") / "tiny-llama"
    lm.model.save_pretrained(folder)
    save_tokenizer(lm, folder)
    return str(folder)
