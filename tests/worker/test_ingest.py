"""Stream ingest against a real Redis: dispatch, ack, and reclaiming a dead consumer's entries."""

from __future__ import annotations

import json

import pytest
import redis

from worker.ingest import GROUP, StreamIngest, entry_text


def test_entry_text_forms() -> None:
    assert entry_text({b"message": b'{"a":1}'}) == '{"a":1}'
    assert entry_text({b"data": b'{"a":1}'}) == '{"a":1}'
    two = json.loads(entry_text({b"x": b"1", b"y": b"2"}))
    assert two == {"x": "1", "y": "2"}


def test_entries_are_dispatched_then_acked_and_deleted(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    stream = f"{redis_prefix}:changes"
    # Published before any worker created the group: still consumed.
    redis_client.xadd(stream, {"message": "one"})
    got: list[str] = []
    ingest = StreamIngest(redis_client, stream, got.append, consumer="c1")
    redis_client.xadd(stream, {"message": "two"})
    assert ingest.read(block_ms=100) == 2
    assert got == ["one", "two"]
    assert redis_client.xlen(stream) == 0
    assert redis_client.xpending(stream, GROUP)["pending"] == 0


def test_entries_of_a_consumer_that_died_before_dispatch_are_reclaimed(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    stream = f"{redis_prefix}:changes"
    StreamIngest(redis_client, stream, lambda _: None, consumer="x").ensure_group()
    redis_client.xadd(stream, {"message": "lost?"})
    # Consumer "dead" reads the entry and dies before dispatching it.
    redis_client.xreadgroup(GROUP, "dead", {stream: ">"}, count=10)
    assert redis_client.xpending(stream, GROUP)["pending"] == 1
    got: list[str] = []
    survivor = StreamIngest(redis_client, stream, got.append, consumer="alive", claim_idle=0.0)
    assert survivor.reclaim() == 1
    assert got == ["lost?"]
    assert redis_client.xpending(stream, GROUP)["pending"] == 0


def test_a_failed_dispatch_leaves_the_entry_pending(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    stream = f"{redis_prefix}:changes"

    def broken(_: str) -> None:
        raise ConnectionError("broker down")

    ingest = StreamIngest(redis_client, stream, broken, consumer="c1", claim_idle=0.0)
    redis_client.xadd(stream, {"message": "keep me"})
    with pytest.raises(ConnectionError):
        ingest.read(block_ms=100)
    assert redis_client.xpending(stream, GROUP)["pending"] == 1
    got: list[str] = []
    StreamIngest(redis_client, stream, got.append, consumer="c2", claim_idle=0.0).reclaim()
    assert got == ["keep me"]
