"""The baselines' Celery app: a bare no-op task and the naive one-task-per-delivery script.

Run by ``celery -A bench.celery_app worker`` (see :mod:`bench.baseline`), configured by
``BENCH_BROKER_URL`` and ``BENCH_QUEUE``. Celery's defaults otherwise: this is what "a bare
Celery task" means, so nothing here may be tuned to make the baseline look better or worse.

* ``bench.noop(counter)`` increments a Redis counter (one ``INCR``: how the bench tells the
  tasks are done);
* ``bench.post(url, body)`` is what a developer would write first: ``requests.post`` the
  rendered payload, a new connection each time.
"""

from __future__ import annotations

import os

import redis
from celery import Celery

NOOP = "bench.noop"
POST = "bench.post"


def make_app(broker_url: str, queue: str) -> Celery:
    """A Celery app on ``broker_url`` whose tasks go to ``queue``."""
    app = Celery("bench", broker=broker_url)
    app.conf.update(
        task_default_queue=queue,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    return app


# Celery's command line needs a module-level app; only the baseline worker imports this module.
app = make_app(
    os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/0"),
    os.environ.get("BENCH_QUEUE", "bench-celery"),
)
_redis: redis.Redis | None = None


@app.task(name=NOOP)
def noop(counter: str) -> None:
    """Count one finished task."""
    global _redis
    if _redis is None:  # one client per pool child, made after the fork
        _redis = redis.Redis.from_url(app.conf.broker_url)
    _redis.incr(counter)


@app.task(name=POST)
def post(url: str, body: str) -> None:
    """Deliver one payload the naive way."""
    import requests

    requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=30)
