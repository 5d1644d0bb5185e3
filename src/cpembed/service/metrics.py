"""`GET /metrics`: the service's counters in Prometheus' text format (prometheus-client).

Each app has its own registry, so two services in one process (the tests) never share counts.
Requests are counted by route and status as they leave; refusals (408, 413, 429, 503) also on
their own; the batcher reports each gathered batch (its size) and how long each request waited
for its first batch; sentences and tokens are the ones the service already counts for `usage`.
"""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response

ROUTES = ("/v1/embeddings", "/rerank", "/v1/rerank", "/v1/models", "/health", "/metrics")
REFUSALS = (408, 413, 429, 503)
SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class ServiceMetrics:
    """The service's metrics, in a registry of their own."""

    def __init__(self, max_batch_size: int) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "cpembed_requests", "Requests answered, by route and status", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            "cpembed_request_seconds", "Time to answer, by route", ["route"], buckets=SECONDS, registry=r
        )
        self.refusals = Counter(
            "cpembed_refusals", "Requests refused for load or size, by status", ["status"], registry=r
        )
        self.queue_wait = Histogram(
            "cpembed_queue_wait_seconds",
            "Time from a request's arrival to its first batch",
            buckets=SECONDS,
            registry=r,
        )
        sizes = sorted({1, 2, 4, 8, 16, 32, 64, 128, 256, max_batch_size})
        self.batch_size = Histogram(
            "cpembed_batch_size",
            "Sentences per forward batch",
            buckets=[s for s in sizes if s <= max_batch_size],
            registry=r,
        )
        self.sentences = Counter("cpembed_sentences", "Sentences embedded", registry=r)
        self.tokens = Counter("cpembed_tokens", "Tokens of the sentences embedded, as usage counts them", registry=r)
        self.queued = Gauge("cpembed_queue_seconds", "Estimated seconds of work queued now", registry=r)

    def endpoint(self, _request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """Counts and times every HTTP request by route and the status it is answered with."""

    def __init__(self, app, metrics: ServiceMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        route = path if path in ROUTES else ("/v1/models" if path.startswith("/v1/models/") else "other")
        started, status = time.perf_counter(), 500

        async def sending(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)
            if status in REFUSALS:
                self.metrics.refusals.labels(str(status)).inc()
