"""Issue 8, bounds: an endpoint sending its headers a byte at a time meets one deadline for
the whole exchange, on both send paths (a real loopback socket server)."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from integrations.config import Settings
from integrations.errors import RetryableError
from integrations.models import Notifier
from notifiers.sender import Sender
from tests.notifiers.conftest import SendPath, outbound


class Dripping:
    """Answers every request with a status line, then one header byte every ``every`` s."""

    def __init__(self, every: float = 0.1) -> None:
        self._every = every
        self._stop = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        #: When each client gave up on its connection (monotonic).
        self.gave_up: list[float] = []

    def _serve(self) -> None:
        self._server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed by __exit__
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Drip: ")
                while not self._stop.wait(self._every):
                    conn.sendall(b"z")
            except OSError:
                self.gave_up.append(time.monotonic())  # the client gave up: what is wanted

    def __enter__(self) -> Dripping:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.close()
        self._thread.join(5)


@pytest.fixture
def dripping() -> Iterator[Dripping]:
    with Dripping() as server:
        yield server


def test_headers_a_byte_at_a_time_meet_the_exchange_deadline(
    settings: Settings, redis_client: redis.Redis, path: SendPath, dripping: Dripping
) -> None:
    # Each byte comes well within the 1 s read timeout: only a whole-exchange deadline
    # (0.5 + 2 x 1.0 = 2.5 s) can end this.
    quick = dataclasses.replace(settings, connect_timeout=0.5, read_timeout=1.0)
    with Sender(quick, redis_client) as sender:
        start = time.monotonic()
        with pytest.raises(RetryableError) as info:
            path(sender, outbound(f"{dripping.url}/hook"))
        elapsed = time.monotonic() - start
    assert info.value.error_class == "timeout", info.value
    assert 2.0 <= elapsed < 6.0, elapsed


def test_a_token_endpoint_dripping_its_answer_meets_the_same_deadline(
    settings: Settings, redis_client: redis.Redis, path: SendPath, dripping: Dripping
) -> None:
    # On the async path the token request runs in a thread, which asyncio.timeout cannot
    # interrupt: found in review still reading 20 s after the delivery had failed.
    quick = dataclasses.replace(settings, connect_timeout=0.5, read_timeout=1.0)
    notifier = Notifier(
        authType="OAUTH2",
        grantType="CLIENT_CREDENTIALS",
        accessTokenURL=f"{dripping.url}/token",
        apiKey="a",
        apiSecret="b",
    )
    with Sender(quick, redis_client) as sender:
        start = time.monotonic()
        with pytest.raises(RetryableError):
            path(sender, outbound(f"{dripping.url}/hook", notifier))
        deadline = start + 6.0
        while not dripping.gave_up and time.monotonic() < deadline:
            time.sleep(0.05)
    assert dripping.gave_up, "the token request was still reading"
    assert dripping.gave_up[0] - start < 4.0
