"""What keeps a retried delivery in one worker's hands, and never in none.

Used by the per-delivery path (retries, replays, recovery), not by first attempts, whose
lease is their stream entry:

* a **safety entry** in the retry schedule, due once the lock has surely expired, lasts from
  the start of an attempt until its outcome is stored: whatever happens to the process in
  between, the delivery comes due again;
* a **lock** (``SET NX EX``) so two workers never attempt one delivery at once;
* a **start counter**: attempts that started and never finished. A delivery that kills its
  worker every time (a template exhausting memory, a hard time limit) is poison past
  :data:`MAX_UNFINISHED_STARTS`.
"""

from __future__ import annotations

import time
import uuid

import redis

from integrations.redis_keys import RedisKeys
from worker.schedule import RetrySchedule

#: Attempts that may start and never finish (the worker died) before a delivery is poison.
MAX_UNFINISHED_STARTS = 5

#: Seconds a delivery's lock lasts unless its holder renews it (every third of it, while the
#: attempt runs: worker.heartbeat). A holder that dies frees the delivery within this.
LOCK_TTL = 30

# Release a lock only if it is still ours (it may have expired and been taken by another).
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Extend a lock only if it is still ours, and its safety entry only if it is still the one
# we set: an outcome that replaced it (a retry due in 2 s) or removed it must stand.
_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('EXPIRE', KEYS[1], ARGV[2])
local score = redis.call('ZSCORE', KEYS[2], ARGV[3])
if score and tonumber(score) == tonumber(ARGV[4]) then
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[3])
  return 2
end
return 1
"""


class Lease:
    """Locks, safety entries and start counters of deliveries, in Redis."""

    def __init__(
        self, client: redis.Redis, keys: RedisKeys, schedule: RetrySchedule, lock_ttl: int
    ) -> None:
        self._redis = client
        self._keys = keys
        self._schedule = schedule
        self.lock_ttl = lock_ttl
        self._unlock = client.register_script(_UNLOCK)
        self._renew = client.register_script(_RENEW)
        #: The safety entry's score (ms) this process last set, per delivery it holds.
        self._safety: dict[str, int] = {}

    def take(self, delivery_id: str) -> str | None:
        """Lock ``delivery_id`` for one attempt; the lock's token, or ``None`` if it is held.

        The safety entry goes first. When another worker holds the lock, the entry is put
        back where the holder's lock runs out: a redundant dispatch must not push it a whole
        lock period later, which would delay recovery when the holder has died.
        """
        safety_ms = int((time.time() + self.lock_ttl + 1) * 1000)
        self._schedule.add_ms(delivery_id, safety_ms)
        key = self._keys.lock(delivery_id)
        token = uuid.uuid4().hex
        if self._redis.set(key, token, nx=True, ex=self.lock_ttl):
            self._safety[delivery_id] = safety_ms
            return token
        remaining_ms = max(int(self._redis.pttl(key)), 0)  # -2: gone already, due at once
        self._schedule.add(delivery_id, time.time() + remaining_ms / 1000 + 1)
        return None

    def renew(self, delivery_id: str, token: str) -> bool:
        """Extend our lock, and the safety entry with it while no outcome replaced it;
        ``False`` if the lock is not ours."""
        expected = self._safety.get(delivery_id, -1)
        new_ms = int((time.time() + self.lock_ttl + 1) * 1000)
        done = int(
            self._renew(
                keys=[self._keys.lock(delivery_id), self._schedule.key],
                args=[token, self.lock_ttl, delivery_id, expected, new_ms],
            )
        )
        if done == 2:
            self._safety[delivery_id] = new_ms
        return done > 0

    def release(self, delivery_id: str, token: str) -> None:
        """Release the lock if it is still ours."""
        self._safety.pop(delivery_id, None)
        self._unlock(keys=[self._keys.lock(delivery_id)], args=[token])

    def count_start(self, delivery_id: str) -> int:
        """Count one more start of an attempt; returns the starts not yet finished."""
        key = self._keys.starts(delivery_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, 86400)
        starts, _ = pipe.execute()
        return int(starts)

    def finished(self, delivery_id: str) -> None:
        """The attempt finished (whatever its outcome): it was not poison."""
        self._redis.delete(self._keys.starts(delivery_id))
