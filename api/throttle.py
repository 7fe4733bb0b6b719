"""The token endpoint's brute-force throttle: failed logins per client id and per address.

200 wrong secrets in 3-6 s were all answered 401, each costing about 25 ms of PBKDF2. Now the
failures of each client id and of each source address are counted in a fixed window; past the
limit, a token request is answered 429 with ``Retry-After`` *before* the secret is hashed, so
a brute force costs the attacker time and the API almost nothing. A success clears its client
id's count (not its address's: one address may try many client ids).

The address is the TCP peer: behind a reverse proxy it is the proxy's, so run the proxy's own
limit too, or give each client its own path to the API.

The decision is pure (:func:`retry_after`); :class:`LoginThrottle` is its thin Redis adapter.
If Redis does not answer, logins go on unthrottled (with a warning): an outage of the
throttle's store must not lock every operator out.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from integrations.redis_keys import RedisKeys

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ThrottlePolicy:
    """How many failures a client id and an address may have per window."""

    per_client: int = 10
    per_address: int = 50
    window_s: int = 60


@dataclass(frozen=True)
class Counted:
    """One counter's failures in its window, and the milliseconds its window has left."""

    failures: int
    ttl_ms: int
    limit: int


def retry_after(counters: Sequence[Counted]) -> int | None:
    """Seconds to wait if any counter reached its limit, else ``None`` (pure)."""
    waits = [max(1, math.ceil(c.ttl_ms / 1000)) for c in counters if c.failures >= c.limit]
    return max(waits) if waits else None


class LoginThrottle:
    """Counts failed token requests in Redis (see the module docstring)."""

    def __init__(
        self, client: redis.Redis, keys: RedisKeys, policy: ThrottlePolicy | None = None
    ) -> None:
        self._redis = client
        self._keys = keys
        self.policy = policy or ThrottlePolicy()

    def _pairs(self, client_id: str, address: str) -> list[tuple[str, int]]:
        return [
            (self._keys.login_failures("client", client_id), self.policy.per_client),
            (self._keys.login_failures("address", address), self.policy.per_address),
        ]

    def retry_after(self, client_id: str, address: str) -> int | None:
        """Seconds the caller must wait before trying again, or ``None`` to go on."""
        pairs = self._pairs(client_id, address)
        try:
            pipe = self._redis.pipeline(transaction=False)
            for key, _ in pairs:
                pipe.get(key)
                pipe.pttl(key)
            replies = pipe.execute()
        except redis.RedisError as exc:
            log.warning("login throttle: Redis unavailable (%s); not throttling", exc)
            return None
        counted = [
            Counted(int(replies[2 * i] or 0), int(replies[2 * i + 1]), limit)
            for i, (_, limit) in enumerate(pairs)
        ]
        return retry_after(counted)

    def failed(self, client_id: str, address: str) -> None:
        """Count one failure for both; the first failure of a window starts it."""
        try:
            pipe = self._redis.pipeline(transaction=False)
            for key, _ in self._pairs(client_id, address):
                pipe.incr(key)
                pipe.expire(key, self.policy.window_s, nx=True)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("login throttle: Redis unavailable (%s); failure not counted", exc)

    def succeeded(self, client_id: str) -> None:
        """Clear the client id's failures."""
        try:
            self._redis.delete(self._keys.login_failures("client", client_id))
        except redis.RedisError as exc:
            log.warning("login throttle: Redis unavailable (%s)", exc)
