"""The retry schedule: pure backoff, and a durable schedule of pending retries in Redis.

Retries never wait in Celery ETA/countdown messages: those live in one worker's memory and,
past the visibility timeout, are redelivered over and over. Pending retries are kept in a Redis
sorted set scored by due time; :meth:`RetrySchedule.claim_due` hands due ones out under a
lease: the entry stays, due again when the lease ends, until the work itself replaces or
removes it. So a scheduler that crashes after claiming, or a task message the broker loses,
loses nothing, and several schedulers can run at once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence

import redis

# Claim up to ARGV[2] members due by ARGV[1], pushing each one's score to the lease deadline
# ARGV[3]; all in one script so two schedulers never claim the same member.
_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[3], member)
end
return due
"""

# Removes the member only if its score is still the one given: the entry a claim leased,
# untouched since (a replay or a new attempt that rescheduled it must keep its entry).
_REMOVE_IF_UNCHANGED = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
"""


def compute_backoff(
    attempts_made: int,
    schedule: Sequence[float],
    *,
    jitter: float = 0.2,
    retry_after: float | None = None,
    max_retry_after: float = 3600.0,
    rand: Callable[[], float] = random.random,
) -> float | None:
    """Seconds to wait before the next attempt, or ``None`` when retries are exhausted.

    ``attempts_made`` attempts have failed so far (1 after the first). The delay is
    ``schedule[attempts_made - 1]`` spread by +/- ``jitter`` (so endpoints recovering from an
    outage are not hit by every delivery in the same second), and never shorter than a
    ``Retry-After`` the endpoint sent, itself clamped to ``max_retry_after``.
    """
    if attempts_made < 1 or attempts_made > len(schedule):
        return None
    base = schedule[attempts_made - 1]
    delay = base * (1.0 + jitter * (2.0 * rand() - 1.0))
    if retry_after is not None:
        delay = max(delay, min(max(retry_after, 0.0), max_retry_after))
    return max(delay, 0.0)


class RetrySchedule:
    """Pending retries in a Redis sorted set: member = what to retry, score = due time (ms).

    Members are delivery ids in the ``retry`` set, and raw messages whose processing failed
    in the ``ingest-retry`` set.
    """

    def __init__(self, client: redis.Redis, prefix: str, name: str = "retry") -> None:
        self._redis = client
        self.key = f"{prefix}:{name}"
        self._claim = client.register_script(_CLAIM)
        self._remove_if_unchanged = client.register_script(_REMOVE_IF_UNCHANGED)

    def add(self, delivery_id: str, due: float) -> None:
        """Schedule ``delivery_id`` at unix time ``due`` (replacing an earlier entry)."""
        self.add_ms(delivery_id, int(due * 1000))

    def add_ms(self, delivery_id: str, due_ms: int) -> None:
        """:meth:`add` at ``due_ms`` (unix milliseconds), for a caller that keeps the score."""
        self._redis.zadd(self.key, {delivery_id: due_ms})

    def remove(self, delivery_id: str) -> None:
        """Drop any pending retry of ``delivery_id``."""
        self._redis.zrem(self.key, delivery_id)

    def remove_if_unchanged(self, delivery_id: str, claimed_ms: int) -> bool:
        """Drop ``delivery_id``'s entry if it is still the one a claim leased at
        ``claimed_ms`` (as :meth:`claim_due` returned it); ``True`` if it was dropped."""
        return bool(self._remove_if_unchanged(keys=[self.key], args=[delivery_id, claimed_ms]))

    def claim_due(
        self, now: float | None = None, *, lease: float = 60.0, limit: int = 100
    ) -> list[tuple[str, int]]:
        """Claim due entries; each stays in the set, due again when its lease ends."""
        now = time.time() if now is None else now
        lease_ms = int((now + lease) * 1000)
        members = self._claim(keys=[self.key], args=[int(now * 1000), limit, lease_ms])
        return [(m.decode() if isinstance(m, bytes) else str(m), lease_ms) for m in members]

    def due_at(self, delivery_id: str) -> float | None:
        """When ``delivery_id`` is due (unix seconds), or ``None`` if not scheduled."""
        score = self._redis.zscore(self.key, delivery_id)
        return None if score is None else float(score) / 1000.0

    def __len__(self) -> int:
        return int(self._redis.zcard(self.key))
