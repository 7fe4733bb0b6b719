"""Every Redis key Herald owns, in one place.

The API, the worker and the command line all address the same keys; spelling a format out in
several files is how one of them drifts (the API once rebuilt the worker's start-counter key
by hand). Every key starts with ``HERALD_REDIS_PREFIX`` so several deployments can share one
Redis. Token-cache keys are owned by :mod:`notifiers.auth`, which derives them from the same
prefix.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class RedisKeys:
    """The keys of one deployment (one ``HERALD_REDIS_PREFIX``)."""

    prefix: str = "herald"

    @property
    def stream(self) -> str:
        """The stream producers ``XADD`` entity changes to (consumer group ``herald``)."""
        return f"{self.prefix}:changes"

    @property
    def queue(self) -> str:
        """The Celery queue of this deployment's tasks (named like the prefix)."""
        return self.prefix

    @property
    def batch_queue(self) -> str:
        """The Celery queue of ``herald.ingest_batch`` tasks, apart from the retries' queue:
        the stream loop holds its next read only while batches wait, never for retries."""
        return f"{self.prefix}.batches"

    @property
    def retry(self) -> str:
        """Sorted set of deliveries waiting for an attempt (score: due time in ms)."""
        return f"{self.prefix}:retry"

    @property
    def ingest_retry(self) -> str:
        """Sorted set of raw messages whose processing failed (score: due time in ms)."""
        return f"{self.prefix}:ingest-retry"

    def schedule(self, name: str) -> str:
        """A schedule's sorted set by its name (``retry`` or ``ingest-retry``)."""
        return f"{self.prefix}:{name}"

    def lock(self, delivery_id: str) -> str:
        """The lock one attempt at a delivery holds."""
        return f"{self.prefix}:lock:{delivery_id}"

    def starts(self, delivery_id: str) -> str:
        """Counter of attempts at a delivery that started and never finished (poison)."""
        return f"{self.prefix}:starts:{delivery_id}"

    def batch_starts(self, entry_id: str) -> str:
        """Counter of runs of the batch starting at stream entry ``entry_id`` that never
        finished (a message that kills its worker)."""
        return f"{self.prefix}:batch-starts:{entry_id}"

    def entry_starts(self, entry_id: str) -> str:
        """The same, for one entry of such a batch, taken on its own."""
        return f"{self.prefix}:entry-starts:{entry_id}"

    def breaker(self, endpoint: str) -> str:
        """The circuit-breaker record of one tenant's endpoint."""
        return f"{self.prefix}:breaker:{endpoint}"

    def failing_since(self, event_id: str) -> str:
        """The failure streak of an event (auto-disable)."""
        return f"{self.prefix}:failing-since:{event_id}"

    def ingest_attempts(self, raw: str) -> str:
        """Counter of failed tries at processing one raw message."""
        digest = hashlib.sha256(raw.encode("utf-8", "replace")).hexdigest()[:32]
        return f"{self.prefix}:ingest-attempts:{digest}"

    def login_failures(self, kind: str, who: str) -> str:
        """Counter of failed token requests in the current window, by ``kind`` (``client``
        or ``address``): the API's brute-force throttle."""
        digest = hashlib.sha256(who.encode("utf-8", "replace")).hexdigest()[:32]
        return f"{self.prefix}:login-failures:{kind}:{digest}"
