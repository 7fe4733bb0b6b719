"""The task bodies' last line of defence, run in this process against real Redis.

(The Celery wiring is covered by the real-worker tests; here the functions run directly so
the failure can be made real: a database that refuses connections.)
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import worker.runtime as runtime
from integrations.config import Settings
from worker.ingest import StreamIngest
from worker.lease import MAX_UNFINISHED_STARTS
from worker.runtime import Runtime
from worker.schedule import RetrySchedule
from worker.tasks import deliver, ingest, ingest_batch

MESSAGE = json.dumps(
    {
        "id": "m1",
        "tenantId": "t",
        "entity": "INCIDENT",
        "eventType": "CREATE",
        "occurredAt": "2026-11-28T10:00:00Z",
        "data": {},
    }
)


@pytest.fixture
def broken_db_runtime(settings: Settings, tmp_path: Path) -> Iterator[Runtime]:
    """This process's runtime, whose SQLite database has become unopenable."""
    db = tmp_path / "broken.db"
    rt = Runtime.build(dataclasses.replace(settings, database_url=f"sqlite:///{db}"))
    rt.store.engine.dispose()
    for leftover in tmp_path.glob("broken.db*"):
        leftover.unlink()
    db.mkdir()  # a directory where the database file was: every connection now fails
    yield from as_this_process_runtime(rt)


def as_this_process_runtime(rt: Runtime) -> Iterator[Runtime]:
    """Make ``rt`` the runtime the task bodies find, for one test."""
    saved = runtime._current
    runtime._current = (os.getpid(), rt)
    try:
        yield rt
    finally:
        runtime._current = saved
        rt.close()


def test_a_message_whose_processing_fails_waits_in_the_ingest_retry_schedule(
    broken_db_runtime: Runtime, settings: Settings, redis_client: redis.Redis
) -> None:
    assert ingest.run(MESSAGE) == -1
    retries = RetrySchedule(redis_client, settings.redis_prefix, "ingest-retry")
    due = retries.due_at(MESSAGE)
    assert due is not None


def test_a_delivery_whose_attempt_fails_internally_waits_in_the_retry_schedule(
    broken_db_runtime: Runtime, settings: Settings, redis_client: redis.Redis
) -> None:
    assert deliver.run("DLV-somewhere", 0) == "error"
    assert RetrySchedule(redis_client, settings.redis_prefix).due_at("DLV-somewhere") is not None


def test_a_batch_whose_processing_fails_is_kept_in_the_ingest_retry_schedule(
    broken_db_runtime: Runtime, settings: Settings, redis_client: redis.Redis
) -> None:
    """The database is down: each message of the batch waits in the ingest-retry schedule,
    and only then are the stream entries acknowledged."""
    stream = settings.stream_key
    StreamIngest(redis_client, stream, lambda ids: None).ensure_group()
    entry = redis_client.xadd(stream, {"message": MESSAGE}).decode()
    redis_client.xreadgroup("herald", "c1", {stream: ">"})
    assert ingest_batch.run([entry])["error"]
    assert RetrySchedule(redis_client, settings.redis_prefix, "ingest-retry").due_at(MESSAGE)
    assert redis_client.xlen(stream) == 0
    assert redis_client.xpending(stream, "herald")["pending"] == 0


@pytest.fixture
def live_runtime(settings: Settings) -> Iterator[Runtime]:
    """This process's runtime over a migrated database."""
    rt = Runtime.build(settings)
    rt.store.migrate()
    yield from as_this_process_runtime(rt)


def test_a_batch_that_keeps_killing_its_worker_is_split_and_its_poison_dead_lettered(
    live_runtime: Runtime, settings: Settings, redis_client: redis.Redis
) -> None:
    """Runs of a batch that never finished are counted: past the limit the batch goes one
    entry at a time, the innocent entries are processed, and the entry that still killed its
    worker every time is dead-lettered with that reason, not retried forever."""
    stream = settings.stream_key
    live_runtime.store.create_tenant("t")  # the innocent entries are processed, not dead
    StreamIngest(redis_client, stream, lambda ids: None).ensure_group()
    raws = [MESSAGE.replace('"m1"', f'"m{i}"') for i in range(3)]
    ids = [redis_client.xadd(stream, {"message": raw}).decode() for raw in raws]
    redis_client.xreadgroup("herald", "c1", {stream: ">"})
    # The batch died 5 times already; its second entry did, when taken alone.
    redis_client.set(settings.keys.batch_starts(ids[0]), MAX_UNFINISHED_STARTS)
    redis_client.set(settings.keys.entry_starts(ids[1]), MAX_UNFINISHED_STARTS)
    assert ingest_batch.run(ids)["messages"] == 3
    [poison] = live_runtime.store.dead_letters()
    assert poison.message == raws[1]
    assert "poison message: its worker died 5 times" in poison.status_message
    assert redis_client.xlen(stream) == 0  # every entry acknowledged
    assert not list(redis_client.scan_iter(match=f"{settings.redis_prefix}:*-starts:*"))
