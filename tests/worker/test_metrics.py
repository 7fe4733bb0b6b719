"""Metrics move during a real delivery: a worker node's /metrics (its processes summed) and
the API's /metrics (the deployment's queues, from Redis)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from integrations.config import Settings
from integrations.store import Store
from tests.support.processes import ApiServer, WorkerProcess, wait_for
from tests.support.sinks import RecordingSink, Reply
from tests.worker.conftest import Tenant, change, herald_cli, sink_event_body
from worker.health import BreakerPolicy, EndpointHealth, breaker_key
from worker.redis_server import free_port


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_the_series_move_during_a_real_delivery(
    settings: Settings,
    tmp_path: Path,
    store: Store,
    redis_client: Any,
    api: ApiServer,
    sink: RecordingSink,
) -> None:
    port = free_port()
    env = {"HERALD_METRICS_PORT": str(port)}
    with WorkerProcess(settings, tmp_path, concurrency=2, extra_env=env):
        tenant = Tenant(api, settings, "client_9")
        body = sink_event_body(sink.url)
        body["filterCriteria"] = {
            "matchType": "ANY",
            "rules": [{"key": "subject", "operator": "Contains", "value": "Windows"}],
        }
        tenant.create_event(body)
        sink.reply(Reply(503))  # the first attempt is retried, then succeeds
        messages = [
            change("client_9", {"id": "INC-1", "subject": "Windows down"}, message_id="m1"),
            change("client_9", {"id": "INC-2", "subject": "Linux fine"}, message_id="m2"),
        ]
        herald_cli(settings, "publish", stdin=json.dumps(messages))
        sink.wait_for(2, timeout=30)

        def scrape() -> dict[Any, float]:
            return _samples(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)

        def moved() -> dict[Any, float] | None:
            found = scrape()
            done = _value(found, "herald_deliveries_total", outcome="success") >= 1
            return found if done else None

        samples = wait_for(moved, 15, what="the success in the node's metrics")
        who = {"tenant": "client_9", "entity": "INCIDENT"}
        assert _value(samples, "herald_changes_received_total", **who) == 2
        assert _value(samples, "herald_changes_routed_total", **who, result="matched") == 1
        assert _value(samples, "herald_changes_routed_total", **who, result="filtered_out") == 1
        assert _value(samples, "herald_deliveries_total", outcome="retry") == 1
        assert _value(samples, "herald_http_responses_total", code="503") == 1
        assert _value(samples, "herald_http_responses_total", code="200") == 1
        assert _value(samples, "herald_delivery_latency_seconds_count") == 1
        # OpsRamp's names, as OpsRamp spells them.
        assert ("integration_outbound_failures_count", ()) in samples
        assert ("integration_outbound_timeouts", ()) in samples
        # Labels stay bounded: never a message or a delivery id.
        labels = " ".join(str(key[1]) for key in samples)
        assert "DLV-" not in labels and "m1" not in labels

    # The API's /metrics: the deployment's queues and breakers, read from Redis.
    health = EndpointHealth(redis_client, settings.redis_prefix, BreakerPolicy())
    endpoint = breaker_key("client_9", sink.url)
    health.record_failure(endpoint, time.time(), count=BreakerPolicy().threshold)
    text = httpx.get(f"{api.url}/metrics", timeout=10).text
    samples = _samples(text)
    assert ("herald_retry_schedule_depth", (("schedule", "retry"),)) in samples
    assert ("herald_stream_pending", (("state", "unread"),)) in samples
    assert _value(samples, "herald_breaker_open", endpoint=endpoint) == 1
