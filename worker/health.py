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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import redis

from integrations.redis_keys import RedisKeys

if TYPE_CHECKING:
    from integrations.config import Settings


@dataclass(frozen=True)
class BreakerPolicy:
    """How the breaker reacts: failures before opening, and cooldowns."""

    threshold: int = 5
    cooldown: float = 30.0
    max_cooldown: float = 600.0

    @classmethod
    def of(cls, settings: Settings) -> BreakerPolicy:
        """The policy ``settings`` configure (``HERALD_BREAKER_*``)."""
        return cls(
            settings.breaker_threshold, settings.breaker_cooldown, settings.breaker_max_cooldown
        )


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


def breaker_key(tenant_id: str, url: str) -> str:
    """The breaker of one tenant's endpoint: one tenant's failures on a shared SaaS host must
    not pause the others'."""
    return f"{tenant_id}|{endpoint_of(url)}"


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
        self._keys = RedisKeys(prefix)
        self.policy = policy

    def _key(self, endpoint: str) -> str:
        return self._keys.breaker(endpoint)

    def state(self, endpoint: str) -> BreakerState:
        """The endpoint's current record."""
        return _breaker_state(self._redis.hgetall(self._key(endpoint)))

    def snapshot(
        self, endpoints: Sequence[str], event_ids: Sequence[str]
    ) -> tuple[dict[str, BreakerState], set[str]]:
        """The records of several endpoints, and which events have a failure streak, in one
        round trip: a batch reads them once, and writes back only what changes."""
        pipe = self._redis.pipeline(transaction=False)
        for endpoint in endpoints:
            pipe.hgetall(self._key(endpoint))
        for event_id in event_ids:
            pipe.exists(self._streak_key(event_id))
        replies = pipe.execute()
        states = {e: _breaker_state(r) for e, r in zip(endpoints, replies, strict=False)}
        streaks = replies[len(endpoints) :]
        failing = {e for e, n in zip(event_ids, streaks, strict=True) if n}
        return states, failing

    def forget(self, endpoints: Sequence[str], event_ids: Sequence[str]) -> None:
        """Successes: close these breakers and end these events' failure streaks, at once."""
        keys = [self._key(e) for e in endpoints] + [self._streak_key(e) for e in event_ids]
        if keys:
            self._redis.delete(*keys)

    def record_failure(
        self, endpoint: str, now: float | None = None, *, count: int = 1
    ) -> BreakerState:
        """Count ``count`` retryable failures of ``endpoint``; returns the new record.

        Read, decide and write run as one optimistic transaction (WATCH/MULTI, retried on a
        conflict): workers failing against the same endpoint at the same instant must each
        count, or the breaker opens later than its threshold says.
        """
        now = time.time() if now is None else now

        def update(raw: Mapping[Any, Any]) -> tuple[BreakerState, dict[str, float]]:
            new = _breaker_state(raw)
            for _ in range(count):
                new = after_failure(new, now, self.policy)
            return new, {"failures": new.failures, "open_until": new.open_until}

        ttl = int(self.policy.max_cooldown * 4) + 3600
        return _update_hash(self._redis, self._key(endpoint), update, ttl)

    def record_success(self, endpoint: str) -> None:
        """The endpoint answered: close its breaker."""
        self._redis.delete(self._key(endpoint))

    # -- event failure streaks (auto-disable) ----------------------------------------------

    def _streak_key(self, event_id: str) -> str:
        return self._keys.failing_since(event_id)

    def event_failed(self, event_id: str, now: float | None = None, *, gap: float) -> float:
        """Note a failed attempt of ``event_id``; returns when its failure streak began.

        A streak is broken by a success, and also by ``gap`` seconds without any failure: an
        event that failed once last week and once today has not been failing all along.
        """
        now = time.time() if now is None else now

        def update(raw: Mapping[Any, Any]) -> tuple[float, dict[str, float]]:
            first, last = float(raw.get(b"first", now)), float(raw.get(b"last", now))
            if now - last > gap:
                first = now
            return first, {"first": first, "last": max(last, now)}

        return _update_hash(self._redis, self._streak_key(event_id), update, int(gap) + 86400)

    def disable_reason(
        self, event_id: str, last_reason: str, now: float, *, gap: float, disable_after: float
    ) -> str | None:
        """Note a failed attempt of ``event_id``; the reason to disable it, once every
        attempt has failed for ``disable_after`` seconds (``None`` before)."""
        since = self.event_failed(event_id, now, gap=gap)
        if not should_disable(since, now, disable_after):
            return None
        started = datetime.fromtimestamp(since, UTC).isoformat(timespec="seconds")
        return f"auto-disabled: every delivery attempt failed since {started}; last: {last_reason}"

    def event_succeeded(self, event_id: str) -> None:
        """A success ends the event's failure streak."""
        self._redis.delete(self._streak_key(event_id))


def _breaker_state(raw: Mapping[Any, Any]) -> BreakerState:
    """A breaker record as stored in its Redis hash (absent fields: a closed breaker)."""
    return BreakerState(
        failures=int(raw.get(b"failures", 0)), open_until=float(raw.get(b"open_until", 0.0))
    )


_T = TypeVar("_T")


def _update_hash(
    client: redis.Redis,
    key: str,
    update: Callable[[Mapping[Any, Any]], tuple[_T, Mapping[str, float]]],
    ttl: int,
) -> _T:
    """Read the hash at ``key``, let ``update`` decide its new fields, and write them, as one
    optimistic transaction (WATCH/MULTI, repeated on a conflict). Workers recording failures
    of one endpoint at the same instant must each count, or a breaker opens later than its
    threshold says. Returns what ``update`` returned with the fields that were written."""
    with client.pipeline() as pipe:
        while True:
            try:
                pipe.watch(key)  # type: ignore[no-untyped-call]
                result, fields = update(pipe.hgetall(key))
                pipe.multi()
                pipe.hset(key, mapping={k: v for k, v in fields.items()})
                pipe.expire(key, ttl)
                pipe.execute()
                return result
            except redis.WatchError:
                continue  # another worker wrote in between: decide again on its record
