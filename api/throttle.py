"""The token endpoint's brute-force throttle: failed logins per client id and per address.

200 wrong secrets in 3-6 s were all answered 401, each costing about 25 ms of PBKDF2. Now the
failures of each client id and of each source address are counted in a fixed window; past the
limit, a token request is answered 429 with ``Retry-After`` *before* the secret is hashed, so
a brute force costs the attacker time and the API almost nothing. Each attempt is counted as
a failure before it is checked (so concurrent guesses cannot all slip in), and a success
takes it back: it clears its client id's count, and returns its address's one attempt (one
address may try many client ids).

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

    def reserve(self, client_id: str, address: str) -> int | None:
        """Count this attempt as a failure in advance, in one round trip; the seconds to wait
        if it is over a limit, else ``None`` to go on (and :meth:`succeeded` takes it back).

        Counting first, not after the ~25 ms of hashing, is what stops concurrent guesses:
        checked then counted, 64 at once got 47 answers instead of 10.
        """
        pairs = self._pairs(client_id, address)
        try:
            pipe = self._redis.pipeline(transaction=True)
            for key, _ in pairs:
                pipe.incr(key)
                pipe.expire(key, self.policy.window_s, nx=True)
                pipe.pttl(key)
            replies = pipe.execute()
        except redis.RedisError as exc:
            log.warning("login throttle: Redis unavailable (%s); not throttling", exc)
            return None
        # Over the limit means past it: the limit's own attempt still goes through.
        counted = [
            Counted(int(replies[3 * i]) - 1, int(replies[3 * i + 2]), limit)
            for i, (_, limit) in enumerate(pairs)
        ]
        return retry_after(counted)

    def succeeded(self, client_id: str, address: str) -> None:
        """The reserved attempt succeeded: clear the client id's failures, and give the
        address its attempt back."""
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.delete(self._keys.login_failures("client", client_id))
            pipe.decr(self._keys.login_failures("address", address))
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("login throttle: Redis unavailable (%s)", exc)
