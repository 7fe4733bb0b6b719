"""Issue 8, recovery in seconds: leases are short and renewed by the work they cover
(a real Redis; the batch test runs the real task body against a real loopback sink)."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from integrations.config import Settings
from integrations.models import IntegrationEventIn
from tests.support.sinks import RecordingSink, Reply
from tests.worker.conftest import change, sink_event_body
from tests.worker.test_tasks import as_this_process_runtime
from worker.heartbeat import Heartbeat
from worker.ingest import GROUP, StreamIngest, renew_entries
from worker.lease import LOCK_TTL, Lease
from worker.runtime import Runtime
from worker.schedule import RetrySchedule
from worker.tasks import ingest_batch


def test_a_heartbeat_beats_while_the_block_runs_and_survives_a_failing_beat() -> None:
    calls: list[int] = []

    def beat() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("Redis away for a moment")

    with Heartbeat(beat, every=0.01) as hb:
        deadline = time.monotonic() + 5
        while len(calls) < 4 and time.monotonic() < deadline:
            time.sleep(0.005)
    stopped = len(calls)
    time.sleep(0.05)
    assert stopped >= 4 and hb.beats == len(calls) - 1
    assert len(calls) == stopped  # no beat after the block


def test_renewing_entries_resets_their_idle_time(
    settings: Settings, redis_client: redis.Redis
) -> None:
    stream = settings.stream_key
    StreamIngest(redis_client, stream, lambda ids: None).ensure_group()
    entry = redis_client.xadd(stream, {"message": "{}"}).decode()
    redis_client.xreadgroup(GROUP, "c1", {stream: ">"})
    # As if it had been idle for 100 s: a reclaim with a 20 s claim idle would take it.
    redis_client.xclaim(stream, GROUP, "c1", 0, [entry], idle=100_000, justid=True)
    renew_entries(redis_client, stream, "c1", [entry])
    [pending] = redis_client.xpending_range(stream, GROUP, "-", "+", 10)
    assert pending["consumer"] == b"c1" and pending["time_since_delivered"] < 5_000


def test_a_lock_is_renewed_only_by_its_holder_and_carries_the_safety_entry(
    settings: Settings, redis_client: redis.Redis
) -> None:
    schedule = RetrySchedule(redis_client, settings.redis_prefix)
    lease = Lease(redis_client, settings.keys, schedule, LOCK_TTL)
    token = lease.take("DLV-1")
    assert token is not None
    redis_client.expire(settings.keys.lock("DLV-1"), 2)
    first_due = schedule.due_at("DLV-1") or 0
    time.sleep(0.01)
    assert lease.renew("DLV-1", token)
    assert redis_client.ttl(settings.keys.lock("DLV-1")) > LOCK_TTL - 5
    assert (schedule.due_at("DLV-1") or 0) > first_due  # the safety entry moved with it
    assert not lease.renew("DLV-1", "someone-else")
    # A renewal racing the outcome leaves what the outcome stored: a retry due in 2 s (found
    # in review: pushed to 31 s), one due in an hour, or no entry at all.
    for due in (time.time() + 2, time.time() + 3600):
        schedule.add("DLV-1", due)
        assert lease.renew("DLV-1", token)
        assert abs((schedule.due_at("DLV-1") or 0) - due) < 0.01
    schedule.remove("DLV-1")
    assert lease.renew("DLV-1", token)
    assert schedule.due_at("DLV-1") is None


@pytest.fixture
def quick_claims(settings: Settings) -> Iterator[Runtime]:
    # A 0.6 s claim idle: the batch renews its entries every 0.2 s while it runs.
    quick = dataclasses.replace(settings, ingest_claim_idle=0.6)
    rt = Runtime.build(quick)
    rt.store.migrate()
    yield from as_this_process_runtime(rt)


def test_a_slow_batch_keeps_its_entries_from_a_reclaim_and_a_dead_one_loses_them(
    quick_claims: Runtime, redis_client: redis.Redis
) -> None:
    rt = quick_claims
    stream = rt.keys.stream
    with RecordingSink() as sink:
        sink.reply(Reply(200, [("Content-Type", "application/json")], "{}", delay=2.0))
        rt.store.create_tenant("client_9")
        installed = rt.store.install("client_9", "CUSTOM", "t").id
        body: dict[str, Any] = sink_event_body(sink.url)
        rt.store.create_event("client_9", installed, IntegrationEventIn.model_validate(body))
        other = StreamIngest(
            redis_client, stream, lambda ids: None, consumer="other", claim_idle=0.6
        )
        other.ensure_group()
        message = change("client_9", {"id": "INC-1", "subject": "Windows"}, message_id="m-slow")
        entry = redis_client.xadd(stream, {"message": json.dumps(message)}).decode()
        redis_client.xreadgroup(GROUP, "node-1", {stream: ">"})
        done: list[dict[str, Any]] = []
        task = threading.Thread(target=lambda: done.append(ingest_batch.run([entry], "node-1")))
        started = time.monotonic()
        task.start()
        taken = 0
        while task.is_alive():
            taken += other.reclaim()
            time.sleep(0.1)
        task.join()
        # Over 3 claim idles long, renewed all along: never idle long enough to be taken.
        assert time.monotonic() - started > 1.8
        assert done[0]["sent"] == 1 and taken == 0
        assert redis_client.xlen(stream) == 0

        # A batch whose worker died renews nothing: its entry is taken over at once.
        entry = redis_client.xadd(stream, {"message": json.dumps(message)}).decode()
        redis_client.xreadgroup(GROUP, "node-1", {stream: ">"})
        time.sleep(0.7)
        assert other.reclaim() == 1
