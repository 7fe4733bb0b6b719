"""One deadline for a whole exchange: connect, request, headers and body.

Timeouts in httpx and httpcore are per operation: an endpoint that sends its headers a byte
a second never trips a 30 s read timeout, and held an attempt until the task's hard time
limit. :class:`Sender <notifiers.sender.Sender>` gives each exchange one deadline instead:

* on the sync path (threads, the retry path), :func:`exchange_deadline` sets it for the
  calling thread, and :class:`DeadlineStream`, which wraps every connection
  :class:`~notifiers.safety.GuardedBackend` opens, cuts each read and write to the time left;
* on the async path, the sender runs the exchange under ``asyncio.timeout``.

A connection outlives its exchange in the pool, so the deadline is read at each operation
from a context variable, never stored in the stream.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpcore

_DEADLINE: ContextVar[float | None] = ContextVar("herald_exchange_deadline", default=None)


@contextmanager
def exchange_deadline(deadline: float) -> Iterator[None]:
    """Every read and write of this thread's exchanges ends by ``deadline`` (monotonic)."""
    token = _DEADLINE.set(deadline)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _left(timeout: float | None, error: type[Exception]) -> float | None:
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("the exchange ran past its deadline")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    """A network stream whose reads and writes end by the current exchange's deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Read, within the time the exchange has left."""
        return self._inner.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Write, within the time the exchange has left."""
        self._inner.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        """Close the connection."""
        self._inner.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        """Upgrade to TLS; the TLS stream keeps the deadline too."""
        tls = self._inner.start_tls(
            ssl_context, server_hostname, _left(timeout, httpcore.ConnectTimeout)
        )
        return DeadlineStream(tls)

    def get_extra_info(self, info: str) -> Any:
        """Delegate (httpcore asks for the socket, the SSL object...)."""
        return self._inner.get_extra_info(info)
