"""The encode() contract users rely on, and clear errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import SENTENCES
from cpembed import PAPER_CP, CPConfig, CPEncoder, ModelNotFoundError, load_model
from cpembed.prompts import PRETENDED_COT, PROMPTEOL


@pytest.fixture
def encoder(tiny_lm):
    return CPEncoder(tiny_lm, cp=CPConfig(layer=3, alpha=2.0))


def test_shapes_types_and_order(encoder):
    d = encoder.embedding_dimension
    assert d == encoder.get_sentence_embedding_dimension() == 32
    many = encoder.encode(SENTENCES, batch_size=2)
    assert isinstance(many, np.ndarray) and many.dtype == np.float32 and many.shape == (len(SENTENCES), d)
    one = encoder.encode(SENTENCES[2])
    assert one.shape == (d,)
    np.testing.assert_allclose(one, many[2], atol=1e-5, rtol=1e-5)
    assert isinstance(encoder.encode(SENTENCES, convert_to_tensor=True), torch.Tensor)
    as_list = encoder.encode(SENTENCES, convert_to_numpy=False)
    assert isinstance(as_list, list) and len(as_list) == len(SENTENCES)
    normalized = encoder.encode(SENTENCES, normalize_embeddings=True)
    np.testing.assert_allclose(np.linalg.norm(normalized, axis=1), 1.0, rtol=1e-5)
    assert encoder.encode(iter(SENTENCES[:2])).shape == (2, d)  # any iterable of str


def test_empty_list_gives_an_empty_matrix(encoder):
    out = encoder.encode([])
    assert out.shape == (0, encoder.embedding_dimension) and out.dtype == np.float32


def test_empty_and_whitespace_sentences_embed_as_a_period(encoder):
    out = encoder.encode(["", "   ", "."])
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[0], out[2], atol=1e-5)
    np.testing.assert_allclose(out[1], out[2], atol=1e-5)


def test_huge_sentence_is_cut_to_max_length(tiny_lm):
    encoder = CPEncoder(tiny_lm, cp=CPConfig(layer=3), max_length=48)
    out = encoder.encode(["word " * 5000, "short."])
    assert out.shape == (2, 32) and np.isfinite(out).all()


def test_similarity_never_leaves_minus_one_to_one(encoder):
    rows = np.random.default_rng(0).normal(size=(50, encoder.embedding_dimension)).astype(np.float32)
    matrix = encoder.similarity(rows, rows)  # float32 rounding put 11 of these diagonals at 1.0000002
    assert matrix.max() <= 1.0 and matrix.min() >= -1.0
    np.testing.assert_allclose(np.diag(matrix), 1.0, rtol=1e-6)


def test_sentences_cut_to_fit_are_reported_once_per_call(tiny_lm, caplog):
    encoder = CPEncoder(tiny_lm, cp=CPConfig(layer=3), max_length=48)
    with caplog.at_level("WARNING", logger="cpembed"):
        encoder.encode(["word " * 200] * 5 + ["short."], batch_size=2)  # 3 batches, each prompt and aux cut
    cuts = [r.getMessage() for r in caplog.records if "to fit max_length" in r.getMessage()]
    assert cuts == ["cut 5 sentence(s) to fit max_length=48 tokens (the template is kept whole)"]


def test_layers_are_checked_before_the_weights_load(tiny_model_dir, monkeypatch):
    import cpembed.encoder

    def never(*args, **kwargs):
        raise AssertionError("the weights were loaded before the settings were checked")

    monkeypatch.setattr(cpembed.encoder, "load_model", never)
    with pytest.raises(ValueError, match=r"CP layer 99 is out of range for a 6-layer model: use 1\.\.6"):
        CPEncoder(tiny_model_dir, cp=CPConfig(layer=99))
    with pytest.raises(ValueError, match=r"0\.\.6 or -7\.\.-1"):
        CPEncoder(tiny_model_dir, cp=None, output_layer=99)
    with pytest.raises(ValueError, match="max_length"):
        CPEncoder(tiny_model_dir, max_length=0)


def test_similarity(encoder):
    matrix = encoder.similarity(SENTENCES[:3], SENTENCES[:2])
    assert matrix.shape == (3, 2)
    np.testing.assert_allclose(np.diag(matrix[:2]), 1.0, rtol=1e-5)
    e = encoder.encode(SENTENCES[:2])
    np.testing.assert_allclose(encoder.similarity(e, e), matrix[:2], atol=1e-5)


@pytest.mark.parametrize(("prompt", "template", "layer"), [("prompteol", PROMPTEOL, -1), ("cot", PRETENDED_COT, -2)])
def test_cp_changes_embeddings_and_none_is_plain(tiny_lm, prompt, template, layer):
    """cp=None is the plain prompt-based embedding: one forward pass of the filled template, the
    prompt's layer (PromptEOL the final normed state, CoT the one before) at its last token."""
    plain = CPEncoder(tiny_lm, prompt=prompt, cp=None).encode(SENTENCES)
    cleaned = [  # SENTENCES as the cleanup leaves them: '"' to "'", a final "?" to ".", else a "." added
        "A man is playing a guitar.",
        "Someone plays the guitar.",
        "She said 'hello' to the whole room, then left.",
        SENTENCES[3],
        "ok.",
        "two dogs run on the beach .",
    ]
    direct = []
    for sentence in cleaned:
        ids = torch.tensor([tiny_lm.tokenizer(template.replace("{sentence}", sentence))["input_ids"]])
        with torch.no_grad():
            states = tiny_lm.model(ids.to(tiny_lm.device), output_hidden_states=True).hidden_states
        assert len(states) == 7  # the embeddings and six layers
        direct.append(states[layer][0, -1].float().cpu().numpy())
    np.testing.assert_allclose(plain, np.stack(direct), atol=1e-5, rtol=0)
    steered = CPEncoder(tiny_lm, prompt=prompt, cp=CPConfig(layer=2, alpha=2.0)).encode(SENTENCES)
    assert np.abs(plain - steered).max() > 1e-2


def test_a_chosen_prompt_gets_cp_from_the_table(tiny_lm):
    assert CPEncoder(tiny_lm, recipe=None).cp == PAPER_CP["prompteol"] == CPConfig(layer=5, alpha=2.0)
    assert CPEncoder(tiny_lm, prompt="prompteol").cp == PAPER_CP["prompteol"]  # a prompt given: no recipe
    with pytest.raises(ValueError, match=r"CP layer 7 is out of range for a 6-layer model: use 1\.\.6"):
        CPEncoder(tiny_lm, prompt="knowledge")  # the paper's Knowledge default, l=7, is too deep here


@pytest.mark.parametrize(("bad", "kind"), [(["ok", 3], "an int"), (["ok", None], "None"), ([b"bytes"], "a bytes")])
def test_non_string_names_the_index(encoder, bad, kind):
    index = next(i for i, x in enumerate(bad) if not isinstance(x, str))
    with pytest.raises(TypeError, match=rf"sentences\[{index}\] is {kind}, expected str"):
        encoder.encode(bad)


@pytest.mark.parametrize("bad", [42, None, b"bytes", {"a": 1}])
def test_wrong_container_is_a_type_error(encoder, bad):
    with pytest.raises(TypeError, match="str or a list of str"):
        encoder.encode(bad)


@pytest.mark.parametrize("batch_size", [0, -1, 1.5, True])
def test_bad_batch_size(encoder, batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        encoder.encode(SENTENCES, batch_size=batch_size)


def test_layer_out_of_range_gives_the_valid_range(tiny_lm):
    with pytest.raises(ValueError, match=r"use 1\.\.6"):
        CPEncoder(tiny_lm, cp=CPConfig(layer=7))
    with pytest.raises(ValueError, match=r"0\.\.6 or -7\.\.-1"):
        CPEncoder(tiny_lm, cp=None, output_layer=7)
    with pytest.raises(ValueError, match="before the CP layer"):
        CPEncoder(tiny_lm, cp=CPConfig(layer=4), output_layer=2)


@pytest.mark.parametrize("kwargs", [{"layer": 0}, {"layer": -1}, {"layer": 2.0}])
def test_bad_cp_layer(kwargs):
    with pytest.raises(ValueError, match="layer must be an integer >= 1"):
        CPConfig(**kwargs)


@pytest.mark.parametrize("alpha", [0, -1.0, float("nan"), float("inf")])
def test_alpha_must_be_positive(alpha):
    with pytest.raises(ValueError, match="alpha must be a finite number > 0"):
        CPConfig(alpha=alpha)


def test_other_bad_settings(tiny_lm):
    with pytest.raises(ValueError, match="norm must be one of scale, recover"):
        CPConfig(norm="both")
    with pytest.raises(ValueError, match="site must be one of heads, ffn, hidden"):
        CPConfig(site="mlp")
    with pytest.raises(ValueError, match="exactly one"):
        CPConfig(aux_template="no placeholder")
    with pytest.raises(ValueError, match="unknown dtype"):
        CPEncoder(tiny_lm, dtype="float8")
    with pytest.raises(ValueError, match="max_length"):
        CPEncoder(tiny_lm, max_length=0)
    with pytest.raises(TypeError, match="cp must be a CPConfig"):
        CPEncoder(tiny_lm, cp={"layer": 3})
    with pytest.raises(TypeError, match="model must be a built-in name or a path, got an int"):
        CPEncoder(model=5)


def test_unknown_model_lists_the_choices():
    with pytest.raises(ModelNotFoundError, match="smollm2-135m, gemma3-270m, qwen2.5-coder-0.5b, qwen2.5-coder-1.5b"):
        load_model("llama-9000")


def test_bfloat16_runs_and_stays_close_to_float32(tiny_models):
    import copy

    lm = tiny_models["llama"]
    half = copy.deepcopy(lm)
    half.model.to(torch.bfloat16)
    cp = CPConfig(layer=3, alpha=2.0)
    fp32 = CPEncoder(lm, cp=cp).encode(SENTENCES)
    bf16 = CPEncoder(half, cp=cp).encode(SENTENCES)
    assert bf16.dtype == np.float32
    cosine = (fp32 * bf16).sum(1) / np.linalg.norm(fp32, axis=1) / np.linalg.norm(bf16, axis=1)
    assert cosine.min() > 0.99


def test_a_shared_model_is_never_converted_behind_another_encoder(tiny_lm):
    with pytest.raises(ValueError, match="load it with load_model"):
        CPEncoder(tiny_lm, dtype="bfloat16")
    assert tiny_lm.dtype == torch.float32
    CPEncoder(tiny_lm, dtype="float32", device=tiny_lm.device.type)  # matching settings are fine ("cuda" = "cuda:0")


@pytest.mark.parametrize("device", ["tpu", "cuda:99", "not a device"])
def test_bad_device_is_a_clear_error(tiny_lm, device):
    from cpembed.models import resolve_device

    with pytest.raises(ValueError, match="device"):
        resolve_device(device)


def test_similarity_edge_cases(encoder):
    assert encoder.similarity([], []).shape == (0, 0)
    assert encoder.similarity("a cat.", []).shape == (1, 0)
    assert encoder.similarity("a cat.", ["a dog.", "a car."]).shape == (1, 2)
    with pytest.raises(ValueError, match="width 32"):
        encoder.similarity(np.zeros((2, 5)), np.zeros((2, 5)))


def test_sentence_transformers_keyword_arguments(tiny_lm):
    encoder = CPEncoder(tiny_lm, cp=CPConfig(layer=3, alpha=2.0))
    texts = ["A man is playing a guitar.", "Someone plays the guitar."]
    plain = encoder.encode(texts)
    typical = encoder.encode(
        texts,
        batch_size=8,
        show_progress_bar=False,
        convert_to_tensor=True,
        normalize_embeddings=True,
        precision="float32",
        device=tiny_lm.device.type,
    )
    assert isinstance(typical, torch.Tensor)
    np.testing.assert_allclose(typical.numpy(), plain / np.linalg.norm(plain, axis=1, keepdims=True), atol=1e-6)
    np.testing.assert_allclose(encoder.encode(texts, prompt="query: "), encoder.encode(["query: " + t for t in texts]))
    short = encoder.encode(texts, truncate_dim=8, normalize_embeddings=True)
    assert short.shape == (2, 8) and np.allclose(np.linalg.norm(short, axis=1), 1.0)
    np.testing.assert_allclose(encoder.encode_query(texts), plain)
    np.testing.assert_allclose(encoder.encode_document(texts), plain)
    with pytest.raises(TypeError, match="does not take output_value, prompt_name; it takes batch_size"):
        encoder.encode(texts, prompt_name="query", output_value="token_embeddings")
    with pytest.raises(ValueError, match="precision must be one of float32, int8, uint8, binary, ubinary"):
        encoder.encode(texts, precision="float16")
    assert encoder.encode(texts, precision="ubinary").shape == (2, plain.shape[1] // 8)
    with pytest.raises(ValueError, match="int8 needs calibration ranges"):
        encoder.encode(texts[0], precision="int8")
    with pytest.raises(ValueError, match="truncate_dim must be an integer"):
        encoder.encode(texts, truncate_dim=10_000)
    with pytest.raises(TypeError, match="prompt must be a string"):
        encoder.encode(texts, prompt=3)


def test_queries_and_documents_take_their_own_prompts_when_given(tiny_lm):
    cp = CPConfig(layer=3, alpha=2.0)
    custom = 'A search query : "{sentence}" means in one word:"'
    encoder = CPEncoder(tiny_lm, cp=cp, query_prompt=custom, document_prompt="cot")
    query, document = encoder.encode_query(SENTENCES), encoder.encode_document(SENTENCES)
    # Both at this encoder's output layer (-1 for PromptEOL), whatever their own prompt's default (-2 for cot).
    expected_query = CPEncoder(tiny_lm, custom, cp=cp, output_layer=-1).encode(SENTENCES)
    expected_document = CPEncoder(tiny_lm, "cot", cp=cp, output_layer=-1).encode(SENTENCES)
    np.testing.assert_allclose(query, expected_query, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(document, expected_document, atol=1e-5, rtol=1e-5)
    assert encoder.for_role("document").output_layer == encoder.output_layer == tiny_lm.num_layers
    assert np.abs(query - encoder.encode(SENTENCES)).max() > 1e-3  # not the encoder's own prompt
    plain = CPEncoder(tiny_lm, cp=cp)  # no role prompts: queries and documents are encoded alike
    np.testing.assert_array_equal(plain.encode_query(SENTENCES), plain.encode_document(SENTENCES))
    with pytest.raises(ValueError, match="unknown prompt"):
        CPEncoder(tiny_lm, cp=cp, query_prompt="nope")
