"""Dynamic batching: concurrent requests' sentences gathered into one forward batch.

The model runs in one worker thread, never in the event loop. A request waits at most
`max_wait_ms` for company before its batch starts; each caller gets exactly its own rows back.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidValueError
from ..validation import integer


class QueueFull(Exception):
    """More sentences are waiting than the service accepts; the caller should retry later."""


@dataclass
class _Job:
    texts: list[str]
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


class DynamicBatcher:
    """Runs `embed(list_of_texts)` on batches gathered from concurrent callers.

    Args:
        embed: embeds one gathered batch; returns an array with a row per text, or a tuple of
            such arrays (each caller gets its own rows of each).
        max_batch_size: sentences per gathered batch (a single larger request runs whole).
        max_wait_ms: how long the first request of a batch waits for others.
        max_queue: sentences allowed to wait; beyond it `submit` raises QueueFull.
    """

    def __init__(
        self,
        embed: Callable[[list[str]], np.ndarray | tuple[np.ndarray, ...]],
        max_batch_size: int = 32,
        max_wait_ms: float = 5.0,
        max_queue: int = 4096,
    ) -> None:
        integer("max_batch_size", max_batch_size)
        integer("max_queue", max_queue)
        if max_wait_ms < 0:
            raise InvalidValueError(f"max_wait_ms must be >= 0, got {max_wait_ms!r}")
        self.embed, self.max_batch_size, self.max_queue = embed, max_batch_size, max_queue
        self.max_wait = max_wait_ms / 1000
        self._jobs: deque[_Job] = deque()
        self._waiting = 0  # sentences queued, not yet taken by the worker
        self._condition = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._work, name="cpembed-batcher", daemon=True)
        self.batches = 0  # how many forward batches ran: the load check reports it

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Finish every queued job, then end the worker."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        if self._thread.is_alive():
            self._thread.join()

    async def submit(self, texts: list[str]):
        """`embed`'s result for `texts` alone, in order, computed in some gathered batch."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._condition:
            if self._stopping:
                raise QueueFull("the service is shutting down")
            if self._waiting and self._waiting + len(texts) > self.max_queue:
                raise QueueFull(f"{self._waiting} sentences are waiting (limit {self.max_queue})")
            self._jobs.append(_Job(texts, future, loop))
            self._waiting += len(texts)
            self._condition.notify_all()
        return await future

    def _take(self) -> list[_Job] | None:
        """The next batch of jobs, after waiting up to max_wait for it to fill; None = stop."""
        with self._condition:
            while not self._jobs and not self._stopping:
                self._condition.wait()
            if not self._jobs:
                return None
            deadline = time.monotonic() + self.max_wait
            while self._waiting < self.max_batch_size and not self._stopping:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._condition.wait(remaining)
            batch, size = [], 0
            while self._jobs and (not batch or size + len(self._jobs[0].texts) <= self.max_batch_size):
                job = self._jobs.popleft()
                batch.append(job)
                size += len(job.texts)
            self._waiting -= size
            return batch

    def _work(self) -> None:
        while (batch := self._take()) is not None:
            try:
                results = self.embed([text for job in batch for text in job.texts])
            except Exception as error:
                if len(batch) == 1:  # the worker lives on; the caller hears what failed
                    batch[0].loop.call_soon_threadsafe(_fail, batch[0].future, error)
                    continue
                # One caller's input must not fail the others: run each job alone.
                for job in batch:
                    self._run_alone(job)
                continue
            self.batches += 1
            start = 0
            for job in batch:
                rows = slice(start, start + len(job.texts))
                mine = tuple(r[rows] for r in results) if isinstance(results, tuple) else results[rows]
                start += len(job.texts)
                job.loop.call_soon_threadsafe(_succeed, job.future, mine)

    def _run_alone(self, job: _Job) -> None:
        try:
            results = self.embed(job.texts)
        except Exception as error:
            job.loop.call_soon_threadsafe(_fail, job.future, error)
            return
        self.batches += 1
        job.loop.call_soon_threadsafe(_succeed, job.future, results)


def _succeed(future: asyncio.Future, rows) -> None:
    if not future.done():  # the caller may have gone away
        future.set_result(rows)


def _fail(future: asyncio.Future, error: Exception) -> None:
    if not future.done():
        future.set_exception(error)
