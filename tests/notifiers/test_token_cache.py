"""TokenCache over both TokenStores (this process's memory, the real Redis), on a clock the
tests move: renewal, the lock, compare-and-delete, storage failures."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import redis

from integrations.errors import RetryableError
from notifiers.auth import CachedToken, MemoryTokenStore, RedisTokenStore, TokenCache
from notifiers.auth.tokens import holds


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "redis"])
def cache(
    request: pytest.FixtureRequest, clock: Clock, redis_client: redis.Redis, redis_prefix: str
) -> Iterator[TokenCache]:
    store = MemoryTokenStore(clock) if request.param == "memory" else RedisTokenStore(redis_client)
    yield TokenCache(store, redis_prefix, key_secret="k", lock_timeout=2.0, now=clock)


class Issuer:
    """A fetch function that issues token n, valid ``lifetime`` seconds from the clock."""

    def __init__(self, clock: Clock, lifetime: float = 100.0) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.stale: list[CachedToken | None] = []

    def __call__(self, stale: CachedToken | None) -> CachedToken:
        self.stale.append(stale)
        return CachedToken.issued(f"t{len(self.stale)}", self.lifetime, self.clock())


def test_renewed_at_the_margin_not_before(cache: TokenCache, clock: Clock) -> None:
    issue = Issuer(clock)
    key = cache.key("oauth", "https://t.example", "client", "secret")
    assert cache.obtain(key, issue).access_token == "t1"
    clock.now += 89.9  # renewal point: 100 s minus 10 s
    assert cache.obtain(key, issue).access_token == "t1"
    clock.now += 0.2
    assert cache.obtain(key, issue).access_token == "t2"
    assert [s.access_token if s else None for s in issue.stale] == [None, "t1"]


def test_a_renewal_in_progress_does_not_block_a_usable_token(
    cache: TokenCache, clock: Clock
) -> None:
    issue = Issuer(clock)
    key = cache.key("jwt", "u")
    cache.obtain(key, issue)
    clock.now += 95.0  # due for renewal but still valid
    lock = cache.store.lock(key, 2.0)
    assert lock.acquire(blocking=False)  # another process is renewing
    try:
        assert cache.obtain(key, issue).access_token == "t1"
    finally:
        lock.release()
    assert len(issue.stale) == 1
    assert cache.obtain(key, issue).access_token == "t2"


def test_delete_if_drops_only_the_failed_token(cache: TokenCache, clock: Clock) -> None:
    key = cache.key("oauth", "x")
    cache.put(key, CachedToken.issued("newer", 100, clock()).dumps(), 100)
    cache.store.delete_if(key, holds("older"))
    assert cache.store.get(key) is not None
    cache.store.delete_if(key, holds("newer"))
    assert cache.store.get(key) is None


def test_nothing_is_kept_for_a_non_positive_lifetime(cache: TokenCache) -> None:
    key = cache.key("oauth", "y")
    cache.put(key, "v", 10)
    cache.put(key, "v", 0)
    assert cache.store.get(key) is None


def test_keys_hide_their_parts(cache: TokenCache) -> None:
    key = cache.key("oauth", "client-id", "the-secret")
    assert "the-secret" not in key and "client-id" not in key
    assert key != cache.key("oauth", "client-id", "another-secret")


def test_memory_store_expires_by_its_clock(clock: Clock) -> None:
    store = MemoryTokenStore(clock)
    store.set("k", "v", 5)
    clock.now += 4.9
    assert store.get("k") == "v"
    clock.now += 0.2
    assert store.get("k") is None


def test_redis_down_is_retryable() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = RedisTokenStore(redis.Redis(port=port, socket_connect_timeout=1))
    with pytest.raises(RetryableError) as info:
        store.get("k")
    assert info.value.error_class == "redis_unavailable"
    with pytest.raises(RetryableError):
        store.lock("k", 1.0).acquire(blocking=False)


def test_a_fresh_token_is_served_without_the_store(cache: TokenCache, clock: Clock) -> None:
    issue = Issuer(clock)
    key = cache.key("oauth", "local")
    assert cache.peek(key) is None
    cache.obtain(key, issue)
    cache.store.delete(key)  # behind the process's back: it does not ask the store again
    assert cache.obtain(key, issue).access_token == "t1"
    assert cache.peek(key) is not None
    clock.now += 95.0  # due: back to the store (empty now), so a new token is fetched
    assert cache.peek(key) is None
    assert cache.obtain(key, issue).access_token == "t2"


def test_invalidate_drops_the_held_token_too(cache: TokenCache, clock: Clock) -> None:
    issue = Issuer(clock)
    key = cache.key("oauth", "revoked")
    cache.obtain(key, issue)
    cache.invalidate(key, "someone-else's")  # not the held token: kept
    assert cache.peek(key) is not None
    cache.invalidate(key, "t1")
    assert cache.peek(key) is None and cache.store.get(key) is None
    assert cache.obtain(key, issue).access_token == "t2"
