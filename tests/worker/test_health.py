"""Endpoint health: the breaker's pure decisions and the failure streak in Redis."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from worker.health import (
    BreakerPolicy,
    BreakerState,
    EndpointHealth,
    after_failure,
    endpoint_of,
    is_open,
    should_disable,
)

POLICY = BreakerPolicy(threshold=3, cooldown=10, max_cooldown=60)


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("https://api.example.com/a/b?x=1", "https://api.example.com:443"),
        ("http://API.example.com:8080/", "http://api.example.com:8080"),
        ("http://[::1]:9/x", "http://::1:9"),
    ],
)
def test_endpoint_key(url: str, key: str) -> None:
    assert endpoint_of(url) == key


def test_breaker_opens_at_the_threshold_and_backs_off_to_the_cap() -> None:
    state = BreakerState()
    opened = []
    for _ in range(7):
        state = after_failure(state, 1000.0, POLICY)
        opened.append(state.open_until - 1000.0 if is_open(state, 1000.0) else 0.0)
    assert opened == [0.0, 0.0, 10.0, 20.0, 40.0, 60.0, 60.0]
    assert not is_open(state, 1061.0)


def test_should_disable() -> None:
    assert should_disable(0.0, 100.0, 100.0)
    assert not should_disable(0.0, 99.0, 100.0)
    assert not should_disable(None, 1e9, 100.0)


def test_records_are_shared_through_redis(redis_client: redis.Redis, redis_prefix: str) -> None:
    one = EndpointHealth(redis_client, redis_prefix, POLICY)
    other = EndpointHealth(redis_client, redis_prefix, POLICY)
    for _ in range(3):
        one.record_failure("t|http://x:80", now=1000.0)
    assert is_open(other.state("t|http://x:80"), 1001.0)
    other.record_success("t|http://x:80")
    assert one.state("t|http://x:80") == BreakerState()


def test_failure_streak_breaks_on_success_and_on_a_long_silence(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    h = EndpointHealth(redis_client, redis_prefix, POLICY)
    assert h.event_failed("E", 100.0, gap=50) == 100.0
    assert h.event_failed("E", 140.0, gap=50) == 100.0
    assert h.event_failed("E", 180.0, gap=50) == 100.0
    assert h.event_failed("E", 300.0, gap=50) == 300.0  # 120 s without a failure
    h.event_succeeded("E")
    assert h.event_failed("E", 310.0, gap=50) == 310.0


def test_concurrent_failures_each_count(redis_url: str, redis_prefix: str) -> None:
    """Workers failing against one endpoint at the same instant each count (no lost update),
    so the breaker opens exactly at its threshold. Eight threads, own connections each."""
    threads, per_thread = 8, 25
    policy = BreakerPolicy(threshold=10_000, cooldown=10, max_cooldown=60)
    barrier = threading.Barrier(threads)

    def fail_many() -> None:
        client = redis.Redis.from_url(redis_url)
        try:
            health = EndpointHealth(client, redis_prefix, policy)
            barrier.wait(timeout=10)
            for _ in range(per_thread):
                health.record_failure("t|http://x:80", now=1000.0)
        finally:
            client.close()

    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(fail_many) for _ in range(threads)]:
            future.result(timeout=30)
    client = redis.Redis.from_url(redis_url)
    try:
        state = EndpointHealth(client, redis_prefix, policy).state("t|http://x:80")
        client.delete(f"{redis_prefix}:breaker:t|http://x:80")
    finally:
        client.close()
    assert state.failures == threads * per_thread
