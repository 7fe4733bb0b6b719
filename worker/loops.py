"""Background loops of every worker node: the stream ingest and the retry scheduler.

They run as threads of the worker's main process, started and stopped by a Celery bootstep,
so ``celery -A worker.main worker`` is all a deployment runs. Each loop is safe to run on many
nodes at once (consumer group; leased claims) and loses nothing if a node dies.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import redis
from celery import Celery, bootsteps

from integrations import metrics
from integrations.config import get_settings
from worker.app import is_amqp
from worker.ingest import StreamIngest, consumer_name
from worker.schedule import RetrySchedule

log = logging.getLogger(__name__)


Send = Callable[[str, tuple[object, ...]], None]


def sender_of(app: Celery) -> Send:
    """Sends a task by name on ``app``: the loops need no import of the task module."""

    def send(name: str, args: tuple[object, ...]) -> None:
        app.tasks[name].apply_async(args=args)

    return send


def run_scheduler(
    schedule: RetrySchedule,
    ingest_retries: RetrySchedule,
    stop: threading.Event,
    send: Send,
    *,
    lease: float,
    tick: float = 0.5,
) -> None:
    """Move due retries (deliveries, and messages whose processing failed) to the queue."""
    while not stop.is_set():
        try:
            # Claimed entries stay in their set under the lease: the task replaces or removes
            # its entry once done, so a task the broker loses is dispatched again.
            for delivery_id, claimed in schedule.claim_due(lease=lease):
                send("herald.deliver", (delivery_id, None, claimed))
            for raw, _ in ingest_retries.claim_due(lease=lease):
                send("herald.ingest", (raw, None, True))
        except redis.RedisError as exc:
            # Claimed entries stay in the set under their lease and come due again.
            log.warning("retry scheduler: Redis unavailable (%s); retrying", exc)
        except Exception:
            log.exception("retry scheduler: dispatch failed; claimed retries will come due again")
        stop.wait(tick)


def queued_tasks(app: Celery, client: redis.Redis, queue: str) -> Callable[[], int]:
    """How many tasks wait in ``queue`` that no worker has taken yet.

    On Redis, kombu keeps a queue as a list named like it (reserved tasks have left it). On
    RabbitMQ, a passive declare answers with the queue's ready-message count.
    """
    if not is_amqp(str(app.conf.broker_url)):
        return lambda: int(client.llen(queue))
    connection = app.connection_for_write()

    def count() -> int:
        try:
            channel: Any = connection.default_channel
            _, ready, _ = channel.queue_declare(queue=queue, passive=True)
            return int(ready)
        except Exception:
            # Broker away or the queue not declared yet: read on; the stream keeps the work.
            connection.close()
            return 0

    return count


class HeraldLoops(bootsteps.StartStopStep):
    """Starts the ingest and scheduler threads with the worker; stops them on shutdown."""

    requires = ("celery.worker.components:Pool",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, parent: Any) -> None:
        send = sender_of(parent.app)
        consumer = consumer_name()

        def dispatch(entry_ids: list[str]) -> None:
            # The consumer that holds the entries: the task renews their lease in its name.
            send("herald.ingest_batch", (entry_ids, consumer))

        settings = get_settings()
        client = redis.Redis.from_url(settings.redis_url, health_check_interval=30)

        backlog = queued_tasks(parent.app, client, settings.keys.batch_queue)

        stream = StreamIngest(
            client,
            settings.stream_key,
            dispatch,
            consumer=consumer,
            claim_idle=settings.ingest_claim_idle,
            batch=settings.ingest_batch,
            backlog=backlog,
        )
        schedule = RetrySchedule(client, settings.redis_prefix)
        ingest_retries = RetrySchedule(client, settings.redis_prefix, "ingest-retry")
        self._stop.clear()
        self._threads = [
            threading.Thread(
                target=stream.run, args=(self._stop,), name="herald-ingest", daemon=True
            ),
            threading.Thread(
                target=run_scheduler,
                args=(schedule, ingest_retries, self._stop, send),
                kwargs={"lease": settings.dispatch_lease},
                name="herald-retry",
                daemon=True,
            ),
        ]
        for t in self._threads:
            t.start()
        log.info("herald: consuming %s as %s", settings.stream_key, stream.consumer)
        metrics.serve(settings.metrics_port)

    def stop(self, parent: Any) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
