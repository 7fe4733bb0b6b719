"""A raw-asyncio HTTP/1.1 sink that answers after a fixed delay, for the 50 ms measure.

``tests.support.sinks.RecordingSink`` spends a thread per connection; at 50 ms a request,
2,000 requests/s need 100 connections waiting at once, which an event loop holds for free.
It speaks just enough HTTP for httpx and requests: keep-alive, ``Content-Length`` bodies
(``Transfer-Encoding: chunked`` is refused with 411, so a client that sends it is noticed).
Every arrival is recorded as ``(perf_counter, id)`` where ``id`` is the body's top-level
``"id"``, so the bench can time each change from its ``XADD``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any, Protocol

_OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'
_CHUNKED = b"HTTP/1.1 411 Length Required\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def body_id(body: bytes) -> str | None:
    """The top-level ``"id"`` of a JSON body, or ``None``."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    value = doc.get("id") if isinstance(doc, dict) else None
    return None if value is None else str(value)


def content_length(head: bytes) -> int | None:
    """The ``Content-Length`` of a request head (``None``: chunked); 0 when absent."""
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            return None
    return length


class Arrivals(Protocol):
    """What the measures need of a sink: where it is, and what arrived when."""

    @property
    def url(self) -> str: ...
    @property
    def count(self) -> int: ...
    def snapshot(self) -> list[tuple[float, str | None]]: ...
    def clear(self) -> None: ...


class AsyncSink:
    """``with AsyncSink(delay=0.05) as sink:`` serves ``sink.url`` on a background loop."""

    def __init__(self, delay: float = 0.0, host: str = "127.0.0.1") -> None:
        self.delay = delay
        self.host = host
        self.port = 0
        self.arrivals: list[tuple[float, str | None]] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234``."""
        return f"http://{self.host}:{self.port}"

    @property
    def count(self) -> int:
        """Requests received so far."""
        return len(self.arrivals)

    def snapshot(self) -> list[tuple[float, str | None]]:
        """A copy of the arrivals so far."""
        with self._lock:
            return list(self.arrivals)

    def clear(self) -> None:
        """Forget the arrivals (between two runs on one sink)."""
        with self._lock:
            self.arrivals.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = content_length(head)
                if length is None:
                    writer.write(_CHUNKED)
                    return
                body = await reader.readexactly(length) if length else b""
                with self._lock:
                    self.arrivals.append((time.perf_counter(), body_id(body)))
                if self.delay:
                    await asyncio.sleep(self.delay)
                writer.write(_OK)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass  # the client closed its connection
        except asyncio.CancelledError:
            # stop() ends connections left open. Ended, not cancelled: Python 3.11's stream
            # callback calls exception() on the task, which raises for a cancelled one.
            pass
        finally:
            writer.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, 0, backlog=1024)
        self.port = int(self._server.sockets[0].getsockname()[1])

    def start(self) -> AsyncSink:
        """Listen and serve on a daemon thread."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        """Stop serving and close the loop."""

        async def close() -> None:
            if self._server is not None:
                self._server.close()
            # Connections a client left open are still being served: end them here, or the
            # closed loop reports each one as "Task was destroyed but it is pending!".
            current = asyncio.current_task()
            pending = [t for t in asyncio.all_tasks() if t is not current]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def __enter__(self) -> AsyncSink:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class RecordingArrivals:
    """``tests.support.sinks.RecordingSink`` with the arrivals interface of :class:`AsyncSink`.

    The instant-sink measures use the tests' own sink, as the issue's figures did.
    """

    def __init__(self) -> None:
        from tests.support.sinks import RecordedRequest, RecordingSink, Reply

        self.arrivals: list[tuple[float, str | None]] = []
        self._lock = threading.Lock()
        ok = Reply.json({"ok": True})

        def record(req: RecordedRequest) -> Reply:
            with self._lock:
                self.arrivals.append((time.perf_counter(), body_id(req.body)))
            return ok

        self._sink = RecordingSink(default=record)

    @property
    def url(self) -> str:
        """Base URL of the sink."""
        return self._sink.url

    @property
    def count(self) -> int:
        """Requests received so far."""
        return len(self.arrivals)

    def snapshot(self) -> list[tuple[float, str | None]]:
        """A copy of the arrivals so far."""
        with self._lock:
            return list(self.arrivals)

    def clear(self) -> None:
        """Forget the arrivals, and the requests the underlying sink keeps."""
        with self._lock:
            self.arrivals.clear()
        self._sink.clear()

    def __enter__(self) -> RecordingArrivals:
        self._sink.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._sink.stop()
