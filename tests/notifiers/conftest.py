"""Fixtures for notifier tests: loopback servers, senders and request builders.

The ``settings`` fixture (tests/conftest.py) allows loopback, so deliveries to the sinks
succeed; ``guarded_settings`` allows nothing, for SSRF tests.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from integrations.config import Settings
from integrations.enums import HttpMethod
from integrations.models import Notifier
from notifiers.sender import OutboundRequest, Sender
from tests.support.oauth_server import OAuthServer
from tests.support.sinks import RecordingSink


@pytest.fixture
def sink() -> Iterator[RecordingSink]:
    with RecordingSink() as server:
        yield server


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
