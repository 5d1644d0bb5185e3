"""The HTTP service: OpenAI's `/v1/embeddings` schema over a `CPEncoder`, with dynamic batching.

Every bad request gets a 4xx with OpenAI's error body (`{"error": {"message", "type", "param",
"code"}}`), checked before it reaches the model, so a bad request never costs the worker.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..encoder import CPEncoder
from ..errors import InvalidValueError
from ..postprocess import BUILT_IN_SENTENCES
from ..quantize import calibration_ranges, quantize
from .batcher import DynamicBatcher, QueueFull
from .metrics import MetricsMiddleware, ServiceMetrics

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """What one request may ask for, and how requests are batched."""

    max_inputs: int = 2048  # strings per request (OpenAI's own limit)
    max_chars: int = 20_000  # characters per string
    max_body_bytes: int = 8 * 2**20
    body_seconds: float = 30.0  # the most a request body may take to arrive (a slow upload holds a connection)
    max_batch_size: int = 32  # sentences per forward batch
    max_wait_ms: float = 5.0  # how long a request waits for others to share its batch
    max_queue: int = 4096  # sentences waiting, at any speed; beyond it, 503 with Retry-After
    max_queue_seconds: float = 30.0  # the longest the work queued ahead may delay a request, at the measured speed


class RequestError(Exception):
    """A request the service refuses: an HTTP status and OpenAI's error fields."""

    def __init__(
        self, status: int, message: str, param: str | None = None, code: str | None = None, retry_after: int = 1
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.retry_after = retry_after

    def response(self) -> JSONResponse:
        kind = {401: "authentication_error", 404: "not_found_error", 503: "server_error"}.get(
            self.status, "invalid_request_error"
        )
        body = {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}
        headers = {"Retry-After": str(self.retry_after)} if self.status == 503 else None
        return JSONResponse(body, status_code=self.status, headers=headers)


class EmbeddingRequest(BaseModel):
    """OpenAI's embeddings request. Validate with `context={"limits": Limits, "width": int}`."""

    model_config = ConfigDict(extra="forbid", strict=True)  # strict: no "8" or True for 8

    input: str | list[str]
    model: str
    # null: float. The quantized formats are sentence-transformers' precisions (Cohere's embedding types)
    encoding_format: Literal["float", "base64", "int8", "uint8", "binary", "ubinary"] | None = "float"
    dimensions: Annotated[int, Field(ge=1)] | None = None
    user: str | None = None

    @field_validator("input", mode="before")
    @classmethod
    def _no_tokens(cls, value):
        # OpenAI also takes tokens: a list of ints, or a list of such lists. Anything else is a wrong item.
        if isinstance(value, list) and value:
            if all(type(t) is int for t in value) or all(isinstance(t, list) for t in value):
                raise InvalidValueError("token arrays are not supported: send text")
        return value

    @field_validator("input")
    @classmethod
    def _texts(cls, value: str | list[str], info: ValidationInfo) -> list[str]:
        return _checked_texts([value] if isinstance(value, str) else value, info.context["limits"], "input")

    @field_validator("dimensions")
    @classmethod
    def _fits(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and value > info.context["width"]:
            raise InvalidValueError(f"'dimensions' must be {_expected('dimensions', info.context['width'])}")
        return value


class RerankRequest(BaseModel):
    """A rerank request in TEI's shape (`texts`, `return_text`, `raw_scores`, `truncate`) or in
    infinity's and Cohere's (`documents`, `return_documents`, `top_n`, `model`)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    query: str
    texts: list[str] | None = None
    documents: list[str] | None = None
    top_n: Annotated[int, Field(ge=1)] | None = None
    return_documents: bool = False
    return_text: bool = False
    raw_scores: bool = False  # TEI: a cross-encoder's logits; a cosine has none, so the scores are the same
    truncate: bool | None = None  # TEI: long inputs are always cut to max_length here
    truncation_direction: Literal["right", "Right"] | None = None
    model: str | None = None

    @field_validator("query")
    @classmethod
    def _query(cls, value: str, info: ValidationInfo) -> str:
        return _checked_texts([value], info.context["limits"], "query")[0]

    @field_validator("texts", "documents")
    @classmethod
    def _candidates(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        return None if value is None else _checked_texts(value, info.context["limits"], info.field_name)


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | list[int] | str  # int: a quantized encoding_format; str: "base64"


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: Usage


def create_app(
    encoder: CPEncoder | dict[str, CPEncoder],
    model_name: str | None = None,
    limits: Limits = Limits(),
    api_key: str | None = None,
) -> Starlette:
    """The service for one encoder (`model_name` is the id clients send; default: the model's
    name), or for several: a dict of served name -> encoder, each answered under its own name
    (encoders may share one loaded model). One worker runs every model's batches."""
    encoders = encoder if isinstance(encoder, dict) else {model_name or encoder.lm.name: encoder}
    if not encoders:
        raise InvalidValueError("serve at least one encoder")
    names = list(encoders)
    name, encoder = names[0], encoders[names[0]]  # the first: what /health describes at its top level
    created = int(time.time())

    def served(wanted: str | None) -> str:
        """The served name a request names (None: the only one), or 404 with the list."""
        if wanted is None and len(names) == 1:
            return name
        if wanted not in encoders:
            listed = ", ".join(repr(n) for n in names)
            raise RequestError(
                404 if wanted is not None else 400,
                f"the model {wanted!r} is not served here; use one of {listed}"
                if wanted is not None
                else f"name the 'model': one of {listed}",
                "model",
                "model_not_found" if wanted is not None else None,
            )
        return wanted

    def embed(items: list) -> tuple[np.ndarray, np.ndarray]:
        # In the worker thread: a tokenizer must not be used by two threads at once. An item is
        # (served name, role, text): role None, or "query"/"document" for rerank, whose query and
        # documents may have prompts of their own.
        groups = dict.fromkeys((model, role) for model, role, _ in items)
        texts = [text for _, _, text in items]
        vectors = np.zeros((len(texts), max(encoders[m].embedding_dimension for m, _ in groups)), np.float32)
        for model, role in groups:
            rows = [i for i, (m, r, _) in enumerate(items) if (m, r) == (model, role)]
            chosen = encoders[model] if role is None else encoders[model].for_role(role)
            found = chosen.encode([texts[i] for i in rows], batch_size=limits.max_batch_size, normalize_embeddings=True)
            vectors[rows, : found.shape[1]] = found
        tokens = np.zeros(len(texts), np.int64)
        for model in dict.fromkeys(m for m, _ in groups):
            rows = [i for i, (m, _, _) in enumerate(items) if m == model]
            counted = encoders[model].lm.tokenizer([texts[i] for i in rows], add_special_tokens=False)["input_ids"]
            tokens[rows] = [len(ids) for ids in counted]
        metrics.sentences.inc(len(texts))
        metrics.tokens.inc(int(tokens.sum()))
        return vectors, tokens

    metrics = ServiceMetrics(limits.max_batch_size)
    batcher = DynamicBatcher(
        embed,
        limits.max_batch_size,
        limits.max_wait_ms,
        limits.max_queue,
        limits.max_queue_seconds,
        on_batch=metrics.batch_size.observe,
        on_wait=metrics.queue_wait.observe,
    )
    metrics.queued.set_function(batcher.queued_now)

    @asynccontextmanager
    async def lifespan(_app):
        batcher.start()
        try:
            yield
        finally:
            batcher.stop()  # the server has finished its in-flight requests by now

    calibration: dict[str, np.ndarray] = {}  # served name -> its normalized built-in sentences' rows

    async def calibrated(model: str) -> np.ndarray:
        # int8/uint8 need each dimension's range fixed once, or the same text would get other integers
        # in another request: cpembed's built-in sentences give it, at the first request that asks.
        if model not in calibration:
            vectors, _ = await batcher.submit([(model, None, text) for text in BUILT_IN_SENTENCES])
            calibration[model] = vectors[:, : encoders[model].embedding_dimension]
        return calibration[model]

    async def embeddings(request: Request) -> Response:
        body = await _read_body(request, limits.max_body_bytes, limits.body_seconds)
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):  # bad JSON, bad UTF-8, absurd nesting or numbers
            raise RequestError(400, "the body is not valid JSON (or nests too deeply)") from None
        wanted = payload.get("model") if isinstance(payload, dict) else None
        # the named model's width checks 'dimensions'; a model that is not a served name is refused later
        width = encoders[wanted if isinstance(wanted, str) and wanted in encoders else name].embedding_dimension
        try:
            asked = EmbeddingRequest.model_validate(payload, context={"limits": limits, "width": width})
        except ValidationError as error:
            raise _refusal(error, width) from None
        model = served(asked.model)
        try:
            vectors, tokens = await batcher.submit([(model, None, text) for text in asked.input])
        except QueueFull as error:
            message = f"the service is busy ({error}); retry in {error.retry_after} s"
            raise RequestError(503, message, code="queue_full", retry_after=error.retry_after) from None
        vectors = _shortened(vectors[:, :width], asked.dimensions)  # a wider model's batch pads with zeros
        if asked.encoding_format in ("int8", "uint8"):
            ranges = calibration_ranges(_shortened(await calibrated(model), asked.dimensions))
            vectors = quantize(vectors, asked.encoding_format, ranges)
        elif asked.encoding_format in ("binary", "ubinary"):
            vectors = quantize(vectors, asked.encoding_format)
        tokens = int(tokens.sum())
        answer = EmbeddingList(
            data=[
                Embedding(index=i, embedding=_encode_vector(row, asked.encoding_format))
                for i, row in enumerate(vectors)
            ],
            model=model,
            usage=Usage(prompt_tokens=tokens, total_tokens=tokens),
        )
        # pydantic writes the floats several times faster than json.dumps
        return Response(answer.model_dump_json(), media_type="application/json")

    async def rerank(request: Request) -> Response:
        body = await _read_body(request, limits.max_body_bytes, limits.body_seconds)
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            raise RequestError(400, "the body is not valid JSON (or nests too deeply)") from None
        try:
            asked = RerankRequest.model_validate(payload, context={"limits": limits})
        except ValidationError as error:
            raise _refusal(error, encoder.embedding_dimension) from None
        if (asked.texts is None) == (asked.documents is None):
            raise RequestError(400, "send the candidates as 'texts' (TEI) or as 'documents' (infinity, Cohere)")
        model = served(asked.model)
        candidates = asked.texts if asked.texts is not None else asked.documents
        items = [(model, "query", asked.query)] + [(model, "document", t) for t in candidates]
        try:
            vectors, tokens = await batcher.submit(items)
        except QueueFull as error:
            message = f"the service is busy ({error}); retry in {error.retry_after} s"
            raise RequestError(503, message, code="queue_full", retry_after=error.retry_after) from None
        scores = np.clip(vectors[1:] @ vectors[0], -1.0, 1.0)
        order = np.argsort(-scores, kind="stable")[: asked.top_n]
        if asked.texts is not None:  # TEI: a list of {index, score[, text]}
            ranked = [
                {"index": int(i), "score": float(scores[i])} | ({"text": candidates[i]} if asked.return_text else {})
                for i in order
            ]
            return JSONResponse(ranked)
        used = int(tokens.sum())
        results = [
            {
                "relevance_score": float(scores[i]),
                "index": int(i),
                "document": candidates[i] if asked.return_documents else None,
            }
            for i in order
        ]
        return JSONResponse(
            {
                "object": "rerank",
                "results": results,
                "model": model,
                "usage": {"prompt_tokens": used, "total_tokens": used},
                "id": f"rerank-{uuid.uuid4().hex}",
                "created": int(time.time()),
            }
        )

    def entry(served_name: str) -> dict:
        return {"id": served_name, "object": "model", "created": created, "owned_by": "cpembed"}

    async def models(request: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [entry(n) for n in names]})

    async def model(request: Request) -> JSONResponse:
        return JSONResponse(entry(served(request.path_params["model_id"])))

    def described(served_name: str) -> dict:
        one = encoders[served_name]
        post = {"postprocess": one.postprocess.describe()} if one.postprocess else {}
        # settings: the embedding cache's digest for these settings; spec: what it was built from
        return {
            "model": served_name,
            "settings": one.settings().digest(),
            "recipe": one.describe_recipe(),
            "spec": one.spec.to_dict(),
            "spec_digest": one.spec.digest(),
        } | post

    async def health(_request: Request) -> JSONResponse:
        several = {"models": [described(n) for n in names]} if len(names) > 1 else {}
        return JSONResponse({"status": "ok"} | described(name) | several)

    async def request_error(_request: Request, error: RequestError) -> JSONResponse:
        return error.response()

    async def http_error(_request: Request, error: HTTPException) -> JSONResponse:
        return RequestError(error.status_code, str(error.detail)).response()

    async def client_gone(_request: Request, _error: ClientDisconnect) -> Response:
        # The client closed the connection before its request was whole: nothing went wrong here,
        # and nobody is left to answer (the server drops what is sent to a closed connection).
        return Response(status_code=400)

    async def internal_error(_request: Request, error: Exception) -> JSONResponse:
        logger.error("request failed", exc_info=error)  # the details stay in the server's log
        body = {"error": {"message": "internal error", "type": "server_error", "param": None, "code": None}}
        return JSONResponse(body, status_code=500)

    return Starlette(
        routes=[
            Route("/v1/embeddings", embeddings, methods=["POST"]),
            Route("/rerank", rerank, methods=["POST"]),
            Route("/v1/rerank", rerank, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/models/{model_id:path}", model, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/metrics", metrics.endpoint, methods=["GET"]),
        ],
        middleware=[Middleware(MetricsMiddleware, metrics=metrics)]
        + ([Middleware(RequireKey, key=api_key)] if api_key is not None else []),
        exception_handlers={
            RequestError: request_error,
            HTTPException: http_error,
            ClientDisconnect: client_gone,
            Exception: internal_error,
        },
        lifespan=lifespan,
    )


class RequireKey:
    """Every route but /health and /metrics asks for `Authorization: Bearer <key>` first: an unknown route or a
    bad request without the key gets 401, not 404 or 400, so nothing is learned without it."""

    def __init__(self, app, key: str) -> None:
        self.app, self.key = app, key.encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"] not in ("/health", "/metrics"):
            headers = dict(scope["headers"])
            scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self.key):
                message = "missing or wrong API key: send 'Authorization: Bearer <key>'"
                await RequestError(401, message, code="invalid_api_key").response()(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _read_body(request: Request, limit: int, seconds: float) -> bytes:
    """The body, refused when larger than `limit` bytes or slower than `seconds` to arrive."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"the request body is larger than {limit} bytes")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(seconds):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise RequestError(413, f"the request body is larger than {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise RequestError(408, f"the request body did not arrive within {seconds:g} s") from None
    return b"".join(chunks)


def _checked_texts(texts: list[str], limits: Limits, field: str) -> list[str]:
    """Non-empty Unicode strings within the limits, or a message naming the field and item."""
    where = (lambda i: field) if field == "query" else (lambda i: f"{field}[{i}]")
    if not texts:
        raise InvalidValueError(f"'{field}' is an empty list")
    if len(texts) > limits.max_inputs:
        raise InvalidValueError(f"'{field}' has {len(texts)} items; the limit is {limits.max_inputs}")
    for i, text in enumerate(texts):
        if not text.strip():
            raise InvalidValueError(f"{where(i)} is empty")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: valid JSON, but not text any tokenizer takes
            raise InvalidValueError(f"{where(i)} is not valid Unicode text") from None
        if len(text) > limits.max_chars:
            raise InvalidValueError(f"{where(i)} has {len(text)} characters; the limit is {limits.max_chars}")
    return texts


def _expected(field: str, width: int) -> str:
    return {
        "input": "a string or a list of strings",
        "encoding_format": "one of 'float', 'base64', 'int8', 'uint8', 'binary', 'ubinary'",
        "dimensions": f"an integer from 1 to {width}",
        "query": "a string",
        "texts": "a list of strings",
        "documents": "a list of strings",
        "top_n": "a positive integer",
        "return_documents": "true or false",
        "return_text": "true or false",
        "raw_scores": "true or false",
        "truncate": "true or false",
    }.get(field, "a string")


def _refusal(error: ValidationError, width: int) -> RequestError:
    """What is wrong with a request body, as OpenAI's error: the field named, `input[1]` for an item."""
    errors = error.errors(include_url=False)
    unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden")
    if unknown:
        return RequestError(400, f"unrecognized field(s): {', '.join(unknown)}", param=unknown[0])
    # The deepest error is the most precise: `input: ["a", 3]` fails as a string and at list item 1.
    first = max(errors, key=lambda e: len(e["loc"]))
    if not first["loc"]:
        return RequestError(400, "the body must be a JSON object")
    field = str(first["loc"][0])
    index = [part for part in first["loc"] if isinstance(part, int)]
    if first["type"] == "value_error":  # the validators' own messages
        message = str(first["ctx"]["error"])
    elif first["type"] == "missing":
        message = f"'{field}' is required: {_expected(field, width)}"
    elif index:
        message = f"{field}[{index[0]}] must be a string, got {_json_type(first['input'])}"
    else:
        message = f"'{field}' must be {_expected(field, width)}"
    return RequestError(400, message, param=field)


def _json_type(value) -> str:
    """The JSON name of a decoded value's type, for messages to clients that speak JSON, not Python."""
    names = {bool: "a boolean", int: "a number", float: "a number", list: "an array", dict: "an object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _shortened(vectors: np.ndarray, dimensions: int | None) -> np.ndarray:
    """The first `dimensions` coordinates, normalized again (all of them: None)."""
    if dimensions is None:
        return vectors
    vectors = vectors[:, :dimensions]
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _encode_vector(row: np.ndarray, encoding_format: str | None):
    if encoding_format == "base64":  # little-endian float32 bytes, as OpenAI sends them
        return base64.b64encode(row.astype("<f4").tobytes()).decode("ascii")
    return row.tolist()
