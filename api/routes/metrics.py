"""``/metrics``: the API process's own series, and the deployment's queues read from Redis.

Each worker node serves its own processes' series on ``HERALD_METRICS_PORT``
(:mod:`integrations.metrics`); the gauges here are the deployment's, whichever node does the
work: how many deliveries wait in the retry schedule, how many changes wait in the stream
(and how many were read but not yet stored), and which endpoints' circuit breakers are open.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import redis
from fastapi import APIRouter, Response

from api.deps import ServicesDep

# Through integrations.metrics only: it chooses the multiprocess directory before
# prometheus_client is first imported.
from integrations.metrics import Collector, GaugeMetricFamily, exposition
from worker.ingest import GROUP

router = APIRouter(tags=["health"])

#: Breaker records read per scrape, at most: the gauge is for the ones that are open now.
MAX_BREAKERS = 1000


class QueueCollector(Collector):
    """Reads the deployment's queue depths from Redis at each scrape."""

    def __init__(self, client: redis.Redis, keys: Any) -> None:
        self.redis = client
        self.keys = keys

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.zcard(self.keys.retry)
            pipe.zcard(self.keys.ingest_retry)
            pipe.xlen(self.keys.stream)
            pipe.xpending(self.keys.stream, GROUP)
            retry, ingest_retry, length, pending = pipe.execute(raise_on_error=False)
        except redis.RedisError:
            return  # /readyz says why; the scrape still answers with what it has
        schedule = GaugeMetricFamily(
            "herald_retry_schedule_depth", "Entries waiting in a schedule", labels=["schedule"]
        )
        schedule.add_metric(["retry"], _number(retry))
        schedule.add_metric(["ingest-retry"], _number(ingest_retry))
        yield schedule
        stream = GaugeMetricFamily(
            "herald_stream_pending",
            "Changes in the stream: read and not yet stored (pending), or not read yet",
            labels=["state"],
        )
        read = _number(pending.get("pending", 0) if isinstance(pending, dict) else 0)
        stream.add_metric(["pending"], read)
        stream.add_metric(["unread"], max(0.0, _number(length) - read))
        yield stream
        yield self._breakers()

    def _breakers(self) -> GaugeMetricFamily:
        gauge = GaugeMetricFamily(
            "herald_breaker_open",
            "1 while an endpoint's circuit breaker is open",
            labels=["endpoint"],
        )
        prefix = self.keys.breaker("")
        now = time.time()
        try:
            found = list(self.redis.scan_iter(match=prefix + "*", count=200))[:MAX_BREAKERS]
            pipe = self.redis.pipeline(transaction=False)
            for key in found:
                pipe.hget(key, "open_until")
            until = pipe.execute()
        except redis.RedisError:
            return gauge
        for key, value in zip(found, until, strict=True):
            if value is not None and float(value) > now:
                name = key.decode() if isinstance(key, bytes) else str(key)
                gauge.add_metric([name.removeprefix(prefix)], 1.0)
        return gauge


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


@router.get("/metrics", response_class=Response)
def metrics_endpoint(svc: ServicesDep) -> Response:
    """Prometheus metrics (text format)."""
    body, content_type = exposition(QueueCollector(svc.redis, svc.settings.keys))
    return Response(body, media_type=content_type)
