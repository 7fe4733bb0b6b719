"""A Herald deployment under fault injection, and a sink that measures loss and duplicates.

Everything is real and local: a private ``redis-server`` (AOF on) that a test may restart, a
private SQLite store, real ``celery worker`` processes, and loopback HTTP sinks. Nothing here
mocks Redis, Celery or HTTP.

* :class:`Responder` is a :class:`~tests.support.sinks.RecordingSink` plan that decides every
  answer from a replaceable policy and remembers, per ``Idempotency-Key`` (the delivery id),
  which answers were 2xx: the receiver's view of loss and duplicates.
* :class:`Rig` owns the Redis server, the store, the tenant and the worker processes, and
  always cleans them up (process groups are killed) in :meth:`Rig.close`.
* :func:`report` prints one result line and keeps it for the session summary.

Shared by ``tests/faults`` and ``bench/soak.py``.
"""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
import json
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from cryptography.fernet import Fernet

from integrations.config import Settings
from integrations.models import IntegrationEventIn
from integrations.store import Delivery, DeliveryStatus, Store, StoredEvent, delivery_id_for
from tests.support.processes import WorkerProcess, wait_for
from tests.support.sinks import RecordedRequest, RecordingSink, Reply
from worker.redis_server import RedisServer

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
TEMPLATE = '{"subject": "$incident.subject", "seq": "$incident.seq"}'
#: Deliveries in these tests never go anywhere but a loopback sink started by the test.
Plan = Reply | Callable[[RecordedRequest], Reply]

RESULTS: list[str] = []

#: The delivery time limit the workers are asked for (``HERALD_DELIVER_TIME_LIMIT``): it
#: bounds a hung attempt, not recovery (locks are renewed while an attempt runs).
DELIVER_TIME_LIMIT = float(os.environ.get("FAULTS_DELIVER_TIME_LIMIT", "40"))
#: The recovery knobs run at the shipped defaults (issue 8: "recovery in seconds, at the
#: default settings"): the stream's claim idle, the dispatch lease, kombu's visibility
#: timeout and the delivery lock.
DEFAULTS = Settings()
#: Everything a crash interrupted is back within this of Redis answering (issue 8's target).
RECOVERY_TARGET = 60.0
#: pytest timeout of a test that waits for work a crash interrupted (three such waits, max).
CRASH_TEST_TIMEOUT = int(3 * (RECOVERY_TARGET + DELIVER_TIME_LIMIT) + 60)


def report(name: str, **metrics: object) -> str:
    """Print one result line (visible with ``pytest -s``) and keep it for the summary."""
    parts = []
    for key, value in metrics.items():
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        parts.append(f"{key}={shown}")
    line = f"[faults] {name}: " + " ".join(parts)
    print("\n" + line, flush=True)
    RESULTS.append(line)
    return line


# --------------------------------------------------------------------------- the sink side


@dataclass(frozen=True)
class Answer:
    """One request as the receiver handled it."""

    key: str | None
    status: int
    #: Unix time the request arrived, and when its answer was ready.
    received: float
    answered: float
    request: RecordedRequest

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class Responder:
    """A sink plan with a replaceable policy that records every answer per delivery id.

    A 2xx answer counts as *delivered* even if the client gave up before reading it: a real
    receiver has processed the request by then, so a later attempt is a duplicate for it.
    ``in_flight`` counts requests being answered right now (the policy's delay included).
    """

    def __init__(self, policy: Plan | None = None, *, close_connections: bool = False) -> None:
        self._policy: Plan = policy if policy is not None else Reply.json({"ok": True})
        self._lock = threading.Lock()
        self._answers: list[Answer] = []
        self.in_flight = 0
        self._in_flight_keys: Counter[str] = Counter()
        #: Answer with ``Connection: close`` so no pooled connection outlives a sink stop.
        self.close_connections = close_connections

    def use(self, policy: Plan) -> None:
        """Answer the next requests with ``policy``."""
        with self._lock:
            self._policy = policy

    def __call__(self, request: RecordedRequest) -> Reply:
        received = time.time()
        key = request.header("idempotency-key")
        with self._lock:
            self.in_flight += 1
            if key is not None:
                self._in_flight_keys[key] += 1
            policy = self._policy
        status = 599
        try:
            reply = policy(request) if callable(policy) else policy
            if reply.delay:
                time.sleep(reply.delay)
                reply = dataclasses.replace(reply, delay=0.0)
            if self.close_connections:
                reply = dataclasses.replace(
                    reply, headers=[*reply.header_items(), ("Connection", "close")]
                )
            status = reply.status
            return reply
        finally:
            answer = Answer(
                request.header("idempotency-key"), status, received, time.time(), request
            )
            with self._lock:
                self.in_flight -= 1
                if key is not None:
                    self._in_flight_keys[key] -= 1
                self._answers.append(answer)

    @property
    def answers(self) -> list[Answer]:
        """Every answer so far, in the order they were completed."""
        with self._lock:
            return list(self._answers)

    def ok_counts(self) -> Counter[str]:
        """2xx answers per delivery id."""
        return Counter(a.key for a in self.answers if a.ok and a.key is not None)

    def delivered(self) -> set[str]:
        """Delivery ids that got at least one 2xx."""
        return set(self.ok_counts())

    def reached(self) -> set[str]:
        """Delivery ids whose request reached the sink: answered 2xx, or being answered now."""
        with self._lock:
            pending = {k for k, n in self._in_flight_keys.items() if n > 0}
        return self.delivered() | pending

    def duplicates(self) -> int:
        """2xx answers beyond the first for the same delivery id."""
        return sum(n - 1 for n in self.ok_counts().values())

    def for_key(self, key: str) -> list[Answer]:
        """Answers to one delivery, in arrival order."""
        return sorted((a for a in self.answers if a.key == key), key=lambda a: a.received)

    def statuses(self) -> Counter[int]:
        """How many answers of each status."""
        return Counter(a.status for a in self.answers)


def failing_until(deadline: float, failure: Reply, success: Reply) -> Plan:
    """``failure`` until ``time.monotonic()`` passes ``deadline``, then ``success``."""

    def plan(_request: RecordedRequest) -> Reply:
        return failure if time.monotonic() < deadline else success

    return plan


def first_per_key(first: Reply, then: Reply) -> Plan:
    """``first`` for the first request of each delivery id, ``then`` afterwards."""
    seen: set[str | None] = set()
    lock = threading.Lock()

    def plan(request: RecordedRequest) -> Reply:
        key = request.header("idempotency-key")
        with lock:
            fresh = key not in seen
            seen.add(key)
        return first if fresh else then

    return plan


class Sink:
    """A :class:`RecordingSink` on a fixed loopback port that can go down and come back."""

    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self._sink: RecordingSink | None = RecordingSink().respond_with(responder).start()
        self.port = self._sink.port

    @property
    def url(self) -> str:
        """Base URL (the port stays the same across :meth:`down` / :meth:`up`)."""
        return f"http://127.0.0.1:{self.port}"

    def down(self) -> None:
        """Stop listening: new connections are refused."""
        if self._sink is not None:
            self._sink.stop()
            self._sink = None

    def up(self) -> None:
        """Listen again on the same port."""
        if self._sink is None:
            self._sink = RecordingSink(port=self.port).respond_with(self.responder).start()

    def close(self) -> None:
        self.down()


# --------------------------------------------------------------------------- the deployment


def knob_env(
    settings: Settings, visibility_timeout: float, deliver_time_limit: float
) -> dict[str, str]:
    """``HERALD_*`` variables for the knobs :func:`tests.support.processes.herald_env` omits."""
    return {
        "HERALD_MAX_RETRY_AFTER": str(settings.max_retry_after),
        "HERALD_BREAKER_THRESHOLD": str(settings.breaker_threshold),
        "HERALD_BREAKER_COOLDOWN": str(settings.breaker_cooldown),
        "HERALD_BREAKER_MAX_COOLDOWN": str(settings.breaker_max_cooldown),
        "HERALD_DISABLE_AFTER": str(settings.disable_after),
        "HERALD_DEDUPE_WINDOW": str(settings.dedupe_window),
        "HERALD_VISIBILITY_TIMEOUT": str(visibility_timeout),
        "HERALD_DELIVER_TIME_LIMIT": str(deliver_time_limit),
        "HERALD_DISPATCH_LEASE": str(settings.dispatch_lease),
    }


def b64(text: str) -> str:
    """``text`` as the base64 the API's ``payload`` field takes."""
    return base64.b64encode(text.encode()).decode()


class Rig:
    """One Herald deployment on private infrastructure (see the module docstring).

    ``overrides`` replace fields of the default fault-test :class:`Settings`: short timeouts,
    a quick stream reclaim, a long and fast retry schedule, and a breaker that stays closed.
    """

    TENANT = "tenant-faults"

    def __init__(
        self,
        workdir: Path,
        *,
        visibility_timeout: float = DEFAULTS.visibility_timeout,
        deliver_time_limit: float = DELIVER_TIME_LIMIT,
        **overrides: Any,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.visibility_timeout = visibility_timeout
        self.deliver_time_limit = deliver_time_limit
        self.workers: list[WorkerProcess] = []
        self.redis = RedisServer(self.workdir / "redis", appendonly=True).start()
        try:
            base = Settings(
                redis_url=self.redis.url,
                database_url=f"sqlite:///{self.workdir / 'herald.db'}",
                secret_key=Fernet.generate_key().decode(),
                allowed_networks=LOOPBACK,
                redis_prefix=f"herald-fault-{uuid.uuid4().hex[:8]}",
                retry_schedule=(0.5, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0),
                connect_timeout=1.0,
                read_timeout=2.0,
                ingest_claim_idle=DEFAULTS.ingest_claim_idle,
                dispatch_lease=DEFAULTS.dispatch_lease,
                breaker_threshold=1000,
                breaker_cooldown=1.0,
                breaker_max_cooldown=4.0,
            )
            self.settings = dataclasses.replace(base, **overrides)
            self.store = Store(self.settings.database_url, self.settings.secret_key)
            self.store.migrate()  # the release step: workers started below find it at head
            self.client = redis.Redis.from_url(
                self.redis.url, socket_timeout=5, socket_connect_timeout=2
            )
            self.store.create_tenant(self.TENANT)
            self.installed = self.store.install(self.TENANT, "CUSTOM", "faults")
        except BaseException:
            self.redis.stop(kill=True)
            raise

    @property
    def crash_recovery_bound(self) -> float:
        """Longest legitimate wait for work a crash interrupted, from Redis answering (or the
        node dying): issue 8's target, 60 s. The parts: a batch's stream entries are taken
        over once idle for ``ingest_claim_idle`` (20 s) at the next reclaim (5 s); a lost
        retry task is dispatched again when its lease ends (``dispatch_lease``, 30 s); an
        attempt killed in flight frees its delivery when its lock runs out (30 s). Kombu's
        visibility timeout (3600 s) no longer bounds anything."""
        return RECOVERY_TARGET

    # -- processes

    def start_worker(self, name: str, *, concurrency: int = 2, **env: str) -> WorkerProcess:
        """Start a ``celery worker`` node configured like this rig; stopped by :meth:`close`."""
        extra = knob_env(self.settings, self.visibility_timeout, self.deliver_time_limit)
        extra.update(env)
        worker = WorkerProcess(
            self.settings, self.workdir, name=name, concurrency=concurrency, extra_env=extra
        )
        self.workers.append(worker)
        worker.start(timeout=60)
        return worker

    def close(self) -> None:
        """Stop every worker (killing their process groups), then Redis; close the store."""
        for worker in self.workers:
            try:
                if worker.proc is not None and worker.proc.poll() is None:
                    worker.kill_node()  # the test is over: no need for a warm shutdown
                worker.stop(timeout=10)
            except Exception as exc:  # keep cleaning up the rest
                print(f"cleanup: worker {worker.name}: {exc}")
        try:
            self.client.close()
            self.store.close()
        finally:
            self.redis.stop(kill=True)

    def logs(self) -> str:
        """The tail of every worker's log, for failure messages."""
        return "\n".join(f"--- {w.name} ---\n{w.log()[-3000:]}" for w in self.workers)

    # -- configuration

    def rest_event(
        self,
        base_url: str,
        *,
        template: str = TEMPLATE,
        name: str = "faults",
        notifier: dict[str, Any] | None = None,
    ) -> StoredEvent:
        """An event matching every INCIDENT CREATE change, POSTing ``template`` to the sink."""
        spec = IntegrationEventIn.model_validate(
            {
                "name": name,
                "entity": "INCIDENT",
                "eventType": "CREATE",
                "notifier": notifier
                or {"type": "REST_API", "baseURI": base_url, "authType": "NONE"},
                "endPointURI": "/hook",
                "headers": [{"key": "Content-Type", "value": "application/json"}],
                "thirdPartyEventType": "POST",
                "payload": b64(template),
            }
        )
        return self.store.create_event(self.TENANT, self.installed.id, spec)

    # -- producing

    def change(self, message_id: str, **data: Any) -> dict[str, Any]:
        """An INCIDENT CREATE entity-change message of this rig's tenant."""
        return {
            "id": message_id,
            "tenantId": self.TENANT,
            "entity": "INCIDENT",
            "eventType": "CREATE",
            "occurredAt": datetime.now(UTC).isoformat(),
            "data": {"id": f"INC-{message_id}", "subject": f"disk full {message_id}", **data},
        }

    def publish_raw(self, text: str) -> None:
        """``XADD {prefix}:changes * message <text>``, retried while Redis restarts."""
        deadline = time.monotonic() + 30
        while True:
            try:
                self.client.xadd(self.settings.stream_key, {"message": text})
                return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def publish(self, message_ids: Iterable[str], *, at_once: bool = False) -> list[str]:
        """Publish one change per id (``at_once``: in one pipeline); returns the ids."""
        ids = list(message_ids)
        if at_once:
            pipe = self.client.pipeline(transaction=False)
            for i, message_id in enumerate(ids):
                pipe.xadd(
                    self.settings.stream_key,
                    {"message": json.dumps(self.change(message_id, seq=i))},
                )
            pipe.execute()
            return ids
        for i, message_id in enumerate(ids):
            self.publish_raw(json.dumps(self.change(message_id, seq=i)))
        return ids

    @contextmanager
    def producer(self, message_ids: list[str], rate: float) -> Iterator[threading.Thread]:
        """Publish ``message_ids`` at ``rate`` per second in a thread (joined on exit)."""

        def run() -> None:
            for message_id in message_ids:
                self.publish([message_id])
                time.sleep(1.0 / rate)

        thread = threading.Thread(target=run, name="producer", daemon=True)
        thread.start()
        try:
            yield thread
        finally:
            thread.join(timeout=len(message_ids) / rate + 60)

    # -- observing

    def delivery_ids(self, message_ids: Iterable[str], event: StoredEvent) -> list[str]:
        """The stable delivery ids (``Idempotency-Key``) of ``message_ids`` to ``event``."""
        return [delivery_id_for(self.TENANT, m, event.id) for m in message_ids]

    def deliveries(self, ids: Iterable[str]) -> dict[str, Delivery | None]:
        """The activity-log rows of ``ids``."""
        return {i: self.store.get_delivery(i) for i in ids}

    def status_counts(self) -> Counter[str]:
        """How many of the tenant's deliveries are in each status."""
        counts: Counter[str] = Counter()
        for status in (
            DeliveryStatus.PENDING,
            DeliveryStatus.RETRYING,
            DeliveryStatus.SUCCESS,
            DeliveryStatus.FAILED,
        ):
            counts[status] = self.store.list_deliveries(self.TENANT, status=status, limit=1)[1]
        return counts

    def retry_count(self) -> int:
        """How many deliveries wait in the retry schedule."""
        return int(self.client.zcard(f"{self.settings.redis_prefix}:retry"))

    def wait_delivered(
        self, responder: Responder, ids: list[str], timeout: float, what: str = "deliveries"
    ) -> None:
        """Wait until every id got a 2xx at the sink and is SUCCESS in the activity log."""
        wanted = set(ids)

        def done() -> bool:
            if not wanted <= responder.delivered():
                return False
            rows = self.deliveries(wanted)
            return all(r is not None and r.status == DeliveryStatus.SUCCESS for r in rows.values())

        try:
            wait_for(done, timeout, interval=0.25, what=what)
            # Let slow answers still being written (to clients that gave up) be recorded.
            wait_for(lambda: responder.in_flight == 0, 10, interval=0.05, what="the sink idle")
        except AssertionError:
            missing = sorted(wanted - responder.delivered())
            rows = self.deliveries(wanted)
            unfinished = {
                k: (v.status, v.attempts, v.status_message) if v else None
                for k, v in sorted(rows.items())
                if v is None or v.status != DeliveryStatus.SUCCESS
            }
            raise AssertionError(
                f"after {timeout}s, {len(missing)} of {len(wanted)} never reached the sink "
                f"(first: {missing[:3]}) and {len(unfinished)} are not SUCCESS in the activity "
                f"log (first: {dict(list(unfinished.items())[:3])}); "
                f"scheduled retries: {self.retry_count()}\n{self.logs()}"
            ) from None
