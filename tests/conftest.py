"""Shared fixtures: a real Redis (never a fake), isolated per test by key prefix.

``make test`` exports ``HERALD_TEST_REDIS_URL``; it starts a private ``redis-server`` when none
answers. A Redis that does not answer here is a failure, never a skip.
"""

from __future__ import annotations

import ipaddress
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from cryptography.fernet import Fernet
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from integrations.config import Settings
from integrations.store import Store
from tests.support.sinks import RecordingSink

# Properties assert behaviour, not speed: a 2-core CI machine busy with worker subprocesses can
# stall a microsecond example past Hypothesis's 200 ms default deadline. No example database
# either, so a run depends only on the code. Failures still print the blob to reproduce them.
hypothesis_settings.register_profile(
    "herald",
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "herald"))

TEST_REDIS_URL = os.environ.get("HERALD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the real Redis the suite runs against; fails the run if it does not answer."""
    client = redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:  # pragma: no cover - a broken environment
        pytest.fail(f"Redis at {TEST_REDIS_URL} does not answer ({exc}); run `make test`")
    finally:
        client.close()
    return TEST_REDIS_URL


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix unique to this test, so tests sharing one Redis never see each other."""
    return f"herald-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def redis_client(redis_url: str, redis_prefix: str) -> Iterator[redis.Redis]:
    """A client of the real Redis; every key under this test's prefix is removed afterwards."""
    client = redis.Redis.from_url(redis_url)
    yield client
    keys = list(client.scan_iter(match=f"{redis_prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    """The store of this test's settings (a private SQLite file), migrated to head."""
    s = Store(settings.database_url, settings.secret_key)
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def settings(redis_url: str, redis_prefix: str, tmp_path: Path) -> Settings:
    """Settings for one test: real Redis, private SQLite, loopback allowed, fast retries."""
    return Settings(
        redis_url=redis_url,
        database_url=f"sqlite:///{tmp_path / 'herald.db'}",
        secret_key=Fernet.generate_key().decode(),
        allowed_networks=LOOPBACK,
        redis_prefix=redis_prefix,
        retry_schedule=(0.2, 0.4, 0.8),
        connect_timeout=2.0,
        read_timeout=5.0,
    )


@pytest.fixture
def sink() -> Iterator[RecordingSink]:
    """A loopback HTTP server recording every request (``tests.support.sinks``)."""
    with RecordingSink() as server:
        yield server
