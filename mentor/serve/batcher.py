"""Dynamic batching: concurrent requests gathered into one model call on one thread.

Request handlers (on the event loop) `await batcher.submit(items)`; the inference thread
takes the first waiting job, then more until it holds `max_batch` items or `max_wait_ms`
has passed since that job arrived (it waits only while other requests are being handled:
a lone request is run at once), runs them as one call and hands each job its part of the
results through its asyncio future. The event loop never waits on the model. The queue is
bounded (`QueueFull`: the server answers 503 with Retry-After) and a job whose caller gave up
(a timeout) is skipped.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from mentor.serve.metrics import ServerMetrics

RunBatch = Callable[[list[Any]], list[Any]]


class _Empty:
    """No job came in time."""


EMPTY = _Empty()


class QueueFull(Exception):
    """More items wait for the model than the queue holds."""


@dataclass
class Job:
    """One request's items and the future its handler awaits."""

    items: list[Any]
    future: asyncio.Future[list[Any]]
    loop: asyncio.AbstractEventLoop
    batchable: bool = True
    run: RunBatch | None = None  # a job that is not batched brings its own function
    arrived: float = field(default_factory=time.monotonic)


class DynamicBatcher:
    """Gathers jobs into calls of `run_batch` (a list of items -> a list of results).

    Args:
        run_batch: the model call. max_batch: items per call (at most; a larger request is
            one call of its own). max_wait_ms: how long the first job waits for others.
        max_queue: items that may wait. metrics: where batch sizes and queue length go.
    """

    def __init__(
        self,
        run_batch: RunBatch,
        max_batch: int = 32,
        max_wait_ms: float = 5.0,
        max_queue: int = 256,
        metrics: ServerMetrics | None = None,
    ) -> None:
        self.run_batch = run_batch
        self.max_batch, self.max_wait = max_batch, max_wait_ms / 1000
        self.max_queue = max_queue
        self.metrics = metrics or ServerMetrics()
        self.jobs: queue.Queue[Job | None] = queue.Queue()
        self.waiting = 0  # items queued, not yet taken by the thread
        self.active = 0  # requests being handled: received, checked, waiting or answered
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._loop, name="mentor-inference", daemon=True)
        self.thread.start()

    @contextmanager
    def handling(self) -> Iterator[None]:
        """Wrap the handling of a request that submits items: while other requests are being
        handled, a batch waits for theirs (up to `max_wait_ms`); a lone request runs at once."""
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1

    async def submit(self, items: list[Any], run: RunBatch | None = None) -> list[Any]:
        """The results of `items`, in order, once the thread has run them (with `run`: alone,
        through that function). Raises QueueFull, or what the model call raised."""
        with self.lock:
            if self.waiting + len(items) > self.max_queue:
                raise QueueFull(
                    f"{self.waiting} items are waiting (the queue holds {self.max_queue})"
                )
            self.waiting += len(items)
            self.metrics.queued_items = self.waiting
        loop = asyncio.get_running_loop()
        job = Job(list(items), loop.create_future(), loop, batchable=run is None, run=run)
        self.jobs.put(job)
        return await job.future

    def close(self) -> None:
        """Stop the thread once the jobs already queued are done."""
        self.jobs.put(None)
        self.thread.join(timeout=10)

    # ----- the inference thread -----
    def _next(self, timeout: float | None) -> Job | None | _Empty:
        """The next job (None: stop), or EMPTY when none came within `timeout` seconds."""
        try:
            if timeout is None or timeout > 0:
                job = self.jobs.get(timeout=timeout)
            else:
                job = self.jobs.get_nowait()
        except queue.Empty:
            return EMPTY
        if job is not None:
            with self.lock:
                self.waiting -= len(job.items)
                self.metrics.queued_items = self.waiting
        return job

    def _loop(self) -> None:
        """Take a job, gather more while the batch has room and the first job's wait lasts,
        run them; a job that does not fit (or is not batched, or the stop) comes next."""
        carried: Job | None | _Empty = EMPTY
        while True:
            job = self._next(None) if carried is EMPTY else carried
            carried = EMPTY
            if job is None or isinstance(job, _Empty):
                return
            batch, size = [job], len(job.items)
            deadline = job.arrived + self.max_wait
            while job.batchable and size < self.max_batch:
                if self.active <= len(batch) and self.jobs.empty():
                    break  # no other request is being handled: waiting would only add latency
                following = self._next(deadline - time.monotonic())
                if isinstance(following, _Empty):
                    break
                if (
                    following is None
                    or not following.batchable
                    or (size + len(following.items) > self.max_batch)
                ):
                    carried = following
                    break
                batch.append(following)
                size += len(following.items)
            self._run(batch)

    def _run(self, jobs: list[Job]) -> None:
        """Run the live jobs' items as one call and hand out the results."""
        live = [job for job in jobs if not job.future.done()]  # a caller that timed out
        if not live:
            return
        items = [item for job in live for item in job.items]
        try:
            run = live[0].run or self.run_batch
            results = run(items)
            self.metrics.record_batch(len(items))
        except Exception as err:  # noqa: BLE001 - handed to the request, which answers it
            if len(live) > 1:  # one bad request must not fail the others: run each alone
                for job in live:
                    self._run([job])
                return
            _resolve(live[0], error=err)
            return
        start = 0
        for job in live:
            _resolve(job, results[start : start + len(job.items)])
            start += len(job.items)


def _resolve(
    job: Job, results: list[Any] | None = None, error: BaseException | None = None
) -> None:
    """Set the job's future from the inference thread (the loop runs the callback)."""

    def settle() -> None:
        if job.future.done():
            return
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(results or [])

    job.loop.call_soon_threadsafe(settle)


__all__ = ["DynamicBatcher", "QueueFull"]
