"""The Celery app and the settings that make delivery crash-safe on Redis.

Each setting below answers a measured failure of Celery/kombu on Redis (Celery 5.7, kombu 5.7):

``task_acks_late`` + ``task_reject_on_worker_lost``
    By default a message is acknowledged when a worker *receives* it, so a worker killed
    mid-task loses it. Acking late, and requeueing when the child process dies, keeps it.
``task_acks_on_failure_or_timeout``
    Herald's tasks record their own failures (the activity log, the retry schedule), so a task
    that raised is done: re-running it forever would be a poison loop.
``worker_prefetch_multiplier = 1``
    A delivery waits in exactly one worker's hands at a time; prefetched messages would sit
    behind a slow endpoint while other workers idle, and count against the visibility timeout.
``visibility_timeout`` (``HERALD_VISIBILITY_TIMEOUT``, default 3600 s)
    How long an unacknowledged message stays reserved before kombu restores it to the queue.
    It must exceed the longest task (a delivery is bounded by its connect + read timeouts, far
    below it), or a slow delivery would be handed to a second worker. Herald never puts long
    delays in ETA/countdown messages (they would be redelivered every visibility timeout);
    retries wait in :mod:`worker.schedule` instead.
``unacked_restore_interval`` / ``unacked_restore_throttle``
    When a whole worker node dies, its unacked messages wait for the visibility timeout and
    then for kombu's restore sweep, which by default runs about every 100 s. These make the
    sweep run every 10 s.
``max_connections``
    kombu's Redis pool defaults to 10; with ``acks_late`` under concurrency the pool runs dry
    and acks fail ("Couldn't ack"), stranding messages. Kept well above worker concurrency.
``task_publish_retry_policy``
    ``apply_async`` gives up after about 0.6 s by default, so a Redis restart during a publish
    would drop the task. Herald retries publishing for up to about a minute.
``worker_cancel_long_running_tasks_on_connection_loss``
    With ``acks_late``, a task still running when the broker connection drops is redelivered;
    cancelling it avoids running it twice.
``worker_send_task_events`` / ``task_send_sent_event``
    Flower shows tasks only when workers send events. A task carries a whole batch of stream
    entries, so its events are shared by the batch's deliveries.
``task_annotations``
    Time limits of the batch and delivery tasks, from ``HERALD_DELIVER_TIME_LIMIT``: the soft
    limit bounds one attempt (token request + connect + read, and rendering, which the sandbox
    cannot bound itself) and is recorded as a retryable internal error.

This module builds the app and has no import-time side effects; :mod:`worker.main` is the
composition root that ``celery -A worker.main`` loads.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

from integrations.config import Settings


def broker_url(redis_url: str) -> str:
    """kombu's spelling of a redis-py URL (``unix://path`` becomes ``redis+socket://path``)."""
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url.removeprefix("unix://")
    return redis_url


def celery_broker(settings: Settings) -> str:
    """Celery's broker: ``HERALD_BROKER_URL`` (RabbitMQ, ``amqp://``), else Herald's Redis."""
    return settings.broker_url or broker_url(settings.redis_url)


def is_amqp(url: str) -> bool:
    """Whether a broker URL names an AMQP broker (RabbitMQ)."""
    return url.split("://", 1)[0] in {"amqp", "amqps", "pyamqp"}


def _redis_transport_options(settings: Settings, concurrency: int) -> dict[str, Any]:
    # Only the Redis transport needs these: RabbitMQ returns an unacknowledged message by
    # itself when its consumer's connection dies, with no visibility timeout or sweep.
    return {
        "visibility_timeout": settings.visibility_timeout,
        "unacked_restore_interval": 10,
        "unacked_restore_throttle": 1,
        "max_connections": max(50, concurrency * 4),
        "socket_timeout": 30,
        "socket_connect_timeout": 5,
        "health_check_interval": 25,
    }


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery configuration for ``settings``; see the module docstring."""
    concurrency = int(os.environ.get("HERALD_WORKER_CONCURRENCY", "0") or 0) or (
        os.cpu_count() or 2
    )
    broker = celery_broker(settings)
    return {
        "broker_url": broker,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "broker_transport_options": (
            {} if is_amqp(broker) else _redis_transport_options(settings, concurrency)
        ),
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "task_publish_retry": True,
        "task_publish_retry_policy": {
            "max_retries": 30,
            "interval_start": 0.2,
            "interval_step": 0.5,
            "interval_max": 3,
        },
        "task_default_queue": settings.queue,
        "task_routes": {"herald.ingest_batch": {"queue": settings.keys.batch_queue}},
        "task_serializer": "json",
        "accept_content": ["json"],
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "worker_hijack_root_logger": False,
        "task_soft_time_limit": 600,
        "task_time_limit": 900,
        "task_annotations": _time_limits(settings),
        "worker_max_tasks_per_child": 10_000,
        "timezone": "UTC",
    }


def _time_limits(settings: Settings) -> dict[str, dict[str, float]]:
    limit = settings.deliver_time_limit
    limits = {"time_limit": limit, "soft_time_limit": limit - min(30.0, limit // 5)}
    return {"herald.deliver": limits, "herald.ingest_batch": limits}


def make_celery(settings: Settings, *, include_tasks: bool = True) -> Celery:
    """A Celery app for ``settings``; its queue is named after ``settings.redis_prefix``.

    The API builds one with ``include_tasks=False`` only to send tasks by name.
    """
    celery = Celery("herald", include=["worker.tasks"] if include_tasks else [])
    celery.conf.update(celery_config(settings))
    return celery
