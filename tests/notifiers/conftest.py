"""Fixtures for notifier tests: loopback servers, senders and request builders.

The ``settings`` fixture (tests/conftest.py) allows loopback, so deliveries to the sinks
succeed; ``guarded_settings`` allows nothing, for SSRF tests.

``path`` runs a test once per way of sending: ``Sender.send``, and ``Sender.send_async`` on an
event loop in its own thread, the way the worker drives it. ``send`` is ``path`` bound to the
``sender`` fixture.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from integrations.config import Settings
from integrations.enums import HttpMethod
from integrations.models import Notifier
from notifiers.sender import DeliveryResponse, OutboundRequest, Sender
from tests.support.oauth_server import OAuthServer


@pytest.fixture
def oauth() -> Iterator[OAuthServer]:
    with OAuthServer() as server:
        server.add_client("herald", "s3cret-client")
        server.add_user("alice", "alice-pw")
        yield server


@pytest.fixture
def guarded_settings(settings: Settings) -> Settings:
    """Settings with HERALD_ALLOWED_NETWORKS empty: loopback is refused."""
    return dataclasses.replace(settings, allowed_networks=())


@pytest.fixture
def sender(settings: Settings, redis_client: redis.Redis) -> Iterator[Sender]:
    with Sender(settings, redis_client) as s:
        yield s


#: What the ``send`` fixture is: one request in, its response out (or an error raised).
Send = Callable[[OutboundRequest], DeliveryResponse]


class SendPath:
    """Sends a request through a :class:`Sender`, synchronously or on a loop thread."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self._used: list[Sender] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        if mode == "async":
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
            self._thread.start()

    def __call__(self, sender: Sender, request: OutboundRequest) -> DeliveryResponse:
        if self._loop is None:
            return sender.send(request)
        if sender not in self._used:
            self._used.append(sender)
        return asyncio.run_coroutine_threadsafe(sender.send_async(request), self._loop).result()

    def close(self) -> None:
        """Close the async clients in their loop, then stop it."""
        if self._loop is None or self._thread is None:
            return
        for sender in self._used:
            asyncio.run_coroutine_threadsafe(sender.aclose(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


@pytest.fixture(params=["sync", "async"])
def path(request: pytest.FixtureRequest) -> Iterator[SendPath]:
    how = SendPath(request.param)
    try:
        yield how
    finally:
        how.close()


@pytest.fixture
def send(path: SendPath, sender: Sender) -> Send:
    return lambda request: path(sender, request)


def outbound(
    url: str,
    notifier: Notifier | None = None,
    *,
    method: HttpMethod | str = HttpMethod.POST,
    body: str = '{"subject": "disk full"}',
    headers: list[tuple[str, str]] | None = None,
    delivery_id: str | None = None,
    **notifier_fields: Any,
) -> OutboundRequest:
    """An OutboundRequest with sensible defaults; extra kwargs build the notifier."""
    if notifier is None:
        notifier = Notifier(**notifier_fields)
    return OutboundRequest(
        delivery_id=delivery_id or f"dlv-{uuid.uuid4().hex[:12]}",
        notifier=notifier,
        method=HttpMethod.parse(method),
        url=url,
        headers=headers or [],
        body=body,
    )
