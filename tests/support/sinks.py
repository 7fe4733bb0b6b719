"""A recording HTTP sink for tests: a real server on loopback that remembers every request.

Usage::

    with RecordingSink() as sink:                       # 127.0.0.1, a free port
        sink.reply(Reply.json({"id": "T-1"}, status=201))  # answer of the next request
        ...send something to sink.url + "/tickets"...
        [req] = sink.requests
        assert req.method == "POST" and req.json() == {...}

* ``RecordingSink(host="::1")`` listens on IPv6 loopback (``sink.url`` is bracketed).
* ``sink.reply(plan, plan, ...)`` queues plans, one per request, in order; when the queue is
  empty ``sink.default`` answers. A plan is a :class:`Reply` or a callable taking the
  :class:`RecordedRequest` and returning a :class:`Reply` (for stateful behaviour).
* ``Reply(delay=...)`` sleeps before answering, to provoke client read timeouts.
* ``Reply.soap(...)`` / ``Reply.soap_fault(...)`` answer like a SOAP 1.1 (or 1.2) service.
* ``sink.wait_for(n)`` blocks until ``n`` requests arrived (for asynchronous senders).

Requests are recorded before the answer is computed, so even a request that times out on the
client side is in ``sink.requests``. Everything is thread-safe.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.sax.saxutils import escape

from tests.support.serving import BackgroundServer

SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the sink received it."""

    method: str
    #: Path and query string, as sent.
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    #: ``(host, port)`` of the client.
    client: tuple[str, int] = ("", 0)

    def header(self, name: str) -> str | None:
        """The first header called ``name`` (case-insensitive), or ``None``."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)

    @property
    def header_names(self) -> set[str]:
        """Lower-cased names of all headers received."""
        return {k.lower() for k, _ in self.headers}

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    """How the sink answers one request."""

    status: int = 200
    headers: Mapping[str, str] | Sequence[tuple[str, str]] = ()
    body: bytes | str = b""
    #: Seconds to wait before answering.
    delay: float = 0.0

    @classmethod
    def json(cls, data: Any, status: int = 200, **headers: str) -> Reply:
        """A JSON answer (extra headers as keyword arguments, ``_`` for ``-``)."""
        extra = [(k.replace("_", "-"), v) for k, v in headers.items()]
        return cls(status, [("Content-Type", "application/json"), *extra], json.dumps(data))

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Reply:
        """A redirect to ``location``."""
        return cls(status, [("Location", location)])

    @classmethod
    def soap(cls, body_xml: str = "<ok/>", status: int = 200) -> Reply:
        """A SOAP 1.1 envelope around ``body_xml``."""
        envelope = (
            f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{SOAP11_NS}">'
            f"<soap:Body>{body_xml}</soap:Body></soap:Envelope>"
        )
        return cls(status, [("Content-Type", "text/xml; charset=utf-8")], envelope)

    @classmethod
    def soap_fault(
        cls,
        code: str = "soap:Server",
        string: str = "fault",
        status: int = 500,
        version: str = "1.1",
    ) -> Reply:
        """A SOAP fault (``version`` "1.1": faultcode/faultstring; "1.2": Code/Reason)."""
        if version == "1.2":
            fault = (
                f"<env:Fault><env:Code><env:Value>{escape(code)}</env:Value></env:Code>"
                f'<env:Reason><env:Text xml:lang="en">{escape(string)}</env:Text></env:Reason>'
                "</env:Fault>"
            )
            envelope = (
                f'<env:Envelope xmlns:env="{SOAP12_NS}"><env:Body>{fault}</env:Body></env:Envelope>'
            )
            return cls(status, [("Content-Type", "application/soap+xml; charset=utf-8")], envelope)
        fault = (
            f"<soap:Fault><faultcode>{escape(code)}</faultcode>"
            f"<faultstring>{escape(string)}</faultstring></soap:Fault>"
        )
        return cls.soap(fault, status=status)

    def header_items(self) -> list[tuple[str, str]]:
        """Headers as a list of pairs."""
        if isinstance(self.headers, Mapping):
            return list(self.headers.items())
        return list(self.headers)

    def body_bytes(self) -> bytes:
        """The body as bytes."""
        return self.body.encode("utf-8") if isinstance(self.body, str) else self.body


Plan = Reply | Callable[[RecordedRequest], Reply]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # A listen backlog like a real server's (nginx: 511). socketserver's default of 5 drops
    # the SYNs of a burst of new connections (a batch's first attempts open many at once),
    # which the client then sees as connect timeouts that no production endpoint would cause.
    request_queue_size = 512
    # Do not wait for handler threads (a delayed reply, an idle keep-alive) on close.
    block_on_close = False
    sink: RecordingSink

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up (timeout, early close of a large answer) is no test failure.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so client connection pooling is exercised
    # Headers and body go out in two writes; with Nagle's algorithm on, the body then waits
    # for the client's delayed ACK (~40 ms), which would dominate every timing taken here.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        request = RecordedRequest(
            method=self.command,
            path=self.path,
            headers=tuple(self.headers.items()),
            body=self._read_body(),
            client=(str(self.client_address[0]), int(self.client_address[1])),
        )
        reply = self.server.sink._record_and_plan(request)
        if reply.delay:
            time.sleep(reply.delay)
        body = b"" if self.command == "HEAD" else reply.body_bytes()
        try:
            self.send_response(reply.status)
            names = set()
            for name, value in reply.header_items():
                names.add(name.lower())
                self.send_header(name, value)
            if "content-length" not in names:
                self.send_header("Content-Length", str(len(reply.body_bytes())))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (timeout): nothing to do

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


class _Server6(_Server):
    address_family = socket.AF_INET6


@dataclass
class RecordingSink:
    """A loopback HTTP server recording every request (see the module docstring)."""

    host: str = "127.0.0.1"
    port: int = 0
    default: Plan = field(default_factory=lambda: Reply.json({"ok": True}))
    _requests: list[RecordedRequest] = field(default_factory=list, init=False, repr=False)
    _plans: deque[Plan] = field(default_factory=deque, init=False, repr=False)
    _lock: threading.Condition = field(default_factory=threading.Condition, init=False, repr=False)
    _served: BackgroundServer | None = field(default=None, init=False, repr=False)

    def start(self) -> RecordingSink:
        """Start listening (idempotent)."""
        if self._served is None:
            cls = _Server6 if ":" in self.host else _Server
            server = cls((self.host, self.port), _Handler)
            server.sink = self
            self.port = int(server.server_address[1])
            self._served = BackgroundServer(server)
        return self

    def stop(self) -> None:
        """Stop listening and close the socket."""
        if self._served is not None:
            self._served.close()
            self._served = None

    def __enter__(self) -> RecordingSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234`` (no trailing slash)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def reply(self, *plans: Plan) -> RecordingSink:
        """Queue answers for the next requests, one plan per request."""
        with self._lock:
            self._plans.extend(plans)
        return self

    def respond_with(self, plan: Plan) -> RecordingSink:
        """Answer every request with ``plan`` once the queue is empty."""
        with self._lock:
            self.default = plan
        return self

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the requests received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def count(self) -> int:
        """How many requests arrived."""
        with self._lock:
            return len(self._requests)

    def clear(self) -> None:
        """Forget recorded requests and queued plans."""
        with self._lock:
            self._requests.clear()
            self._plans.clear()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Wait until at least ``count`` requests arrived; raise ``TimeoutError`` if not."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._requests) >= count, timeout):
                raise TimeoutError(f"{len(self._requests)} of {count} requests after {timeout}s")
            return list(self._requests)

    def _record_and_plan(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self._requests.append(request)
            plan = self._plans.popleft() if self._plans else self.default
            self._lock.notify_all()
        return plan(request) if callable(plan) else plan
