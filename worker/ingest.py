"""Consumption of entity-change messages from the Redis stream.

Producers in any language enqueue a change with one command::

    XADD herald:changes * message '{"id": "...", "tenantId": "...", ...}'

Workers read the stream through the consumer group ``herald``, a batch at a time
(``XREADGROUP COUNT``), and hand each batch's entry ids to one ``herald.ingest_batch`` task:
the task message carries ids, never payloads, and the task reads the entries back with one
``XRANGE``. An entry is acknowledged (and deleted) only by that task once its outcomes are
stored, so an entry whose worker died, or whose task message the broker lost, stays pending;
:meth:`StreamIngest.reclaim` dispatches entries that stayed pending longer than ``claim_idle``
seconds again (``XAUTOCLAIM``). Consumption is at-least-once; processing is idempotent.

Parsing and validation happen in the task, not here, so this loop never needs the database
and a malformed entry is dead-lettered where the activity API shows it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis

log = logging.getLogger(__name__)

GROUP = "herald"
MESSAGE_FIELD = b"message"


def entry_text(fields: dict[bytes, bytes]) -> str:
    """The message text of a stream entry.

    The documented form is a single ``message`` field. An entry with another single field is
    taken as is (a producer that named it ``data``); anything else is passed on as JSON of its
    fields so that validation rejects it visibly instead of it vanishing here.
    """
    if MESSAGE_FIELD in fields:
        raw = fields[MESSAGE_FIELD]
    elif len(fields) == 1:
        raw = next(iter(fields.values()))
    else:
        return json.dumps(
            {k.decode(errors="replace"): v.decode(errors="replace") for k, v in fields.items()}
        )
    return raw.decode("utf-8", errors="replace")


def ack_entries(client: redis.Redis, stream: str, entry_ids: Sequence[str]) -> None:
    """Acknowledge and delete processed stream entries, in one round trip.

    Deleting keeps the stream from growing without bound: an acknowledged entry is done.
    """
    if not entry_ids:
        return
    pipe = client.pipeline(transaction=True)
    pipe.xack(stream, GROUP, *entry_ids)
    pipe.xdel(stream, *entry_ids)
    pipe.execute()


def ack_entry(client: redis.Redis, stream: str, entry_id: str) -> None:
    """Acknowledge and delete one processed stream entry."""
    ack_entries(client, stream, [entry_id])


def renew_entries(
    client: redis.Redis, stream: str, consumer: str, entry_ids: Sequence[str]
) -> None:
    """Reset the idle time of entries still being processed (``XCLAIM ... JUSTID``), so that
    :meth:`StreamIngest.reclaim` leaves them to the worker processing them.

    Entries acknowledged meanwhile are not claimed again: ``XCLAIM`` only takes pending ones.
    """
    if entry_ids:
        client.xclaim(stream, GROUP, consumer, 0, list(entry_ids), justid=True)


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def read_batch(
    client: redis.Redis, stream: str, entry_ids: Sequence[str], earlier: int
) -> tuple[list[tuple[str, str]], list[Any]]:
    """:func:`read_entries`, and (in the same round trip) up to ``earlier`` entries before
    the last of them still in the stream: read and not yet stored, which per-ticket
    ordering looks at (:mod:`worker.gate`)."""
    if not entry_ids:
        return [], []
    ordered = sorted(set(entry_ids), key=_id_key)
    pipe = client.pipeline(transaction=False)
    pipe.xrange(stream, ordered[0], ordered[-1])
    pipe.xrange(stream, "-", "(" + ordered[-1], count=earlier)
    span, before = pipe.execute()
    return _own(span or [], set(entry_ids)), list(before or [])


def _own(found: list[Any], wanted: set[str]) -> list[tuple[str, str]]:
    out = []
    for raw_id, fields in found:
        entry_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
        if entry_id in wanted and fields:
            out.append((entry_id, entry_text(fields)))
    return out


def read_entries(
    client: redis.Redis, stream: str, entry_ids: Sequence[str]
) -> list[tuple[str, str]]:
    """``(entry_id, message text)`` of the given entries still in the stream, in stream order.

    One ``XRANGE`` over the ids' span: entries of other consumers in between are skipped,
    and an entry already acknowledged and deleted (by a run that finished after a reclaim)
    is simply absent.
    """
    if not entry_ids:
        return []
    wanted = set(entry_ids)
    ordered = sorted(wanted, key=_id_key)
    return _own(list(client.xrange(stream, ordered[0], ordered[-1]) or []), wanted)


def consumer_name() -> str:
    """A consumer name unique to this process (a restarted worker is a new consumer)."""
    return f"{socket.gethostname()}-{os.getpid()}"


class StreamIngest:
    """Reads the entity-change stream and hands each batch of entry ids to ``dispatch``."""

    def __init__(
        self,
        client: redis.Redis,
        stream: str,
        dispatch: Callable[[list[str]], None],
        *,
        consumer: str | None = None,
        claim_idle: float = 20.0,
        batch: int = 100,
        backlog: Callable[[], int] | None = None,
    ) -> None:
        self._redis = client
        self.stream = stream
        self._dispatch = dispatch
        self.consumer = consumer or consumer_name()
        self._claim_idle_ms = int(claim_idle * 1000)
        self._batch = batch
        self._backlog = backlog
        self._group_ready = False

    def ensure_group(self) -> None:
        """Create the consumer group (and the stream) if missing.

        The group starts at id 0 so that changes published before the first worker ever ran
        are consumed too.
        """
        try:
            self._redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def _handle(self, entries: list[tuple[bytes, dict[bytes, bytes] | None]]) -> int:
        gone = [entry_id for entry_id, fields in entries if fields is None]
        if gone:  # XAUTOCLAIM reports entries deleted meanwhile as nil
            self._redis.xack(self.stream, GROUP, *gone)
        ids = [entry_id.decode() for entry_id, fields in entries if fields is not None]
        # Not acknowledged here: the task does that once the batch's outcomes are stored, so
        # entries whose task is lost stay pending and are reclaimed.
        if ids:
            self._dispatch(ids)
        return len(ids)

    def reclaim(self) -> int:
        """Take over entries left pending by dead consumers (or by this one) and dispatch them."""
        if not self._group_ready:
            self.ensure_group()
        total, start = 0, "0-0"
        while True:
            reply = self._redis.xautoclaim(
                self.stream, GROUP, self.consumer, self._claim_idle_ms, start, count=self._batch
            )
            start, entries = reply[0], reply[1]
            total += self._handle(entries)
            if start in (b"0-0", "0-0"):
                return total

    def read(self, block_ms: int = 1000) -> int:
        """Read and dispatch new entries, waiting up to ``block_ms`` for some."""
        if not self._group_ready:
            self.ensure_group()
        reply = self._redis.xreadgroup(
            GROUP, self.consumer, {self.stream: ">"}, count=self._batch, block=block_ms
        )
        total = 0
        streams: list[Any] = list(reply or [])
        for _stream, entries in streams:
            total += self._handle(entries)
        return total

    def busy(self) -> bool:
        """Whether dispatched batches are still waiting for a worker to take them.

        Reading on regardless would cut the stream into ever smaller batches just when the
        workers are behind, and every batch has a fixed cost (a task, two transactions, a
        few round trips). Waiting instead lets the stream fill, so the next read takes a
        whole batch: under load, batches grow; at a trickle, each change goes at once.
        """
        return self._backlog is not None and self._backlog() > 0

    def run(
        self,
        stop: threading.Event,
        *,
        block_ms: int = 1000,
        reclaim_every: float = 5.0,
        backoff: float = 0.02,
    ) -> None:
        """Consume until ``stop`` is set, surviving Redis outages."""
        next_reclaim = 0.0
        clock = threading.Event()  # only for interruptible sleeps
        # While busy, look again after 1 ms, then less and less often (up to ``backoff``):
        # a short wait keeps latency low when the workers are only just behind, the longer
        # ones keep a long backlog from costing a Redis command every millisecond.
        wait = 0.001
        while not stop.is_set():
            try:
                now = time.monotonic()
                if now >= next_reclaim:
                    self.reclaim()
                    next_reclaim = now + reclaim_every
                if self.busy():
                    clock.wait(wait)
                    wait = min(wait * 2, backoff)
                    continue
                wait = 0.001
                self.read(block_ms)
            except redis.RedisError as exc:
                # Redis restarting or unreachable: nothing is lost (unacked entries stay
                # pending), so wait and try again.
                log.warning("stream ingest: Redis unavailable (%s); retrying", exc)
                self._group_ready = False
                clock.wait(1.0)
            except Exception:
                log.exception("stream ingest: dispatch failed; entries stay pending")
                clock.wait(1.0)
