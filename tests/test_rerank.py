"""Reranking: CPEncoder.rank, `POST /rerank` in TEI's and infinity's shapes, and `cpembed rerank`."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np
import pytest
from click.testing import CliRunner

from cpembed import CPConfig, CPEncoder
from cpembed.cli import main

service = pytest.importorskip("cpembed.service")

CP = CPConfig(layer=3, alpha=2.0)
QUERY = "What is Deep Learning?"
TEXTS = ["Deep Learning is not...", "Deep learning is...", "A cat sat on the mat.", "Neural networks learn."]


def manual_ranking(encoder, query, documents):
    q = encoder.encode_query([query], normalize_embeddings=True)[0]
    d = encoder.encode_document(documents, normalize_embeddings=True)
    scores = d @ q
    return [int(i) for i in np.argsort(-scores, kind="stable")], scores


@pytest.mark.parametrize("roles", [{}, {"query_prompt": "cot", "document_prompt": "knowledge"}])
def test_rank_orders_by_the_cosine_of_query_and_document_embeddings(tiny_lm, roles):
    encoder = CPEncoder(tiny_lm, cp=CP, **roles)
    order, scores = manual_ranking(encoder, QUERY, TEXTS)
    ranked = encoder.rank(QUERY, TEXTS, return_documents=True)
    assert [hit["corpus_id"] for hit in ranked] == order
    np.testing.assert_allclose([hit["score"] for hit in ranked], scores[order], atol=1e-5)
    assert [hit["text"] for hit in ranked] == [TEXTS[i] for i in order]
    assert [hit["corpus_id"] for hit in encoder.rank(QUERY, TEXTS, top_k=2)] == order[:2]
    assert encoder.rank(QUERY, []) == []
    with pytest.raises(TypeError, match="query must be a string"):
        encoder.rank(["a list"], TEXTS)
    with pytest.raises(TypeError, match=r"sentences\[1\]"):
        encoder.rank(QUERY, ["fine", 3])


@pytest.fixture(scope="module")
def url(tiny_models):
    encoder = CPEncoder(tiny_models["llama"], cp=CP)
    app = service.create_app(encoder, "tiny", service.Limits(max_inputs=8, max_chars=300))
    with service.BackgroundServer(app) as base:
        yield base, encoder


def rerank(base: str, body) -> tuple[int, object]:
    request = urllib.request.Request(
        base + "/rerank", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def test_teis_request_gets_teis_answer(url):
    base, encoder = url
    order, scores = manual_ranking(encoder, QUERY, TEXTS)
    status, answer = rerank(base, {"query": QUERY, "texts": TEXTS})  # TEI's README example, four texts
    assert status == 200 and [hit["index"] for hit in answer] == order
    np.testing.assert_allclose([hit["score"] for hit in answer], scores[order], atol=1e-5)
    assert all("text" not in hit for hit in answer)
    status, answer = rerank(base, {"query": QUERY, "texts": TEXTS, "return_text": True, "raw_scores": False})
    assert status == 200 and [hit["text"] for hit in answer] == [TEXTS[i] for i in order]


def test_infinitys_request_gets_infinitys_answer(url):
    base, encoder = url
    order, _ = manual_ranking(encoder, QUERY, TEXTS)
    body = {"model": "tiny", "query": QUERY, "documents": TEXTS, "return_documents": True, "top_n": 2}
    status, answer = rerank(base, body)
    assert status == 200 and answer["object"] == "rerank" and answer["model"] == "tiny"
    assert [r["index"] for r in answer["results"]] == order[:2]
    assert [r["document"] for r in answer["results"]] == [TEXTS[i] for i in order[:2]]
    assert answer["usage"]["total_tokens"] > 0
    status, plain = rerank(base, {"query": QUERY, "documents": TEXTS})
    assert status == 200 and all(r["document"] is None for r in plain["results"]) and len(plain["results"]) == 4


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"query": QUERY}, 400, "'texts' (TEI) or as 'documents'"),
        ({"query": QUERY, "texts": TEXTS, "documents": TEXTS}, 400, "'texts' (TEI) or as 'documents'"),
        ({"query": QUERY, "texts": []}, 400, "'texts' is an empty list"),
        ({"query": "", "texts": TEXTS}, 400, "query is empty"),
        ({"query": QUERY, "texts": ["ok", 3]}, 400, "texts[1] must be a string"),
        ({"query": QUERY, "texts": TEXTS, "top_n": 0}, 400, "top_n"),
        ({"query": QUERY, "texts": TEXTS, "colour": 1}, 400, "unrecognized field(s): colour"),
        ({"query": QUERY, "documents": TEXTS, "model": "other"}, 404, "not served here"),
        ({"query": QUERY, "texts": ["x"] * 9}, 400, "the limit is 8"),
    ],
)
def test_bad_rerank_requests_are_refused_with_the_field(url, body, status, says):
    got, answer = rerank(url[0], body)
    assert got == status and says in answer["error"]["message"]


def test_the_cli_prints_the_ranking(tiny_model_dir, tmp_path):
    encoder = CPEncoder(tiny_model_dir, cp=CP)
    order, scores = manual_ranking(encoder, QUERY, TEXTS)
    (tmp_path / "more.txt").write_text("\n".join(TEXTS[2:]) + "\n", encoding="utf-8")
    args = ["rerank", QUERY, *TEXTS[:2], "--file", str(tmp_path / "more.txt"), "--model", tiny_model_dir]
    done = CliRunner().invoke(main, [*args, "--layer", "3", "--alpha", "2", "--top-n", "3"])
    assert done.exit_code == 0, done.output
    lines = [line.split("\t") for line in done.stdout.splitlines()]
    assert [int(index) for _, index, _ in lines] == order[:3]
    assert [text for _, _, text in lines] == [TEXTS[i] for i in order[:3]]
    assert float(lines[0][0]) == pytest.approx(scores[order[0]], abs=1e-4)
    empty = CliRunner().invoke(main, ["rerank", QUERY, "--model", tiny_model_dir])
    assert empty.exit_code == 2 and "give documents to rank" in empty.output
