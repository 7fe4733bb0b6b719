"""Issue 8, "nothing invisible": every message a worker cannot process stays where an
operator sees it, on a real worker node and a real Redis."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from integrations.config import Settings
from integrations.store import Store
from tests.support.processes import WorkerProcess, wait_for
from tests.worker.conftest import change, herald_cli


def dead_letters(settings: Settings) -> list[dict[str, Any]]:
    out = herald_cli(settings, "dead-letters")
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_a_message_for_a_tenant_that_does_not_exist_is_a_dead_letter(
    settings: Settings, store: Store, redis_client: Any, worker: WorkerProcess
) -> None:
    store.create_tenant("client_known")
    body = change("client_nobody", {"id": "INC-1", "subject": "Windows"}, message_id="m-lost")
    redis_client.xadd(settings.stream_key, {"message": json.dumps(body)})

    [row] = wait_for(lambda: dead_letters(settings), 20, what="the dead letter")
    assert row["errorClass"] == "unknown_tenant"
    assert "client_nobody" in row["statusMessage"]
    assert json.loads(row["message"])["id"] == "m-lost"
    # The entry was processed (acknowledged), not left pending for a reclaim.
    wait_for(lambda: redis_client.xlen(settings.stream_key) == 0, 10, what="the ack")


def test_a_message_nested_ten_thousand_levels_is_dead_lettered_at_once(
    settings: Settings, store: Store, redis_client: Any, worker: WorkerProcess
) -> None:
    store.create_tenant("client_deep")
    nested = "[" * 10_000 + "]" * 10_000
    raw = (
        '{"id": "m-deep", "tenantId": "client_deep", "entity": "INCIDENT", '
        '"eventType": "CREATE", "data": {"x": ' + nested + "}}"
    )
    redis_client.xadd(settings.stream_key, {"message": raw})

    [row] = wait_for(lambda: dead_letters(settings), 20, what="the dead letter")
    assert row["errorClass"] == "malformed_message"
    assert "nest" in row["statusMessage"] or "recursion" in row["statusMessage"].lower()
    assert redis_client.zcard(settings.keys.ingest_retry) == 0
    wait_for(lambda: redis_client.xlen(settings.stream_key) == 0, 10, what="the ack")


def test_with_the_database_unreachable_a_message_is_parked_in_the_ingest_retry_schedule(
    settings: Settings, redis_client: Any, tmp_path: Any
) -> None:
    # Nothing listens on port 1: every connection is refused, as with a database that is down.
    down = dataclasses.replace(settings, database_url="postgresql://herald@127.0.0.1:1/herald")
    body = change("client_9", {"id": "INC-1", "subject": "Windows"}, message_id="m-parked")
    with WorkerProcess(down, tmp_path, concurrency=1) as node:
        redis_client.xadd(down.stream_key, {"message": json.dumps(body)})
        wait_for(
            lambda: redis_client.zcard(down.keys.ingest_retry) == 1, 20, what="the parked message"
        )
        [(parked, _)] = redis_client.zrange(down.keys.ingest_retry, 0, -1, withscores=True)
        assert json.loads(parked)["id"] == "m-parked"
        # Kept in the schedule, so the stream entry is done with; nothing is left pending.
        wait_for(lambda: redis_client.xlen(down.stream_key) == 0, 10, what="the ack")
        log = node.log()
    # One line that says what is wrong, not a traceback per batch.
    assert "database" in log.lower() and "127.0.0.1:1" in log
    assert "Traceback" not in log


def test_a_message_over_a_mib_is_a_dead_letter_keeping_its_head(
    settings: Settings, store: Store, redis_client: Any, worker: WorkerProcess
) -> None:
    store.create_tenant("client_big")
    body = change(
        "client_big", {"id": "INC-1", "blob": "x" * (2 * 1024 * 1024)}, message_id="m-big"
    )
    raw = json.dumps({"tenantId": body.pop("tenantId"), **body})  # the tenant first, as sent
    redis_client.xadd(settings.stream_key, {"message": raw})

    [row] = wait_for(lambda: dead_letters(settings), 30, what="the dead letter")
    assert row["errorClass"] == "oversized_message"
    assert f"{len(raw):,} characters (at most 1,048,576)" in row["statusMessage"]
    assert row["message"] == raw[: 64 * 1024]
    [kept] = store.dead_letters()
    assert kept.tenant_id == ""  # an operator's: a tenantId found unparsed may be nested
    wait_for(lambda: redis_client.xlen(settings.stream_key) == 0, 10, what="the ack")
