"""Herald as the bench drives it: only through its public interface.

A :class:`Rig` is one measure's private Herald: its own Redis key prefix, its own SQLite file
in a temporary directory, a :class:`~integrations.store.Store` for configuration, and real
``celery worker`` nodes (:class:`~tests.support.processes.WorkerProcess`). Changes go in by
``XADD`` to ``settings.stream_key``, as any producer sends them; deliveries come out at a
loopback sink. Nothing reaches inside the worker, which is being rewritten under the bench.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from cryptography.fernet import Fernet

from bench.stats import rate
from integrations.config import Settings
from integrations.models import IntegrationEventIn
from integrations.store import Store
from tests.support.processes import WorkerProcess

#: Deliveries may reach the loopback sinks, and nothing else.
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))

#: The issue's sample event: three rules (a case-insensitive key, a dotted path, a regex).
CRITERIA: dict[str, Any] = {
    "matchType": "ALL",
    "rules": [
        {"key": "Subject", "operator": "Contains", "value": "windows"},
        {"key": "priority.name", "operator": "Equals", "value": "P1"},
        {"key": "Description", "operator": "Regex", "value": "disk (full|failure)"},
    ],
}
#: Criteria the sample change never matches (a fan-out's non-matching candidates).
MISS_CRITERIA: dict[str, Any] = {
    "matchType": "ALL",
    "rules": [{"key": "Subject", "operator": "Contains", "value": "linux"}],
}
#: The payload: the change's id comes back in the body, so the sink can time each change.
TEMPLATE = (
    '{"id":"$incident.id","subject":"$incident.subject",'
    '"description":"$incident.description","priority":"$incident.priority.name"}'
)
DATA: dict[str, Any] = {
    "subject": "Windows host WIN-42 disk",
    "description": "C: drive: disk full at 99 %",
    "priority": {"name": "P1"},
}


def event_spec(sink_url: str, *, matching: bool = True, name: str = "bench") -> IntegrationEventIn:
    """An INCIDENT/CREATE event posting :data:`TEMPLATE` to ``sink_url``."""
    return IntegrationEventIn.model_validate(
        {
            "name": name,
            "entity": "INCIDENT",
            "eventType": "CREATE",
            "filterCriteria": CRITERIA if matching else MISS_CRITERIA,
            "notifier": {"type": "REST_API", "baseURI": sink_url, "authType": "NONE"},
            "endPointURI": "/hook",
            "headers": [{"key": "Content-Type", "value": "application/json"}],
            "payload": base64.b64encode(TEMPLATE.encode()).decode(),
        }
    )


def change(message_id: str, tenant: str) -> str:
    """An entity-change message, as a producer writes it, whose ``data.id`` is ``message_id``."""
    return json.dumps(
        {
            "id": message_id,
            "tenantId": tenant,
            "entity": "INCIDENT",
            "eventType": "CREATE",
            "occurredAt": datetime.now(UTC).isoformat(),
            "data": {**DATA, "id": message_id},
        }
    )


def open_store(settings: Settings) -> Store:
    """The store, with the schema at head whether or not the constructor migrates.

    ``migrate`` is idempotent, so calling it after a constructor that already did is free.
    """
    store = Store(settings.database_url, settings.secret_key)
    try:
        from integrations.migrate import migrate
    except ImportError:  # pragma: no cover - an older tree
        return store
    migrate(store.engine)
    return store


@dataclass
class Rig:
    """One measure's isolated Herald (see the module docstring)."""

    name: str
    settings: Settings
    store: Store
    redis: redis.Redis
    tmp: Path

    def tenant(self, client_id: str) -> str:
        """Create a tenant and install a CUSTOM integration; the installed integration id."""
        self.store.create_tenant(client_id)
        return self.store.install(client_id, "CUSTOM", "bench").id

    def publish(self, messages: Iterable[tuple[str, str]], chunk: int = 200) -> dict[str, float]:
        """``XADD`` each ``(message_id, body)``; ``message_id -> perf_counter`` when sent.

        Pipelined by ``chunk`` so the producer is never the bottleneck; each entry is
        stamped when its chunk goes out.
        """
        sent: dict[str, float] = {}
        batch: list[tuple[str, str]] = []

        def flush() -> None:
            pipe = self.redis.pipeline(transaction=False)
            for _, body in batch:
                pipe.xadd(self.settings.stream_key, {"message": body})
            now = time.perf_counter()
            pipe.execute()
            sent.update((mid, now) for mid, _ in batch)
            batch.clear()

        for item in messages:
            batch.append(item)
            if len(batch) >= chunk:
                flush()
        if batch:
            flush()
        return sent

    def cleanup(self) -> None:
        """Remove every Redis key under this rig's prefix."""
        keys = list(self.redis.scan_iter(match=f"{self.settings.redis_prefix}:*", count=1000))
        for i in range(0, len(keys), 1000):
            self.redis.delete(*keys[i : i + 1000])
        # Celery's queue is named like the prefix (no colon), and kombu adds bindings.
        queues = (self.settings.queue, self.settings.keys.batch_queue)
        self.redis.delete(*queues, *(f"_kombu.binding.{q}" for q in queues))


@contextmanager
def rig(redis_url: str, name: str) -> Iterator[Rig]:
    """A fresh :class:`Rig`; its keys, database and logs are removed afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix=f"herald-bench-{name}-"))
    settings = Settings(
        redis_url=redis_url,
        database_url=f"sqlite:///{tmp / 'herald.db'}",
        secret_key=Fernet.generate_key().decode(),
        allowed_networks=LOOPBACK,
        redis_prefix=f"bench-{name}-{uuid.uuid4().hex[:8]}",
    )
    client = redis.Redis.from_url(redis_url)
    store = open_store(settings)
    r = Rig(name, settings, store, client, tmp)
    try:
        yield r
    finally:
        store.close()
        r.cleanup()
        client.close()
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def herald_node(r: Rig, concurrency: int) -> Iterator[WorkerProcess]:
    """A real Herald worker node on ``r``'s settings, killed (not stopped) afterwards.

    A warm shutdown takes seconds, and the bench throws the node's state away anyway.
    """
    node = WorkerProcess(r.settings, r.tmp, concurrency=concurrency).start()
    try:
        yield node
    finally:
        if node.proc is not None and node.proc.poll() is None:
            node.kill_node()
        node.stop()


@dataclass(frozen=True)
class Run:
    """Completions of one timed run: how many of how many, from the first send to the last."""

    expected: int
    done: int
    start: float
    last: float | None
    #: Redis commands the bench itself sent during the run (polling), not the work's.
    own_commands: int = 0

    def rate(self) -> float | None:
        """Completions per second, first send to last completion."""
        return rate(self.done, self.start, self.last)

    @property
    def complete(self) -> bool:
        """Whether everything arrived before the deadline."""
        return self.done >= self.expected

    def note(self) -> str:
        """``""``, or how far a run cut by its deadline got."""
        return "" if self.complete else f"deadline: {self.done} of {self.expected}"


def wait_arrivals(
    snapshot: Callable[[], Sequence[tuple[float, str | None]]],
    expected: int,
    start: float,
    deadline: float,
    poll: float = 0.01,
) -> Run:
    """Wait until ``expected`` arrivals or ``deadline`` (``perf_counter``); the :class:`Run`."""
    while True:
        arrivals = snapshot()
        if len(arrivals) >= expected or time.perf_counter() >= deadline:
            last = max((t for t, _ in arrivals), default=None)
            return Run(expected, min(len(arrivals), expected), start, last)
        time.sleep(poll)
