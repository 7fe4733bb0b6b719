"""Prometheus metrics of the delivery path, summed over a node's processes.

Celery runs a node as a main process and forked pool children, so the metrics are kept in
prometheus-client's multiprocess mode: each process writes its own memory-mapped files in
one directory per node, and the node's main process serves their sum at ``/metrics`` on
``HERALD_METRICS_PORT`` (:func:`serve`). The directory has to be chosen before
``prometheus_client`` is first imported in the process, which is why this module sets it on
import when the node did not (`worker.main` gives each worker node a fresh one).

Labels stay bounded: tenant, entity, outcome, status code, kind; never a message or a
delivery id. The queue gauges (retry schedule, stream) are read from Redis when the API's
``/metrics`` is scraped (:mod:`api.routes.metrics`), since they are the deployment's, not
one node's.
"""

from __future__ import annotations

import collections
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:  # before prometheus_client is imported
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="herald-metrics-")

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["Collector", "GaugeMetricFamily", "exposition", "serve"]

log = logging.getLogger(__name__)

CHANGES = Counter("herald_changes_received", "Entity changes received", ["tenant", "entity"])
ROUTED = Counter(
    "herald_changes_routed",
    "Entity changes by whether any event matched them (matched, filtered_out)",
    ["tenant", "entity", "result"],
)
DELIVERIES = Counter(
    "herald_deliveries",
    "Delivery outcomes: success, retry, failed, dead_letter, waiting",
    ["outcome"],
)
LATENCY = Histogram(
    "herald_delivery_latency_seconds",
    "From the change's arrival on the stream to the endpoint's 2xx",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200),
)
RESPONSES = Counter("herald_http_responses", "Endpoint answers by HTTP status", ["code"])
TOKENS = Counter("herald_token_requests", "Token endpoint requests", ["kind", "result"])
#: OpsRamp's names for the same signals, exactly as OpsRamp spells them (gauges only in
#: type: they are summed over every process that ever ran, dead ones included, and only
#: ever go up), for dashboards built against OpsRamp.
OUTBOUND_FAILURES = Gauge(
    "integration_outbound_failures_count",
    "Outbound integration deliveries that ended FAILED",
    multiprocess_mode="sum",
)
OUTBOUND_TIMEOUTS = Gauge(
    "integration_outbound_timeouts",
    "Outbound integration attempts that timed out",
    multiprocess_mode="sum",
)

#: Delivery statuses and results as ``herald_deliveries_total``'s outcomes.
OUTCOMES = {"sent": "success", "retrying": "retry", "failed": "failed", "waiting": "waiting"}


def received(routed: Iterable[tuple[str, str, bool]], *, dead_letters: int = 0) -> None:
    """Count a batch's changes, ``(tenant, entity, matched)`` each, and its dead letters."""
    # One write per label set and batch, not one per change: each is a locked mmap write.
    tally = collections.Counter(
        (tenant, entity, "matched" if matched else "filtered_out")
        for tenant, entity, matched in routed
    )
    received: collections.Counter[tuple[str, str]] = collections.Counter()
    for (tenant, entity, result), n in tally.items():
        ROUTED.labels(tenant, entity, result).inc(n)
        received[(tenant, entity)] += n
    for (tenant, entity), n in received.items():
        CHANGES.labels(tenant, entity).inc(n)
    if dead_letters:
        DELIVERIES.labels("dead_letter").inc(dead_letters)


def delivered(
    result: str,
    *,
    http_status: int | None = None,
    error_class: str | None = None,
    arrived: float | None = None,
    now: float | None = None,
) -> None:
    """Count one outcome (``sent``, ``retrying``, ``failed``, ``waiting``); a success's
    latency from ``arrived`` (epoch seconds) when known."""
    delivered_many([(result, http_status, error_class, arrived)], now=now)


def delivered_many(
    outcomes: Iterable[tuple[str, int | None, str | None, float | None]],
    *,
    now: float | None = None,
) -> None:
    """:func:`delivered` for a batch's ``(result, http_status, error_class, arrived)``:
    the counters are summed per label set first, so each is written once per batch (every
    write is a locked mmap write)."""
    now = time.time() if now is None else now
    results: collections.Counter[str] = collections.Counter()
    codes: collections.Counter[str] = collections.Counter()
    failures = timeouts = 0
    for result, http_status, error_class, arrived in outcomes:
        results[OUTCOMES.get(result, result)] += 1
        if http_status is not None:
            codes[str(http_status)] += 1
        failures += result == "failed"
        timeouts += error_class == "timeout"
        if result == "sent" and arrived is not None:
            LATENCY.observe(max(0.0, now - arrived))
    for outcome, n in results.items():
        DELIVERIES.labels(outcome).inc(n)
    for code, n in codes.items():
        RESPONSES.labels(code).inc(n)
    if failures:
        OUTBOUND_FAILURES.inc(failures)
    if timeouts:
        OUTBOUND_TIMEOUTS.inc(timeouts)


@contextmanager
def token_request(kind: str) -> Iterator[None]:
    """Count one request to a token endpoint (``oauth2`` or ``jwt``) by how it ended."""
    try:
        yield
    except Exception:
        TOKENS.labels(kind, "failed").inc()
        raise
    TOKENS.labels(kind, "ok").inc()


def serve(port: int) -> None:
    """Serve the node's metrics (every process's, summed) on ``port``; 0: not at all."""
    if not port:
        return
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    try:
        start_http_server(port, registry=registry)
    except OSError as exc:
        log.warning("metrics: cannot listen on port %d (%s); set HERALD_METRICS_PORT", port, exc)
        return
    log.info("herald: metrics on http://0.0.0.0:%d/metrics", port)


def exposition(*collectors: Collector) -> tuple[bytes, str]:
    """This process's (and its siblings') series and ``collectors``'s, as Prometheus text,
    with its content type."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry), CONTENT_TYPE_LATEST


def process_exited(pid: int) -> None:
    """Drop a dead pool child's live gauges (its counters stay counted)."""
    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
