"""`GET /metrics`: Prometheus counters that match what the service answered."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from cpembed import CPConfig, CPEncoder

service = pytest.importorskip("cpembed.service")
parser = pytest.importorskip("prometheus_client.parser")


def call(base: str, path: str, body=None, key: str | None = None) -> tuple[int, bytes]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {key}"} if key else {})
    request = urllib.request.Request(base + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in parser.text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_what_the_service_answered(tiny_models):
    encoder = CPEncoder(tiny_models["llama"], cp=CPConfig(layer=3, alpha=2.0))
    app = service.create_app(encoder, "tiny", service.Limits(max_body_bytes=2_000), api_key="k")
    tokens = 0
    with service.BackgroundServer(app) as base:
        for texts in (["A cat sits."], ["Two dogs run.", "A bird sings.", "Rain falls."]):
            status, body = call(base, "/v1/embeddings", {"model": "tiny", "input": texts}, key="k")
            assert status == 200
            tokens += json.loads(body)["usage"]["total_tokens"]
        assert call(base, "/v1/embeddings", {"model": "tiny", "input": []}, key="k")[0] == 400
        assert call(base, "/v1/embeddings", b"x" * 5_000, key="k")[0] == 413
        assert call(base, "/v1/embeddings", {"model": "tiny", "input": ["a"]})[0] == 401
        assert call(base, "/rerank", {"query": "a cat", "texts": ["a dog", "a cat"]}, key="k")[0] == 200
        status, body = call(base, "/metrics")  # no key needed, as for /health
    assert status == 200
    found = samples(body.decode())
    route = (("route", "/v1/embeddings"),)

    def requests(status: str) -> float:
        return found[("cpembed_requests_total", (("route", "/v1/embeddings"), ("status", status)))]

    assert (requests("200"), requests("400"), requests("413"), requests("401")) == (2, 1, 1, 1)
    assert found[("cpembed_requests_total", (("route", "/rerank"), ("status", "200")))] == 1
    assert found[("cpembed_refusals_total", (("status", "413"),))] == 1
    assert found[("cpembed_request_seconds_count", route)] == 5
    assert found[("cpembed_sentences_total", ())] == 4 + 3  # two embedding requests, then a query and two texts
    assert found[("cpembed_tokens_total", ())] >= tokens > 0
    assert found[("cpembed_queue_wait_seconds_count", ())] == 3  # the requests that reached the model
    assert found[("cpembed_batch_size_count", ())] >= 1
    assert found[("cpembed_batch_size_sum", ())] == 7
    assert ("cpembed_queue_seconds", ()) in found
