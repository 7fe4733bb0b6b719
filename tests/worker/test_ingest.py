"""Stream ingest against a real Redis: dispatch, ack, and reclaiming a dead consumer's entries."""

from __future__ import annotations

import json
import threading
import time

import pytest
import redis

from integrations.config import Settings
from worker.app import make_celery
from worker.ingest import (
    GROUP,
    StreamIngest,
    ack_entries,
    ack_entry,
    entry_text,
    read_batch,
    read_entries,
)
from worker.loops import queued_tasks


def test_entry_text_forms() -> None:
    assert entry_text({b"message": b'{"a":1}'}) == '{"a":1}'
    assert entry_text({b"data": b'{"a":1}'}) == '{"a":1}'
    two = json.loads(entry_text({b"x": b"1", b"y": b"2"}))
    assert two == {"x": "1", "y": "2"}


class Recorder:
    """A dispatch target that keeps the batches it was handed and reads them back, as the
    batch task does."""

    def __init__(self, client: redis.Redis, stream: str) -> None:
        self.client, self.stream = client, stream
        self.batches: list[list[str]] = []
        self.got: list[tuple[str, str]] = []

    def __call__(self, entry_ids: list[str]) -> None:
        self.batches.append(entry_ids)
        self.got += [
            (raw, entry_id) for entry_id, raw in read_entries(self.client, self.stream, entry_ids)
        ]

    @property
    def texts(self) -> list[str]:
        return [raw for raw, _ in self.got]


def test_entries_stay_pending_until_the_task_acknowledges_them(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    stream = f"{redis_prefix}:changes"
    # Published before any worker created the group: still consumed.
    redis_client.xadd(stream, {"message": "one"})
    rec = Recorder(redis_client, stream)
    ingest = StreamIngest(redis_client, stream, rec, consumer="c1")
    redis_client.xadd(stream, {"message": "two"})
    assert ingest.read(block_ms=100) == 2
    assert rec.texts == ["one", "two"]
    assert len(rec.batches) == 1  # one task for the whole read
    assert redis_client.xpending(stream, GROUP)["pending"] == 2
    for _, entry_id in rec.got:
        ack_entry(redis_client, stream, entry_id)
    assert redis_client.xlen(stream) == 0
    assert redis_client.xpending(stream, GROUP)["pending"] == 0


def test_entries_whose_task_never_finished_are_dispatched_again(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    """A consumer that died before dispatching, or a task the broker lost: both reclaimed."""
    stream = f"{redis_prefix}:changes"
    StreamIngest(redis_client, stream, Recorder(redis_client, stream), consumer="x").ensure_group()
    redis_client.xadd(stream, {"message": "lost?"})
    # Consumer "dead" reads the entry and dies before dispatching it.
    redis_client.xreadgroup(GROUP, "dead", {stream: ">"}, count=10)
    assert redis_client.xpending(stream, GROUP)["pending"] == 1
    rec = Recorder(redis_client, stream)
    survivor = StreamIngest(redis_client, stream, rec, consumer="alive", claim_idle=0.0)
    assert survivor.reclaim() == 1
    assert rec.texts == ["lost?"]
    # Its task is lost too: the entry is still pending and comes back again.
    assert survivor.reclaim() == 1
    ack_entry(redis_client, stream, rec.got[-1][1])
    assert survivor.reclaim() == 0


def test_a_failed_dispatch_leaves_the_entry_pending(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    stream = f"{redis_prefix}:changes"

    def broken(entry_ids: list[str]) -> None:
        raise ConnectionError("broker down")

    ingest = StreamIngest(redis_client, stream, broken, consumer="c1", claim_idle=0.0)
    redis_client.xadd(stream, {"message": "keep me"})
    with pytest.raises(ConnectionError):
        ingest.read(block_ms=100)
    assert redis_client.xpending(stream, GROUP)["pending"] == 1
    rec = Recorder(redis_client, stream)
    StreamIngest(redis_client, stream, rec, consumer="c2", claim_idle=0.0).reclaim()
    assert rec.texts == ["keep me"]


def test_a_batch_reads_back_only_its_own_entries_in_one_range(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    """Entries of another consumer inside the span, and entries already acknowledged, are
    not the batch's."""
    stream = f"{redis_prefix}:changes"
    ids = [redis_client.xadd(stream, {"message": f"m{i}"}).decode() for i in range(5)]
    mine = [ids[0], ids[2], ids[4]]
    ack_entries(redis_client, stream, [ids[4]])  # finished by a run after a reclaim
    assert read_entries(redis_client, stream, list(reversed(mine))) == [
        (ids[0], "m0"),
        (ids[2], "m2"),
    ]
    assert read_entries(redis_client, stream, []) == []
    # With the entries before the batch's last (its own among them), in the same round trip.
    own, before = read_batch(redis_client, stream, [ids[2], ids[3]], 10)
    assert own == [(ids[2], "m2"), (ids[3], "m3")]
    assert [e[0].decode() for e in before] == ids[:3]
    assert read_batch(redis_client, stream, [], 10) == ([], [])


def test_a_backlog_of_queued_tasks_holds_the_next_read_so_batches_grow(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    """While dispatched batches wait for a worker, the loop does not cut the stream into
    more small batches: it reads once the backlog is gone, and takes what piled up at once."""
    stream = f"{redis_prefix}:changes"
    queued = threading.Event()
    queued.set()
    rec = Recorder(redis_client, stream)
    ingest = StreamIngest(
        redis_client, stream, rec, consumer="c1", backlog=lambda: int(queued.is_set())
    )
    stop = threading.Event()
    loop = threading.Thread(target=ingest.run, args=(stop,), kwargs={"block_ms": 50})
    loop.start()
    try:
        for i in range(5):
            redis_client.xadd(stream, {"message": f"m{i}"})
        time.sleep(0.3)  # the loop is free to read all this while: it must not
        assert rec.batches == []
        queued.clear()
        deadline = time.monotonic() + 5
        while not rec.batches and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        loop.join(5)
    assert [len(b) for b in rec.batches] == [5]


def test_only_queued_batches_hold_the_stream_never_queued_retries(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Batches have a queue of their own: a backlog of retries (an endpoint recovering, a
    bulk replay) must not stop new changes from being read."""
    app = make_celery(settings, include_tasks=False)
    backlog = queued_tasks(app, redis_client, settings.keys.batch_queue)
    for _ in range(3):
        app.send_task("herald.deliver", args=["DLV-x", None], queue=settings.queue)
    assert redis_client.llen(settings.queue) == 3
    assert backlog() == 0
    app.send_task("herald.ingest_batch", args=[["0-1"]])
    assert backlog() == 1
    redis_client.delete(settings.queue, settings.keys.batch_queue)
