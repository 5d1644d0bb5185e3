"""The HTTP service with real clients on loopback: the openai package, raw HTTP, many threads."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from conftest import SENTENCES
from cpembed import CPConfig, CPEncoder, preprocess
from cpembed.prompts import PROMPTEOL

service = pytest.importorskip("cpembed.service")
openai = pytest.importorskip("openai")

CP = CPConfig(layer=3, alpha=2.0)


@pytest.fixture(scope="module")
def encoder(tiny_models):
    return CPEncoder(tiny_models["llama"], cp=CP)


@pytest.fixture(scope="module")
def url(encoder):
    app = service.create_app(encoder, "tiny", service.Limits(max_inputs=8, max_chars=300, max_body_bytes=20_000))
    with service.BackgroundServer(app) as base:
        yield base


def post(url: str, body, headers: dict | None = None, raw: bytes | None = None) -> tuple[int, dict, dict]:
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(
        url + "/v1/embeddings", data=data, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as error:
        with error:  # closes the connection it holds
            return error.code, json.loads(error.read()), {k.lower(): v for k, v in error.headers.items()}


def expected(encoder, texts):
    return encoder.encode(texts, normalize_embeddings=True)


@pytest.mark.parametrize("encoding_format", [None, "float", "base64"])
def test_openai_client_gets_the_encoders_vectors(url, encoder, encoding_format):
    with openai.OpenAI(base_url=url + "/v1", api_key="unused") as client:
        _check_client(client, encoder, encoding_format)


def _check_client(client, encoder, encoding_format):
    options = {"encoding_format": encoding_format} if encoding_format else {}
    response = client.embeddings.create(model="tiny", input=SENTENCES, **options)
    assert [d.index for d in response.data] == list(range(len(SENTENCES))) and response.model == "tiny"
    if encoding_format == "base64":  # asked for explicitly, the client hands the strings back
        vectors = np.array([np.frombuffer(base64.b64decode(d.embedding), "<f4") for d in response.data])
    else:  # the client asks for base64 by itself and decodes it
        vectors = np.array([d.embedding for d in response.data])
    np.testing.assert_allclose(vectors, expected(encoder, SENTENCES), atol=1e-5)
    assert response.usage.prompt_tokens == response.usage.total_tokens == input_tokens(encoder, SENTENCES)
    single = client.embeddings.create(model="tiny", input="A man is playing a guitar.")
    np.testing.assert_allclose(single.data[0].embedding, expected(encoder, SENTENCES[:1])[0], atol=1e-5)
    assert single.usage.prompt_tokens == input_tokens(encoder, ["A man is playing a guitar."])


def input_tokens(encoder, texts) -> int:
    """The tokens of the texts as sent, with no special tokens: what OpenAI's usage counts."""
    return sum(len(encoder.lm.tokenizer(text, add_special_tokens=False)["input_ids"]) for text in texts)


def test_usage_counts_the_inputs_tokens_not_the_prompts_the_model_reads(url, encoder):
    """`usage.prompt_tokens` is OpenAI's: the tokens of the input itself. The prompt the model reads
    (cpembed's template around the cleaned sentence, with the tokenizer's <s>) is longer, and the
    count does not depend on it."""
    text = "A man is playing a guitar"
    tokenizer = encoder.lm.tokenizer
    alone = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    prompt = tokenizer(PROMPTEOL.replace("{sentence}", preprocess(text)))["input_ids"]
    assert prompt[0] == tokenizer.backend.token_to_id("<s>") and len(prompt) > alone + 1  # the template's words and <s>
    status, body, _ = post(url, {"model": "tiny", "input": [text, text + " today"]})
    today = len(tokenizer(text + " today", add_special_tokens=False)["input_ids"])
    assert status == 200 and body["usage"] == {"prompt_tokens": alone + today, "total_tokens": alone + today}
    assert post(url, {"model": "tiny", "input": text})[1]["usage"]["prompt_tokens"] == alone


def test_dimensions_truncate_and_renormalize(url, encoder):
    status, body, _ = post(url, {"model": "tiny", "input": SENTENCES[:2], "dimensions": 8})
    assert status == 200
    vectors = np.array([d["embedding"] for d in body["data"]])
    full = expected(encoder, SENTENCES[:2])[:, :8]
    np.testing.assert_allclose(vectors, full / np.linalg.norm(full, axis=1, keepdims=True), atol=1e-5)


@pytest.mark.parametrize("encoding_format", ["int8", "uint8", "binary", "ubinary"])
@pytest.mark.parametrize("dimensions", [None, 8])
def test_quantized_formats_are_sentence_transformers_with_fixed_steps(url, encoder, encoding_format, dimensions):
    """int8/uint8 take their steps from the built-in sentences' rows (normalized, and shortened as
    asked), so a text gets the same integers whatever it is sent with; binary packs the signs."""
    from cpembed.postprocess import BUILT_IN_SENTENCES
    from cpembed.quantize import calibration_ranges, quantize

    def shortened(rows):
        rows = rows[:, :dimensions] if dimensions else rows
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    options = {"encoding_format": encoding_format} | ({"dimensions": dimensions} if dimensions else {})
    status, body, _ = post(url, {"model": "tiny", "input": SENTENCES[:3]} | options)
    assert status == 200
    got = np.array([d["embedding"] for d in body["data"]])
    assert got.dtype.kind == "i"  # JSON integers, not floats
    ranges = calibration_ranges(shortened(expected(encoder, BUILT_IN_SENTENCES)))
    ranges = ranges if encoding_format in ("int8", "uint8") else None
    want = quantize(shortened(expected(encoder, SENTENCES[:3])), encoding_format, ranges)
    assert np.array_equal(got, want)
    alone = post(url, {"model": "tiny", "input": SENTENCES[1]} | options)[1]["data"][0]["embedding"]
    assert alone == body["data"][1]["embedding"]


def test_null_encoding_format_means_float_and_errors_name_the_field(url):
    status, body, _ = post(url, {"model": "tiny", "input": "x", "encoding_format": None, "user": None})
    assert status == 200 and isinstance(body["data"][0]["embedding"], list) and body["object"] == "list"
    assert post(url, {"model": "tiny", "input": ["a", 3]})[1]["error"]["param"] == "input"
    assert post(url, {"model": "tiny", "input": "x", "dimensions": 0})[1]["error"]["param"] == "dimensions"


def test_models_and_health(url, encoder):
    with urllib.request.urlopen(url + "/v1/models") as response:
        assert json.loads(response.read())["data"][0]["id"] == "tiny"
    with urllib.request.urlopen(url + "/v1/models/tiny") as response:
        assert json.loads(response.read())["id"] == "tiny"
    with urllib.request.urlopen(url + "/health") as response:
        health = json.loads(response.read())
    assert health["status"] == "ok" and health["settings"] == encoder.settings().digest()
    assert health["recipe"] == encoder.describe_recipe() == "recipe: none (the settings given)"
    from cpembed.spec import EncoderSpec

    assert EncoderSpec.from_dict(health["spec"]) == encoder.spec and health["spec_digest"] == encoder.spec.digest()


def test_concurrent_requests_each_get_their_own_rows(url, encoder):
    texts = [f"sentence number {i} is about {word}." for i, word in enumerate(["cats", "dogs", "rain", "tea"] * 6)]
    truth = expected(encoder, texts)
    barrier = threading.Barrier(12)

    def call(i: int):
        mine = texts[2 * i : 2 * i + 2]
        barrier.wait()
        status, body, _ = post(url, {"model": "tiny", "input": mine})
        return i, status, np.array([d["embedding"] for d in body["data"]])

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(call, range(12)))
    for i, status, vectors in results:
        assert status == 200
        np.testing.assert_allclose(vectors, truth[2 * i : 2 * i + 2], atol=1e-5)


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"model": "tiny"}, 400, "'input' is required"),
        ({"model": "tiny", "input": []}, 400, "empty list"),
        ({"model": "tiny", "input": ""}, 400, "input[0] is empty"),
        ({"model": "tiny", "input": ["ok", 3.5]}, 400, "input[1] must be a string, got a number"),
        ({"model": "tiny", "input": ["a", 3]}, 400, "input[1] must be a string, got a number"),
        ({"model": "tiny", "input": ["a", [1, 2]]}, 400, "input[1] must be a string, got an array"),
        ({"model": "tiny", "input": [1, 2, 3]}, 400, "token arrays are not supported"),
        ({"model": "tiny", "input": [[1, 2], [3]]}, 400, "token arrays are not supported"),
        ({"model": "tiny", "input": {"text": "x"}}, 400, "string or a list of strings"),
        ({"model": "tiny", "input": ["x"] * 9}, 400, "the limit is 8"),
        ({"model": "tiny", "input": "x" * 301}, 400, "301 characters"),
        ({"model": "tiny", "input": "x", "encoding_format": "int4"}, 400, "'encoding_format' must be one of"),
        ({"model": "tiny", "input": "x", "dimensions": 0}, 400, "'dimensions'"),
        ({"model": "tiny", "input": "x", "dimensions": True}, 400, "'dimensions'"),
        ({"model": "tiny", "input": "x", "dimensions": 1.5}, 400, "'dimensions' must be an integer from 1 to"),
        ({"model": "tiny", "input": "x", "dimensions": "8"}, 400, "'dimensions' must be an integer from 1 to"),
        ({"model": "tiny", "input": "x", "dimensions": 10**6}, 400, "'dimensions' must be an integer from 1 to"),
        ({"model": "tiny", "input": "x", "temperature": 1}, 400, "unrecognized field(s): temperature"),
        ({"model": "tiny", "input": "x", "user": 5}, 400, "'user' must be a string"),
        ({"input": "x"}, 400, "'model' is required"),
        ({"model": "gpt-4", "input": "x"}, 404, "not served here"),
        (["not", "an", "object"], 400, "must be a JSON object"),
    ],
)
def test_bad_requests_get_openai_style_4xx(url, body, status, words):
    code, answer, _ = post(url, body)
    assert code == status
    assert words in answer["error"]["message"] and answer["error"]["type"]


def test_hostile_bodies_get_400_and_hurt_nobody_else(url, encoder):
    surrogate = b'{"model": "tiny", "input": ["fine", "\\ud800 lone surrogate"]}'
    code, answer, _ = post(url, None, raw=surrogate)
    assert code == 400 and "input[1] is not valid Unicode text" in answer["error"]["message"]
    code, answer, _ = post(url, None, raw=b"[" * 5_000 + b"]" * 5_000)
    assert code == 400 and "not valid JSON" in answer["error"]["message"]
    huge_number = b'{"model": "tiny", "input": "x", "dimensions": ' + b"9" * 5000 + b"}"
    assert post(url, None, raw=huge_number)[0] == 400


def test_a_failing_request_does_not_fail_those_batched_with_it():
    def embed(texts):
        if "poison" in texts:
            raise RuntimeError("cannot embed poison")
        return np.array([[len(t)] for t in texts])

    batcher = service.DynamicBatcher(embed, max_batch_size=64, max_wait_ms=200)
    batcher.start()

    async def main():
        jobs = [batcher.submit(["good", "also good"]), batcher.submit(["poison"]), batcher.submit(["fine"])]
        return await asyncio.gather(*jobs, return_exceptions=True)

    try:
        good, poisoned, fine = asyncio.run(main())
        assert good[:, 0].tolist() == [4, 9] and fine[:, 0].tolist() == [4]
        assert isinstance(poisoned, RuntimeError)
    finally:
        batcher.stop()


def test_malformed_json_and_huge_bodies(url):
    code, answer, _ = post(url, None, raw=b'{"model": "tiny", "input": ["unterminated')
    assert code == 400 and "not valid JSON" in answer["error"]["message"]
    code, answer, _ = post(url, {"model": "tiny", "input": ["x" * 250] * 100})
    assert code == 413 and "larger than 20000 bytes" in answer["error"]["message"]
    code, _, _ = post(url, {"model": "tiny", "input": "still alive"})  # nothing above hurt the worker
    assert code == 200


def test_unknown_routes_and_methods_answer_in_the_same_format(url):
    for path, method in (("/v1/chat/completions", "POST"), ("/v1/embeddings", "GET")):
        request = urllib.request.Request(url + path, data=b"{}" if method == "POST" else None, method=method)
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(request)
        with error.value:
            assert error.value.code in (404, 405) and "error" in json.loads(error.value.read())


def test_api_key_is_checked_on_every_route_but_health(encoder):
    app = service.create_app(encoder, "tiny", api_key="s3cret")
    with service.BackgroundServer(app) as base:
        assert post(base, {"model": "tiny", "input": "x"})[0] == 401
        assert post(base, {"model": "tiny", "input": "x"}, {"Authorization": "Bearer wrong"})[0] == 401
        assert post(base, {"model": "tiny", "input": "x"}, {"Authorization": "Bearer s3cret"})[0] == 200
        assert post(base, {"model": "tiny", "input": "x"}, {"Authorization": "bearer s3cret"})[0] == 200
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(base + "/v1/models")
        with error.value:
            assert error.value.code == 401
        for path in ("/v1/nothing-here", "/admin", "/v1/models/other"):  # the key first, then the route
            with pytest.raises(urllib.error.HTTPError) as error:
                urllib.request.urlopen(base + path)
            with error.value:
                assert error.value.code == 401
        with urllib.request.urlopen(base + "/health") as response:
            assert response.status == 200
        with openai.OpenAI(base_url=base + "/v1", api_key="s3cret") as client:
            assert (
                len(client.embeddings.create(model="tiny", input="x").data[0].embedding) == encoder.embedding_dimension
            )


class SlowEncoder:
    """Wraps an encoder; each encode waits until released, so tests can hold the worker."""

    def __init__(self, encoder) -> None:
        self.encoder, self.release, self.started = encoder, threading.Event(), threading.Event()
        self.lm, self.cp, self.embedding_dimension = encoder.lm, encoder.cp, encoder.embedding_dimension
        self.settings, self.spec = encoder.settings, encoder.spec

    def encode(self, texts, **options):
        self.started.set()
        self.release.wait(30)
        return self.encoder.encode(texts, **options)


def test_a_full_queue_answers_503_with_retry_after(encoder):
    slow = SlowEncoder(encoder)
    app = service.create_app(slow, "tiny", service.Limits(max_queue=2, max_wait_ms=0))
    with service.BackgroundServer(app) as base, ThreadPoolExecutor(2) as pool:
        first = pool.submit(post, base, {"model": "tiny", "input": ["held by the worker"]})
        assert slow.started.wait(10)
        second = pool.submit(post, base, {"model": "tiny", "input": ["waits", "in the queue"]})
        time.sleep(0.3)
        try:
            code, answer, headers = post(base, {"model": "tiny", "input": ["one too many"]})
        finally:
            slow.release.set()
        assert code == 503 and headers.get("retry-after") == "1" and "busy" in answer["error"]["message"]
        assert first.result()[0] == 200 and second.result()[0] == 200


def test_shutdown_finishes_in_flight_requests(encoder):
    slow = SlowEncoder(encoder)
    server = service.BackgroundServer(service.create_app(slow, "tiny"))
    with ThreadPoolExecutor(1) as pool:
        base = server.__enter__()
        in_flight = pool.submit(post, base, {"model": "tiny", "input": ["finish me"]})
        assert slow.started.wait(10)
        stopping = threading.Thread(target=server.stop)
        stopping.start()
        time.sleep(0.2)
        slow.release.set()
        status, body, _ = in_flight.result(30)
        stopping.join(30)
        server.socket.close()
    assert status == 200 and len(body["data"]) == 1


def test_batcher_gathers_concurrent_callers_and_survives_errors():
    calls = []

    def embed(texts):
        calls.append(list(texts))
        if "boom" in texts:
            raise RuntimeError("boom")
        return np.array([[len(t)] for t in texts])

    batcher = service.DynamicBatcher(embed, max_batch_size=64, max_wait_ms=200)
    batcher.start()

    async def main():
        jobs = [batcher.submit([f"{'x' * i}", f"{'y' * (i + 1)}"]) for i in range(1, 9)]
        return await asyncio.gather(*jobs)

    try:
        results = asyncio.run(main())
        assert len(calls) == 1  # eight callers, one forward batch
        for i, rows in enumerate(results, start=1):
            assert rows[:, 0].tolist() == [i, i + 1]
        with pytest.raises(RuntimeError, match="boom"):
            asyncio.run(batcher.submit(["boom"]))
        assert asyncio.run(batcher.submit(["after"]))[0, 0] == 5  # the worker lives on
    finally:
        batcher.stop()


def test_load_check_script_runs_and_reports(tiny_model_dir, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "load_check.py"
    target = tmp_path / "PERFORMANCE.md"
    subprocess.run(
        [sys.executable, str(script), "--model", tiny_model_dir, "--requests", "24", "--concurrency", "4"]
        + ["--unbatched", "--output", str(target)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    result = json.loads((tmp_path / "performance" / "service.json").read_text())
    assert set(result["runs"]) == {"batched", "one by one"} and result["sentences"] >= 24
    for run in result["runs"].values():
        assert run["served"] + run["refused"] == 24 and run["errors"] == 0
    assert "## The embeddings service" in target.read_text() and "refused early" in target.read_text()


def test_a_client_that_drops_mid_upload_is_not_an_error(encoder):
    """A disconnect is the client's doing: no ERROR in any log, no traceback, and the service serves on."""
    import logging
    import socket

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    keep = Keep(level=logging.WARNING)
    loggers = [logging.getLogger(name) for name in ("cpembed", "uvicorn", "uvicorn.error", "starlette")]
    for logger in loggers:
        logger.addHandler(keep)
    try:
        app = service.create_app(encoder, "tiny")
        with service.BackgroundServer(app) as base:
            port = int(base.rsplit(":", 1)[1])
            for _ in range(3):
                with socket.create_connection(("127.0.0.1", port)) as raw:
                    raw.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
                    raw.sendall(b'Content-Length: 100\r\n\r\n{"model": "tiny", "inp')
                time.sleep(0.3)
            status, body, _ = post(base, {"model": "tiny", "input": "still serving"})
    finally:
        for logger in loggers:
            logger.removeHandler(keep)
    assert status == 200 and len(body["data"]) == 1
    assert [r.getMessage() for r in records if r.levelno >= logging.ERROR] == []


def test_a_large_request_is_split_so_small_ones_are_not_starved():
    """Each batch takes one part of each waiting request in turn: a small request that arrives while a
    large one is being served gets its rows after one more batch, not after the whole large request."""
    batches: list[list[str]] = []
    go = threading.Event()

    def embed(texts):
        batches.append(list(texts))
        go.wait(30)  # the first batch is held until the small request is queued
        return np.array([[int(t.split()[1])] for t in texts])

    batcher = service.DynamicBatcher(embed, max_batch_size=10, max_wait_ms=0)
    batcher.start()

    async def main():
        large = asyncio.ensure_future(batcher.submit([f"large {i}" for i in range(100)]))
        await asyncio.sleep(0.05)  # the large request's first batch is running
        small = asyncio.ensure_future(batcher.submit(["small 7", "small 8"]))
        await asyncio.sleep(0.05)
        go.set()
        return await small, await large

    try:
        small, large = asyncio.run(main())
    finally:
        go.set()
        batcher.stop()
    assert small[:, 0].tolist() == [7, 8] and large[:, 0].tolist() == list(range(100))  # each caller's own rows
    # In turn: the large request's part already in line, then the small one, not after all ten of the large.
    assert "small 7" in batches[2] and len(batches) == 11
    assert all(len(batch) <= 10 for batch in batches)


def test_admission_follows_the_measured_speed_and_the_size_of_the_request():
    """At 100 sentences/s and a 0.5 s budget: a request is refused when the work queued ahead would
    delay it longer, with a Retry-After from that estimate; a small request still gets in."""
    hold = threading.Event()

    def embed(texts):
        hold.wait(30)
        time.sleep(len(texts) / 100)
        return np.zeros((len(texts), 1))

    batcher = service.DynamicBatcher(embed, max_batch_size=40, max_wait_ms=0, max_queue_seconds=0.5)
    batcher.start()
    hold.set()
    try:
        asyncio.run(batcher.submit(["warm"] * 40))  # measures the speed: about 100 sentences/s
        assert 50 < batcher.rate < 150
        hold.clear()

        async def main():
            running = asyncio.ensure_future(batcher.submit(["held by the worker"] * 40))
            await asyncio.sleep(0.05)
            first = asyncio.ensure_future(batcher.submit(["a"] * 40))  # 0 s queued ahead
            second = asyncio.ensure_future(batcher.submit(["b"] * 40))  # 0.4 s ahead: admitted
            await asyncio.sleep(0.05)
            with pytest.raises(service.QueueFull, match="limit 0.5 s") as refused:
                await batcher.submit(["c"] * 40)  # 0.8 s ahead
            small = asyncio.ensure_future(batcher.submit(["d"] * 2))  # 0.04 s ahead: admitted
            await asyncio.sleep(0.05)
            hold.set()
            await asyncio.gather(running, first, second, small)
            return refused.value

        refused = asyncio.run(main())
    finally:
        hold.set()
        batcher.stop()
    assert refused.retry_after == 1


@pytest.mark.slow
def test_cpembed_serve_exits_0_after_a_clean_shutdown_on_sigterm(tiny_model_dir):
    import os
    import signal
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "cpembed", "serve", "--model", tiny_model_dir, "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        assert post(f"http://127.0.0.1:{port}", {"model": tiny_model_dir, "input": "one more"})[0] == 200
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(60) == 0, process.stderr.read()
    finally:
        process.kill()
        process.wait()
        process.stderr.close()


def test_a_body_that_does_not_arrive_in_time_is_refused(encoder):
    import socket

    app = service.create_app(encoder, "tiny", service.Limits(body_seconds=0.5))
    with service.BackgroundServer(app) as base:
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
            raw.sendall(b'Content-Length: 100\r\n\r\n{"model": "tiny"')  # and then nothing more
            started = time.monotonic()
            answer = raw.recv(4096).decode()
            waited = time.monotonic() - started
            while "did not arrive" not in answer and (more := raw.recv(4096)):  # the body may come apart
                answer += more.decode()
    assert answer.startswith("HTTP/1.1 408") and "did not arrive within 0.5 s" in answer
    assert 0.4 < waited < 5


def test_a_whitened_service_serves_the_fit_and_reduces_dimensions_to_its_strongest_components(tiny_models):
    from cpembed.postprocess import fit

    plain = CPEncoder(tiny_models["llama"], cp=None)
    corpus = [f"line {i} speaks of {w}." for i in range(30) for w in ("cats", "rain", "tea", "money")]
    fitted = fit(plain.encode(corpus), "whiten", plain.settings().digest(), dimensions=16)
    whitened = CPEncoder(tiny_models["llama"], cp=None, postprocess=fitted)
    app = service.create_app(whitened, "tiny", service.Limits(max_inputs=8, max_chars=300, max_body_bytes=20_000))
    with service.BackgroundServer(app) as base:
        status, body, _ = post(base, {"input": SENTENCES[:3], "model": "tiny", "dimensions": 4})
        with urllib.request.urlopen(base + "/health") as response:
            health = json.loads(response.read())
    assert status == 200
    rows = fitted.apply(plain.encode(SENTENCES[:3]))[:, :4]
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    np.testing.assert_allclose([d["embedding"] for d in body["data"]], rows, atol=1e-5)
    assert health["postprocess"] == fitted.describe() and health["settings"] == plain.settings().digest()


def test_several_specs_are_served_under_their_names_sharing_one_model(tiny_model_dir, tmp_path):
    from click.testing import CliRunner

    from cpembed.cli import main
    from cpembed.cli.serve import specs_encoders

    paths = []
    for name, cp in (("a", CP), ("b", CPConfig(layer=2, norm="recover"))):
        paths.append(str(CPEncoder(tiny_model_dir, cp=cp).spec.save(tmp_path / f"{name}.json")))
    encoders = specs_encoders(paths, None)
    assert list(encoders) == ["a", "b"] and encoders["a"].lm is encoders["b"].lm
    app = service.create_app(encoders)
    with service.BackgroundServer(app) as base:
        with urllib.request.urlopen(base + "/v1/models") as response:
            assert [m["id"] for m in json.loads(response.read())["data"]] == ["a", "b"]
        for name in ("a", "b"):
            status, body, _ = post(base, {"model": name, "input": SENTENCES[:3]})
            assert status == 200 and body["model"] == name
            got = np.array([row["embedding"] for row in body["data"]])
            np.testing.assert_allclose(got, expected(encoders[name], SENTENCES[:3]), atol=1e-5)
        status, body, _ = post(base, {"model": "c", "input": ["x"]})
        assert status == 404 and "use one of 'a', 'b'" in body["error"]["message"]
        with urllib.request.urlopen(base + "/health") as response:
            health = json.loads(response.read())
        assert [m["model"] for m in health["models"]] == ["a", "b"]
    refused = CliRunner().invoke(main, ["similarity", "x", "y", "--spec", paths[0], "--spec", paths[1]])
    assert refused.exit_code == 2 and "give one --spec" in refused.output
    flags_too = CliRunner().invoke(
        main, ["serve", "--port", "8917", "--spec", paths[0], "--spec", paths[1], "--layer", "3"]
    )
    assert flags_too.exit_code == 2 and "drop --layer" in flags_too.output
