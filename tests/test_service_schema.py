"""Property tests of the service's request schemas: whatever JSON a client sends, the answer is a
200 or an OpenAI-style 4xx naming what is wrong, never a 500 (the real server on loopback)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from cpembed import CPConfig, CPEncoder

service = pytest.importorskip("cpembed.service")
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# Any JSON value, nested a little.
SCALARS = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=12)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
WORDS = st.text(st.characters(codec="utf-8"), min_size=1, max_size=30).filter(str.strip)  # what a client means to send
TEXTS = st.text(max_size=40) | st.lists(st.text(max_size=40), max_size=5)


def body(fields: dict[str, st.SearchStrategy], required: dict[str, st.SearchStrategy]) -> st.SearchStrategy:
    """Requests near the schema: well-typed fields only (many get a 200), each known field left out,
    well typed or any JSON plus unknown fields now and then, or any JSON at all."""
    typed = st.fixed_dictionaries(required, optional={k: v for k, v in fields.items() if k not in required})
    chosen = {name: st.one_of(strategy, JSON) for name, strategy in fields.items()}
    known = st.fixed_dictionaries({}, optional=chosen)
    extra = st.dictionaries(st.sampled_from(["temperature", "extra", "Input"]), JSON, max_size=1)
    return st.one_of(typed, st.builds(lambda a, b: a | b, known, extra), JSON)


EMBEDDING = body(
    {
        "input": TEXTS,
        "model": st.sampled_from(["tiny", "other", ""]),
        "encoding_format": st.sampled_from(["float", "base64", "int8", "uint8", "binary", "ubinary", "int4"]),
        "dimensions": st.integers(-2, 40),
        "user": st.text(max_size=5),
    },
    {"input": WORDS | st.lists(WORDS, min_size=1, max_size=4), "model": st.just("tiny")},
)
RERANK = body(
    {
        "query": st.text(max_size=40),
        "texts": st.lists(st.text(max_size=40), max_size=5),
        "documents": st.lists(st.text(max_size=40), max_size=5),
        "top_n": st.integers(-2, 8),
        "return_documents": st.booleans(),
        "return_text": st.booleans(),
        "raw_scores": st.booleans(),
        "truncate": st.booleans(),
        "truncation_direction": st.sampled_from(["right", "Right", "left"]),
        "model": st.sampled_from(["tiny", "other"]),
    },
    {"query": WORDS, "texts": st.lists(WORDS, min_size=1, max_size=4)},
)


@pytest.fixture(scope="module")
def url(tiny_models):
    encoder = CPEncoder(tiny_models["llama"], cp=CPConfig(layer=3, alpha=2.0))
    app = service.create_app(encoder, "tiny", service.Limits(max_inputs=4, max_chars=30, max_body_bytes=4_000))
    with service.BackgroundServer(app) as base:
        yield base


def status_of(url: str, route: str, payload) -> tuple[int, object]:
    request = urllib.request.Request(
        url + route, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def check(code: int, answer) -> None:
    hypothesis.event(f"status {code}")  # pytest --hypothesis-show-statistics shows how many were answered
    assert code < 500, answer
    if code != 200:  # OpenAI's error body, with a message that says something
        assert isinstance(answer, dict) and answer["error"]["message"], answer


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=EMBEDDING)
def test_no_embeddings_request_gets_a_500(url, payload):
    check(*status_of(url, "/v1/embeddings", payload))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=RERANK, route=st.sampled_from(["/rerank", "/v1/rerank"]))
def test_no_rerank_request_gets_a_500(url, payload, route):
    check(*status_of(url, route, payload))
