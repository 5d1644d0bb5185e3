"""An OpenAI-compatible embeddings service over a CPEncoder (`cpembed serve`; extra `cpembed[serve]`)."""

from __future__ import annotations

import contextlib
import signal
import threading

from ..errors import require_extra

require_extra("serve", "pydantic", "starlette", "uvicorn")

import uvicorn  # noqa: E402

from .app import Limits, RequestError, create_app  # noqa: E402
from .batcher import DynamicBatcher, QueueFull  # noqa: E402

__all__ = ["BackgroundServer", "DynamicBatcher", "Limits", "QueueFull", "RequestError", "create_app", "serve"]


# What one server holds at once, and for how long: documented in docs/guide/service.md ("Limits").
MAX_CONNECTIONS = 256  # connections and requests in progress; beyond it new requests get 503
KEEP_ALIVE_SECONDS = 5  # an idle kept-alive connection is closed after this
MAX_HEADER_BYTES = 64 * 1024  # request line and headers


def serve(
    app,
    host: str = "127.0.0.1",
    port: int = 8000,
    graceful_timeout: float = 60.0,
    max_connections: int = MAX_CONNECTIONS,
) -> None:
    """Run the service until SIGINT/SIGTERM, then stop taking requests, let those in flight finish
    (for up to `graceful_timeout` seconds) and return: a clean shutdown exits with status 0."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        timeout_graceful_shutdown=graceful_timeout,
        limit_concurrency=max_connections,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        log_level="info",
    )
    _CleanExitServer(config).run()


class _CleanExitServer(uvicorn.Server):
    """uvicorn's server, which after a graceful shutdown on a signal does not raise the signal again
    (uvicorn does, so that the process would end with 143 for SIGTERM although nothing failed)."""

    @contextlib.contextmanager
    def capture_signals(self):
        if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class BackgroundServer:
    """The service on a free loopback port in a background thread (tests, load checks, notebooks).

    Example:
        >>> with BackgroundServer(create_app(encoder)) as url:     # doctest: +SKIP
        ...     OpenAI(base_url=url + "/v1", api_key="-").embeddings.create(...)
    """

    def __init__(self, app, graceful_timeout: float = 30.0) -> None:
        import socket
        import threading

        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=graceful_timeout)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> str:
        import time

        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the service did not start")
            time.sleep(0.01)
        return self.url

    def stop(self) -> None:
        """Ask the server to stop (in-flight requests finish first) and wait for it."""
        self.server.should_exit = True
        self.thread.join(60)

    def __exit__(self, *_) -> None:
        self.stop()
        self.socket.close()
