"""Per-process resources of a worker: store, Redis client, sender, caches and runners.

Built lazily on first use *in the process that uses them*: prefork children must not inherit
sockets or connection pools opened by the parent before the fork.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import redis

from integrations.config import Settings, get_settings
from integrations.redis_keys import RedisKeys
from integrations.store import Store
from notifiers.sender import Sender
from worker.attempt import Deliverer
from worker.batch import BatchRunner
from worker.events import EventCache
from worker.schedule import RetrySchedule
from worker.sending import SendPool


@dataclass
class Runtime:
    """Everything a task needs, for one process."""

    settings: Settings
    keys: RedisKeys
    store: Store
    redis: redis.Redis
    schedule: RetrySchedule
    ingest_retries: RetrySchedule
    sender: Sender
    pool: SendPool
    events: EventCache
    deliverer: Deliverer
    batch: BatchRunner

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        """Open the store, Redis and an HTTP sender for ``settings``."""
        store = Store(settings.database_url, settings.secret_key)
        client = redis.Redis.from_url(settings.redis_url, health_check_interval=30)
        schedule = RetrySchedule(client, settings.redis_prefix)
        sender = Sender(settings, client)
        pool = SendPool(
            sender.send_async,
            close=sender.aclose,
            concurrency=settings.send_concurrency,
            per_endpoint=settings.endpoint_concurrency,
        )
        events = EventCache(store)
        return cls(
            settings=settings,
            keys=RedisKeys(settings.redis_prefix),
            store=store,
            redis=client,
            schedule=schedule,
            ingest_retries=RetrySchedule(client, settings.redis_prefix, "ingest-retry"),
            sender=sender,
            pool=pool,
            events=events,
            deliverer=Deliverer(settings, store, sender, client, schedule),
            batch=BatchRunner(settings, store, client, events, pool),
        )

    def close(self) -> None:
        """Release connections."""
        self.pool.close()
        self.sender.close()
        self.store.close()
        self.redis.close()


_lock = threading.Lock()
_current: tuple[int, Runtime] | None = None


def get_runtime() -> Runtime:
    """This process's runtime, built on first use (and again after a fork)."""
    global _current
    with _lock:
        if _current is None or _current[0] != os.getpid():
            _current = (os.getpid(), Runtime.build(get_settings()))
        return _current[1]
