"""Stream ingest against a real Redis: dispatch, ack, and reclaiming a dead consumer's entries."""

from __future__ import annotations

import json

import pytest
import redis

from worker.ingest import GROUP, StreamIngest, ack_entry, entry_text


def test_entry_text_forms() -> None:
    assert entry_text({b"message": b'{"a":1}'}) == '{"a":1}'
    assert entry_text({b"data": b'{"a":1}'}) == '{"a":1}'
    two = json.loads(entry_text({b"x": b"1", b"y": b"2"}))
    assert two == {"x": "1", "y": "2"}


class Recorder:
    """A dispatch target that keeps what it was handed, like the ingest task's queue."""

    def __init__(self) -> None:
        self.got: list[tuple[str, str]] = []

    def __call__(self, raw: str, entry_id: str) -> None:
        self.got.append((raw, entry_id))

    @property
    def texts(self) -> list[str]:
        return [raw for raw, _ in self.got]


def test_entries_stay_pending_until_the_task_acknowledges_them(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    stream = f"{redis_prefix}:changes"
    # Published before any worker created the group: still consumed.
    redis_client.xadd(stream, {"message": "one"})
    rec = Recorder()
    ingest = StreamIngest(redis_client, stream, rec, consumer="c1")
    redis_client.xadd(stream, {"message": "two"})
    assert ingest.read(block_ms=100) == 2
    assert rec.texts == ["one", "two"]
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
    StreamIngest(redis_client, stream, Recorder(), consumer="x").ensure_group()
    redis_client.xadd(stream, {"message": "lost?"})
    # Consumer "dead" reads the entry and dies before dispatching it.
    redis_client.xreadgroup(GROUP, "dead", {stream: ">"}, count=10)
    assert redis_client.xpending(stream, GROUP)["pending"] == 1
    rec = Recorder()
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

    def broken(raw: str, entry_id: str) -> None:
        raise ConnectionError("broker down")

    ingest = StreamIngest(redis_client, stream, broken, consumer="c1", claim_idle=0.0)
    redis_client.xadd(stream, {"message": "keep me"})
    with pytest.raises(ConnectionError):
        ingest.read(block_ms=100)
    assert redis_client.xpending(stream, GROUP)["pending"] == 1
    rec = Recorder()
    StreamIngest(redis_client, stream, rec, consumer="c2", claim_idle=0.0).reclaim()
    assert rec.texts == ["keep me"]
