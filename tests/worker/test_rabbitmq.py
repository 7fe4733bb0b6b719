"""RabbitMQ as Celery's broker (``HERALD_BROKER_URL``), against the machine's real RabbitMQ.

The stream, schedules and locks stay in Redis; only task messages go through RabbitMQ. A
RabbitMQ that does not answer is a failure, never a skip (``.ci/run`` starts it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from kombu import Connection

from integrations.config import Settings
from integrations.models import IntegrationEventIn
from integrations.store import DeliveryStatus, Store, delivery_id_for
from tests.support.processes import WorkerProcess, wait_for
from tests.support.sinks import RecordingSink
from tests.worker.conftest import b64
from worker.app import make_celery
from worker.loops import queued_tasks

AMQP_URL = os.environ.get("HERALD_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


@pytest.fixture
def amqp_settings(settings: Settings) -> Iterator[Settings]:
    try:
        with Connection(AMQP_URL, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:  # pragma: no cover - a broken environment
        pytest.fail(f"RabbitMQ at {AMQP_URL} does not answer ({exc}); run .ci/run")
    yield dataclasses.replace(settings, broker_url=AMQP_URL)
    # The test's queue is named after its prefix.
    for queue in (settings.queue, settings.keys.batch_queue):
        with Connection(AMQP_URL) as conn, contextlib.suppress(Exception):
            conn.default_channel.queue_delete(queue)


def test_deliveries_flow_with_rabbitmq_as_the_broker(
    amqp_settings: Settings, store: Store, redis_client: redis.Redis, tmp_path: Path
) -> None:
    with RecordingSink() as sink:
        store.create_tenant("t")
        installed = store.install("t", "CUSTOM", "x").id
        body: dict[str, Any] = {
            "name": "n",
            "entity": "INCIDENT",
            "eventType": "CREATE",
            "notifier": {"type": "REST_API", "baseURI": sink.url, "authType": "NONE"},
            "endPointURI": "/t",
            "payload": b64('{"id":"$incident.id"}'),
        }
        event = store.create_event("t", installed, IntegrationEventIn.model_validate(body))
        with WorkerProcess(amqp_settings, tmp_path, concurrency=2):
            for i in range(20):
                change = {
                    "id": f"m{i}",
                    "tenantId": "t",
                    "entity": "INCIDENT",
                    "eventType": "CREATE",
                    "occurredAt": datetime.now(UTC).isoformat(),
                    "data": {"id": f"INC-{i}"},
                }
                redis_client.xadd(amqp_settings.stream_key, {"message": json.dumps(change)})
            wait_for(lambda: sink.count >= 20, 60, 0.05, "20 deliveries through RabbitMQ")
        assert sorted(r.json()["id"] for r in sink.requests) == sorted(
            f"INC-{i}" for i in range(20)
        )
        for i in range(20):
            row = store.get_delivery(delivery_id_for("t", f"m{i}", event.id))
            assert row is not None and row.status == DeliveryStatus.SUCCESS
    # The broker carried only ids: the stream entries are acknowledged and gone.
    assert redis_client.xlen(amqp_settings.stream_key) == 0


def test_the_ingest_backlog_is_read_from_rabbitmq(
    amqp_settings: Settings, redis_client: redis.Redis
) -> None:
    """Tasks waiting in the RabbitMQ queue hold the stream loop's next read, as on Redis."""
    app = make_celery(amqp_settings, include_tasks=False)
    count = queued_tasks(app, redis_client, amqp_settings.keys.batch_queue)
    assert count() == 0  # not declared yet: no backlog, read on
    for _ in range(3):
        app.send_task("herald.ingest_batch", args=[["0-1"]])  # routed to the batch queue
    wait_for(lambda: count() == 3, 10, 0.05, "three queued tasks counted")
