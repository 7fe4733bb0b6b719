"""Where tokens are kept: a :class:`TokenStore` (Redis, shared by every worker process; or
this process's memory), and :class:`TokenCache`, the renewal policy on top of any store.

A token is renewed under a short lock, so many concurrent deliveries cause one token
request; while one process renews a still-valid token the others keep using the old one
instead of waiting.

Cache keys are an HMAC (keyed by ``HERALD_SECRET_KEY``) of the token URL, client id, grant,
user *and* the secrets: the secrets never appear in a key, and two notifiers that share a
client id but not its secret never share a token (otherwise one tenant could borrow another
tenant's token by copying a public client id). Redis is trusted storage, so token values are
stored as they are. Token values are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, Protocol

import redis

from integrations.errors import RetryableError
from notifiers.auth.tokens import CachedToken, holds

log = logging.getLogger(__name__)

Clock = Callable[[], float]


class Lock(Protocol):
    """A lock shared by every user of one store (``threading.Lock`` satisfies it)."""

    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...
    def release(self) -> None: ...


class TokenStore(Protocol):
    """Text values with a lifetime, and locks; what :class:`TokenCache` needs of storage.

    Failures of the storage itself surface as :class:`RetryableError`.
    """

    def get(self, key: str) -> str | None:
        """The value at ``key``, ``None`` if absent or expired."""
        ...

    def set(self, key: str, value: str, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds (``ttl > 0``)."""
        ...

    def delete(self, key: str) -> None:
        """Forget ``key``."""
        ...

    def delete_if(self, key: str, predicate: Callable[[str], bool]) -> None:
        """Delete ``key`` only if its current value satisfies ``predicate``, atomically."""
        ...

    def lock(self, key: str, timeout: float) -> Lock:
        """A lock named after ``key``, released by itself after ``timeout`` where possible."""
        ...


class MemoryTokenStore:
    """A :class:`TokenStore` in this process (no Redis): thread-safe, expiring by ``now``."""

    def __init__(self, now: Clock = time.time) -> None:
        self._now = now
        self._values: dict[str, tuple[str, float]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: str) -> str | None:
        """See :meth:`TokenStore.get`."""
        with self._guard:
            item = self._values.get(key)
            if item is None or item[1] <= self._now():
                self._values.pop(key, None)
                return None
            return item[0]

    def set(self, key: str, value: str, ttl: float) -> None:
        """See :meth:`TokenStore.set`."""
        with self._guard:
            self._values[key] = (value, self._now() + ttl)

    def delete(self, key: str) -> None:
        """See :meth:`TokenStore.delete`."""
        with self._guard:
            self._values.pop(key, None)

    def delete_if(self, key: str, predicate: Callable[[str], bool]) -> None:
        """See :meth:`TokenStore.delete_if`."""
        with self._guard:
            item = self._values.get(key)
            if item is not None and predicate(item[0]):
                del self._values[key]

    def lock(self, key: str, timeout: float) -> Lock:
        """See :meth:`TokenStore.lock` (a thread lock: it never expires by itself)."""
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())


@contextmanager
def _redis_errors() -> Iterator[None]:
    try:
        yield
    except redis.RedisError as exc:
        raise RetryableError(
            f"token cache (Redis) unavailable: {type(exc).__name__}",
            error_class="redis_unavailable",
        ) from None


class _RedisLock:
    def __init__(self, lock: Any) -> None:
        self._lock = lock

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        wait = None if timeout < 0 else timeout
        with _redis_errors():
            return bool(self._lock.acquire(blocking=blocking, blocking_timeout=wait))

    def release(self) -> None:
        # LockError: it expired while we held it; another process may already own it.
        # RedisError: Redis went away; the lock expires on its own.
        with suppress(redis.exceptions.LockError, redis.RedisError):
            self._lock.release()


class RedisTokenStore:
    """A :class:`TokenStore` in Redis, shared by every worker process."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def get(self, key: str) -> str | None:
        """See :meth:`TokenStore.get`."""
        with _redis_errors():
            raw = self._redis.get(key)
        if raw is None:
            return None
        return raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)

    def set(self, key: str, value: str, ttl: float) -> None:
        """See :meth:`TokenStore.set`."""
        with _redis_errors():
            self._redis.set(key, value, px=max(1, int(ttl * 1000)))

    def delete(self, key: str) -> None:
        """See :meth:`TokenStore.delete`."""
        with _redis_errors():
            self._redis.delete(key)

    def delete_if(self, key: str, predicate: Callable[[str], bool]) -> None:
        """See :meth:`TokenStore.delete_if` (WATCH/MULTI)."""
        with _redis_errors(), self._redis.pipeline() as pipe:
            try:
                pipe.watch(key)  # type: ignore[no-untyped-call]
                raw = pipe.get(key)
                text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
                if text is not None and predicate(str(text)):
                    pipe.multi()
                    pipe.delete(key)
                    pipe.execute()
            except redis.WatchError:
                pass  # changed under us: someone stored a newer token, keep it

    def lock(self, key: str, timeout: float) -> Lock:
        """See :meth:`TokenStore.lock`."""
        return _RedisLock(self._redis.lock(f"{key}:lock", timeout=timeout, sleep=0.02))


#: How many fresh tokens a process keeps in memory in front of its store (oldest go first).
LOCAL_TOKENS = 10_000


class TokenCache:
    """Tokens in a :class:`TokenStore`, renewed when due, once for many concurrent users.

    A fresh token is also kept in this process (:meth:`peek`): a delivery then costs no
    store round trip (no Redis command), and the async sender needs no thread to get it.
    A token revoked early is dropped here on the 401 it causes in this process; each other
    process learns the same way, one 401 and retry each, then finds the new token in the store.
    """

    def __init__(
        self,
        store: TokenStore,
        prefix: str,
        *,
        key_secret: str | None = None,
        lock_timeout: float = 30.0,
        now: Clock = time.time,
    ) -> None:
        self.store = store
        self._prefix = prefix
        self._key_secret = (key_secret or "herald-token-cache").encode("utf-8")
        self.lock_timeout = lock_timeout
        self.now = now
        self._local: dict[str, CachedToken] = {}
        self._local_guard = threading.Lock()

    def key(self, kind: str, *parts: str | None) -> str:
        """``{prefix}:{kind}:{hmac}`` over ``parts`` (which may include secrets)."""
        material = "\x00".join(p or "" for p in parts).encode("utf-8")
        digest = hmac.new(self._key_secret, material, hashlib.sha256).hexdigest()
        return f"{self._prefix}:{kind}:{digest}"

    def put(self, key: str, value: str, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds; nothing is kept for ``ttl <= 0``."""
        if ttl <= 0:
            self.store.delete(key)
        else:
            self.store.set(key, value, ttl)

    def _token(self, key: str) -> CachedToken | None:
        return CachedToken.loads(self.store.get(key) or "")

    def peek(self, key: str) -> CachedToken | None:
        """The token at ``key`` if this process holds it fresh, without touching the store."""
        token = self._local.get(key)
        return token if token is not None and token.fresh(self.now()) else None

    def _remember(self, key: str, token: CachedToken) -> CachedToken:
        if token.fresh(self.now()):
            with self._local_guard:
                if key not in self._local and len(self._local) >= LOCAL_TOKENS:
                    del self._local[next(iter(self._local))]
                self._local[key] = token
        return token

    def invalidate(self, key: str, access_token: str) -> None:
        """Drop ``access_token`` (an endpoint refused it), here and in the store, unless the
        store already holds a newer one."""
        with self._local_guard:
            local = self._local.get(key)
            if local is not None and local.access_token == access_token:
                del self._local[key]
        self.store.delete_if(key, holds(access_token))

    def obtain(self, key: str, fetch: Callable[[CachedToken | None], CachedToken]) -> CachedToken:
        """The cached token at ``key``, renewed through ``fetch`` under the lock when due.

        ``fetch`` gets the stale token (or ``None``) and returns a new one.
        """
        hit = self.peek(key)
        if hit is not None:
            return hit
        now = self.now()
        current = self._token(key)
        if current is not None and current.fresh(now):
            return self._remember(key, current)
        lock = self.store.lock(key, self.lock_timeout)
        if current is not None and current.usable(now):
            # Someone else renewing? Keep using the still-valid token rather than wait.
            if not lock.acquire(blocking=False):
                return current
            acquired = True
        else:
            acquired = lock.acquire(blocking=True, timeout=self.lock_timeout)
        if not acquired:
            # The holder is stuck or died; fetching without the lock beats failing.
            log.warning("token lock %s not acquired in time; fetching anyway", key)
        try:
            latest = self._token(key)
            if latest is not None and latest.fresh(self.now()):
                return self._remember(key, latest)
            token = fetch(latest)
            self.put(key, token.dumps(), token.expires_at - self.now())
            return self._remember(key, token)
        finally:
            if acquired:
                lock.release()
