"""Benchmarks (``make bench``): rule matching, rendering, and end-to-end delivery throughput.

Bounded in count and time; every server is on loopback. Prints one line per figure.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from cryptography.fernet import Fernet

from integrations.config import Settings
from integrations.enums import Entity
from integrations.models import FilterCriteria, IntegrationEventIn
from integrations.store import Store
from rules.matcher import compile_criteria
from rules.render import Syntax, render
from tests.conftest import LOOPBACK, TEST_REDIS_URL
from tests.support.processes import WorkerProcess, wait_for
from tests.support.sinks import RecordedRequest, RecordingSink, Reply

CRITERIA = FilterCriteria.model_validate(
    {
        "matchType": "ALL",
        "rules": [
            {"key": "Subject", "operator": "Contains", "value": "windows"},
            {"key": "priority.name", "operator": "Equals", "value": "P1"},
            {"key": "Description", "operator": "Regex", "value": "disk (full|failure)"},
        ],
    }
)
DATA = {
    "id": "INC-1",
    "subject": "Windows host WIN-42 disk",
    "description": "C: drive: disk full at 99 %",
    "priority": {"name": "P1"},
}
TEMPLATE = (
    '{"subject":"$incident.subject","description":"$incident.description",'
    '"priority":"$incident.priority.name","id":"$incident.id"}'
)


def per_second(fn: Any, n: int) -> float:
    """Calls of ``fn`` per second over ``n`` calls."""
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


def bench_pure(n: int) -> None:
    matcher = compile_criteria(CRITERIA, Entity.INCIDENT)
    assert matcher.matches(DATA)
    rate = per_second(lambda: matcher.matches(DATA), n)
    print(f"match (3 rules, ALL, incl. RE2):  {rate:>12,.0f} /s")
    render(TEMPLATE, entity=Entity.INCIDENT, data=DATA, syntax=Syntax.JSON)
    rate = per_second(
        lambda: render(TEMPLATE, entity=Entity.INCIDENT, data=DATA, syntax=Syntax.JSON), n
    )
    print(f"render (4 placeholders, JSON):    {rate:>12,.0f} /s")


def bench_end_to_end(messages: int, concurrency: int) -> None:
    """Publish ``messages`` changes and time them through a real worker to a loopback sink."""
    client = redis.Redis.from_url(TEST_REDIS_URL)
    prefix = f"herald-bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp, RecordingSink() as sink:
        settings = Settings(
            redis_url=TEST_REDIS_URL,
            database_url=f"sqlite:///{Path(tmp) / 'bench.db'}",
            secret_key=Fernet.generate_key().decode(),
            allowed_networks=LOOPBACK,
            redis_prefix=prefix,
        )
        store = Store(settings.database_url, settings.secret_key)
        store.migrate()  # a Store no longer migrates on open
        store.create_tenant("bench")
        inst = store.install("bench", "CUSTOM", "bench")
        store.create_event(
            "bench",
            inst.id,
            IntegrationEventIn.model_validate(
                {
                    "name": "bench",
                    "entity": "INCIDENT",
                    "eventType": "CREATE",
                    "filterCriteria": CRITERIA.model_dump(exclude_none=True),
                    "notifier": {"type": "REST_API", "baseURI": sink.url, "authType": "NONE"},
                    "endPointURI": "/hook",
                    "payload": base64.b64encode(TEMPLATE.encode()).decode(),
                }
            ),
        )
        arrived: dict[str, float] = {}

        def record(req: RecordedRequest) -> Reply:
            arrived[req.json()["id"]] = time.perf_counter()
            return Reply.json({"ok": True})

        sink.respond_with(record)
        with WorkerProcess(settings, Path(tmp), concurrency=concurrency):
            sent_at: dict[str, float] = {}
            start = time.perf_counter()
            for i in range(messages):
                mid = f"b{i}"
                msg = {
                    "id": mid,
                    "tenantId": "bench",
                    "entity": "INCIDENT",
                    "eventType": "CREATE",
                    "occurredAt": datetime.now(UTC).isoformat(),
                    "data": {**DATA, "id": mid},
                }
                sent_at[mid] = time.perf_counter()
                client.xadd(f"{prefix}:changes", {"message": json.dumps(msg)})
            wait_for(lambda: sink.count >= messages, 300, 0.05, "all deliveries")
            elapsed = time.perf_counter() - start
        latencies = [arrived[mid] - sent for mid, sent in sent_at.items() if mid in arrived]
        store.close()
    keys = list(client.scan_iter(match=f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    print(
        f"end to end ({messages} msgs, -c {concurrency}): {messages / elapsed:>9,.1f} deliveries/s "
        f"({elapsed:.1f} s, stream -> worker -> loopback sink)"
    )
    if latencies:
        q = statistics.quantiles(latencies, n=20)
        print(
            f"  latency p50 {statistics.median(latencies) * 1000:.0f} ms, p95 {q[18] * 1000:.0f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000, help="iterations of pure benchmarks")
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    bench_pure(args.n)
    bench_end_to_end(args.messages, args.concurrency)


if __name__ == "__main__":
    main()
