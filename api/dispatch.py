"""Handing work to the workers from the API: new tasks, and replays that cannot be lost."""

from __future__ import annotations

import time
from typing import Protocol

import redis

from integrations.config import Settings
from integrations.store import Store
from worker.schedule import RetrySchedule


class Dispatcher(Protocol):
    """Hands work to the workers (Celery in production)."""

    def deliver(self, delivery_id: str) -> None:
        """Queue one attempt at a delivery."""

    def ingest(self, raw: str) -> None:
        """Queue one raw entity-change message for processing."""


class CeleryDispatcher:
    """Queues work as Celery tasks, by name, on the queue the workers consume."""

    def __init__(self, settings: Settings) -> None:
        from worker.app import make_celery

        self._celery = make_celery(settings, include_tasks=False)
        self._queue = settings.queue

    def deliver(self, delivery_id: str) -> None:
        self._celery.send_task("herald.deliver", args=[delivery_id, None], queue=self._queue)

    def ingest(self, raw: str) -> None:
        self._celery.send_task("herald.ingest", args=[raw], queue=self._queue)


def replay_delivery(
    delivery_id: str,
    *,
    settings: Settings,
    store: Store,
    client: redis.Redis,
    dispatcher: Dispatcher,
) -> None:
    """Requeue one delivery, in any state, with a fresh retry budget."""
    replay_deliveries(
        [delivery_id], settings=settings, store=store, client=client, dispatcher=dispatcher
    )


def replay_deliveries(
    delivery_ids: list[str],
    *,
    settings: Settings,
    store: Store,
    client: redis.Redis,
    dispatcher: Dispatcher,
) -> None:
    """Requeue deliveries, in any state, with a fresh retry budget, keeping their order.

    Every one is reset before any is dispatched, so a delivery replayed with an earlier one
    of its ticket waits for it (per-ticket ordering), whatever order the tasks run in.

    The schedule entry comes first, so the replay happens even if the task message is lost
    (the broker can lose one taken by a node killed at that instant); the delivery task's lock
    and status checks make the second dispatch harmless. The poison counter is cleared: a
    replay follows a fix.
    """
    schedule = RetrySchedule(client, settings.redis_prefix)
    for delivery_id in delivery_ids:
        schedule.add(delivery_id, time.time() + settings.dispatch_lease)
        client.delete(settings.keys.starts(delivery_id))
        store.reset_for_replay(delivery_id)
    for delivery_id in delivery_ids:
        dispatcher.deliver(delivery_id)
