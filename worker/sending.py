"""Many requests in flight per worker process, with a bound per endpoint.

A batch's first attempts are sent together, so a slow endpoint costs wall time, not
throughput: its requests wait on the network while the others go. Each endpoint (a tenant's
scheme, host and port) has at most ``per_endpoint`` requests in flight from one process, so
one slow ticketing system cannot take every slot from the other tenants.

The requests run on one asyncio event loop per process, in a thread of its own, through
:meth:`Sender.send_async <notifiers.sender.Sender.send_async>` (httpx on a guarded aiohttp
transport: one connection pool, the SSRF guard at connect time). Measured against a 50 ms
loopback sink (``bench/transport.py``), it kept 751 requests/s in flight from one process at
1.1 ms of CPU each, where 100 threads over one ``httpx.Client`` managed 287 at 3.5 ms.
The batch task's thread only waits for the whole batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import Any

from integrations.errors import RetryableError
from notifiers.sender import DeliveryResponse, OutboundRequest

#: What sending one request gave: the 2xx response, or the exception it raised.
SendResult = DeliveryResponse | Exception


class SendPool:
    """Sends a batch of requests concurrently; one per worker process."""

    def __init__(
        self,
        send: Callable[[OutboundRequest], Awaitable[DeliveryResponse]],
        *,
        close: Callable[[], Coroutine[Any, Any, None]] | None = None,
        concurrency: int = 64,
        per_endpoint: int = 16,
    ) -> None:
        self._send = send
        self._close = close
        self._concurrency = max(1, concurrency)
        self._per_endpoint = max(1, per_endpoint)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="herald-send", daemon=True
        )
        self._thread.start()
        # Created and used only on the loop's thread.
        self._all: asyncio.Semaphore | None = None
        self._limits: dict[str, asyncio.Semaphore] = {}

    def _limit(self, endpoint: str) -> asyncio.Semaphore:
        sem = self._limits.get(endpoint)
        if sem is None:
            sem = self._limits[endpoint] = asyncio.Semaphore(self._per_endpoint)
        return sem

    async def _one(self, endpoint: str, request: OutboundRequest) -> SendResult:
        if self._all is None:
            self._all = asyncio.Semaphore(self._concurrency)
        async with self._limit(endpoint), self._all:
            try:
                return await self._send(request)
            except Exception as exc:  # each request's failure is its own outcome
                return exc

    async def _gather(
        self, requests: Sequence[tuple[str, OutboundRequest]], deadline: float | None
    ) -> list[SendResult]:
        # Started in round-robin order across endpoints, so a busy endpoint's queue of
        # waiters does not stand ahead of another endpoint's first request.
        tasks = {i: asyncio.ensure_future(self._one(*requests[i])) for i in _round_robin(requests)}
        try:
            _, late = await asyncio.wait(tasks.values(), timeout=deadline)
        except asyncio.CancelledError:
            # The caller gave up (a task time limit): nothing of this batch may go out once
            # it has rescheduled the deliveries, or a retry would overlap a late first try.
            await _cancel(tasks.values())
            raise
        await _cancel(late)
        return [
            DeadlineExceeded(deadline or 0.0) if tasks[i].cancelled() else tasks[i].result()
            for i in range(len(requests))
        ]

    def send_all(
        self, requests: Sequence[tuple[str, OutboundRequest]], *, deadline: float | None = None
    ) -> list[SendResult]:
        """Send ``(endpoint, request)`` pairs; results in the same order.

        Whatever is not answered within ``deadline`` seconds is cancelled, in flight or still
        waiting for a slot, and comes back as :class:`DeadlineExceeded`: when this returns,
        nothing of the batch is still going out.
        """
        if not requests:
            return []
        future = asyncio.run_coroutine_threadsafe(self._gather(requests, deadline), self._loop)
        try:
            return future.result()
        except BaseException:
            # The task's time limit (or a shutdown) interrupted the wait: stop what is still
            # in flight, and wait for that, before the caller reschedules the deliveries.
            future.cancel()
            with contextlib.suppress(BaseException):
                future.result(timeout=5)
            raise

    def close(self) -> None:
        """Close the client on its loop, then stop the loop's thread."""
        if self._close is not None:
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


class DeadlineExceeded(RetryableError):
    """A request of a batch not answered within the batch's send deadline (cancelled)."""

    def __init__(self, deadline: float) -> None:
        super().__init__(
            f"not answered within the batch's send deadline ({deadline:.0f} s); retried",
            error_class="batch_deadline",
        )


async def _cancel(tasks: Iterable[asyncio.Future[SendResult]]) -> None:
    pending = [t for t in tasks if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)


def _round_robin(requests: Sequence[tuple[str, OutboundRequest]]) -> list[int]:
    """Indexes of ``requests`` taking one per endpoint in turn."""
    by_endpoint: dict[str, list[int]] = {}
    for i, (endpoint, _) in enumerate(requests):
        by_endpoint.setdefault(endpoint, []).append(i)
    queues = list(by_endpoint.values())
    order: list[int] = []
    depth = 0
    while len(order) < len(requests):
        order.extend(q[depth] for q in queues if depth < len(q))
        depth += 1
    return order
