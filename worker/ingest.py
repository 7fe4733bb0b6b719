"""Consumption of entity-change messages from the Redis stream.

Producers in any language enqueue a change with one command::

    XADD herald:changes * message '{"id": "...", "tenantId": "...", ...}'

Workers read the stream through the consumer group ``herald``. An entry is acknowledged (and
deleted) only by the ``herald.ingest`` task once the message is processed, so an entry whose
worker died, or whose task message the broker lost, stays pending; :meth:`StreamIngest.reclaim`
dispatches entries that stayed pending longer than ``claim_idle`` seconds again
(``XAUTOCLAIM``). Consumption is at-least-once; processing is idempotent.

Parsing and validation happen in the ``herald.ingest`` task, not here, so this loop never needs
the database and a malformed entry is dead-lettered where the activity API shows it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
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


def ack_entry(client: redis.Redis, stream: str, entry_id: str) -> None:
    """Acknowledge and delete a processed stream entry.

    Deleting keeps the stream from growing without bound: an acknowledged entry is done.
    """
    pipe = client.pipeline(transaction=True)
    pipe.xack(stream, GROUP, entry_id)
    pipe.xdel(stream, entry_id)
    pipe.execute()


def consumer_name() -> str:
    """A consumer name unique to this process (a restarted worker is a new consumer)."""
    return f"{socket.gethostname()}-{os.getpid()}"


class StreamIngest:
    """Reads the entity-change stream and hands each entry to ``dispatch``."""

    def __init__(
        self,
        client: redis.Redis,
        stream: str,
        dispatch: Callable[[str, str], None],
        *,
        consumer: str | None = None,
        claim_idle: float = 60.0,
        batch: int = 50,
    ) -> None:
        self._redis = client
        self.stream = stream
        self._dispatch = dispatch
        self.consumer = consumer or consumer_name()
        self._claim_idle_ms = int(claim_idle * 1000)
        self._batch = batch
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

    def _handle(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> int:
        done = 0
        for entry_id, fields in entries:
            if fields is None:  # XAUTOCLAIM reports entries deleted meanwhile as nil
                self._redis.xack(self.stream, GROUP, entry_id)
                continue
            # Not acknowledged here: the task does that once the message is processed, so
            # an entry whose task is lost stays pending and is reclaimed.
            self._dispatch(entry_text(fields), entry_id.decode())
            done += 1
        return done

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

    def run(
        self, stop: threading.Event, *, block_ms: int = 1000, reclaim_every: float = 15.0
    ) -> None:
        """Consume until ``stop`` is set, surviving Redis outages."""
        next_reclaim = 0.0
        clock = threading.Event()  # only for interruptible sleeps
        while not stop.is_set():
            try:
                now = time.monotonic()
                if now >= next_reclaim:
                    self.reclaim()
                    next_reclaim = now + reclaim_every
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
