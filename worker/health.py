"""Endpoint health: a circuit breaker per endpoint, and auto-disable of failing events.

Decisions are pure functions over a small state record; :class:`EndpointHealth` keeps the
records in Redis so every worker process shares them.

* **Circuit breaker.** After ``threshold`` consecutive retryable failures of one endpoint
  (scheme, host and port), deliveries to it wait instead of hammering it: the breaker opens for
  ``cooldown`` seconds, doubling on each failure while open, up to ``max_cooldown``. Waiting
  deliveries are deferred, not attempted, so their attempt counts still follow the retry
  schedule. The first attempt after the cooldown is the probe: success closes the breaker.
* **Auto-disable.** An event whose every attempt has failed for ``disable_after`` seconds
  (default 5 days) is deactivated, with the reason kept on the event and shown by the API.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import redis


@dataclass(frozen=True)
class BreakerPolicy:
    """How the breaker reacts: failures before opening, and cooldowns."""

    threshold: int = 5
    cooldown: float = 30.0
    max_cooldown: float = 600.0


@dataclass(frozen=True)
class BreakerState:
    """One endpoint's record: consecutive failures, and until when it is open (unix s)."""

    failures: int = 0
    open_until: float = 0.0


def endpoint_of(url: str) -> str:
    """The breaker's key for ``url``: ``scheme://host:port`` (paths share one breaker)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


def is_open(state: BreakerState, now: float) -> bool:
    """Whether deliveries to the endpoint must wait."""
    return now < state.open_until


def after_failure(state: BreakerState, now: float, policy: BreakerPolicy) -> BreakerState:
    """The record after one more retryable failure."""
    failures = state.failures + 1
    if failures < policy.threshold:
        return BreakerState(failures, state.open_until)
    # Each failure past the threshold doubles the cooldown: a dead endpoint is probed less and
    # less often, a flapping one soon again.
    cooldown = min(policy.cooldown * 2 ** (failures - policy.threshold), policy.max_cooldown)
    return BreakerState(failures, now + cooldown)


def should_disable(first_failure: float | None, now: float, disable_after: float) -> bool:
    """Whether an event failing since ``first_failure`` has failed for too long."""
    return first_failure is not None and now - first_failure >= disable_after


class EndpointHealth:
    """Breaker records and event failure streaks, shared through Redis."""

    def __init__(self, client: redis.Redis, prefix: str, policy: BreakerPolicy) -> None:
        self._redis = client
        self._prefix = prefix
        self.policy = policy

    def _key(self, endpoint: str) -> str:
        return f"{self._prefix}:breaker:{endpoint}"

    def state(self, endpoint: str) -> BreakerState:
        """The endpoint's current record."""
        raw = self._redis.hgetall(self._key(endpoint))
        return BreakerState(
            failures=int(raw.get(b"failures", 0)), open_until=float(raw.get(b"open_until", 0.0))
        )

    def record_failure(self, endpoint: str, now: float | None = None) -> BreakerState:
        """Count a retryable failure of ``endpoint``; returns the new record."""
        now = time.time() if now is None else now
        new = after_failure(self.state(endpoint), now, self.policy)
        key = self._key(endpoint)
        pipe = self._redis.pipeline()
        pipe.hset(key, mapping={"failures": new.failures, "open_until": new.open_until})
        pipe.expire(key, int(self.policy.max_cooldown * 4) + 3600)
        pipe.execute()
        return new

    def record_success(self, endpoint: str) -> None:
        """The endpoint answered: close its breaker."""
        self._redis.delete(self._key(endpoint))

    # -- event failure streaks (auto-disable) ----------------------------------------------

    def _streak_key(self, event_id: str) -> str:
        return f"{self._prefix}:failing-since:{event_id}"

    def event_failed(self, event_id: str, now: float | None = None, *, gap: float) -> float:
        """Note a failed attempt of ``event_id``; returns when its failure streak began.

        A streak is broken by a success, and also by ``gap`` seconds without any failure: an
        event that failed once last week and once today has not been failing all along.
        """
        now = time.time() if now is None else now
        key = self._streak_key(event_id)
        raw = self._redis.hgetall(key)
        first, last = float(raw.get(b"first", now)), float(raw.get(b"last", now))
        if now - last > gap:
            first = now
        self._redis.hset(key, mapping={"first": first, "last": now})
        self._redis.expire(key, int(gap) + 86400)
        return first

    def event_succeeded(self, event_id: str) -> None:
        """A success ends the event's failure streak."""
        self._redis.delete(self._streak_key(event_id))
