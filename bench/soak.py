"""Soak run (``make soak``): steady load, a flaky endpoint, and workers killed at random.

``python -m bench.soak [--seconds 300]``. A producer publishes entity changes at a bounded
rate to a private Redis (AOF on); two ``celery worker`` nodes deliver them to a loopback sink
that answers 503 to a fraction of requests; every 20-40 s a pool child or a whole node is
SIGKILLed (a killed node is replaced at once). Then the run waits, bounded, for the backlog to
drain and prints::

    published, delivered unique, lost, duplicates, failed, duplicate rate

counting deliveries at the sink by ``Idempotency-Key``. Exits 1 if any delivery was lost.
Everything runs on 127.0.0.1; every loop is bounded in time and every process is stopped.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from integrations.store import DeliveryStatus
from tests.faults.harness import Responder, Rig, Sink
from tests.support.processes import WorkerProcess
from tests.support.sinks import RecordedRequest, Reply

SUMMARY = "Soak run: steady load, a flaky endpoint, and workers killed at random."
OK = Reply.json({"ok": True})
BUSY = Reply(503, body="busy")


@dataclass
class Chaos:
    """The kills done so far: ``(seconds since start, what, which node)``."""

    events: list[tuple[float, str, str]] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(1 for _, what, _ in self.events if what == kind)


class FlakyEndpoint:
    """Answers 503 with probability ``fail_rate``, after a short random delay."""

    def __init__(self, fail_rate: float, max_delay: float, rng: random.Random) -> None:
        self.fail_rate = fail_rate
        self.max_delay = max_delay
        self._rng = rng
        self._lock = threading.Lock()

    def __call__(self, _request: RecordedRequest) -> Reply:
        with self._lock:
            fail = self._rng.random() < self.fail_rate
            delay = self._rng.uniform(0.0, self.max_delay)
        reply = BUSY if fail else OK
        return Reply(reply.status, reply.headers, reply.body, delay=delay)


class Producer(threading.Thread):
    """Publishes one change every ``1 / rate`` seconds until ``stop`` is set."""

    def __init__(self, rig: Rig, rate: float, stop: threading.Event) -> None:
        super().__init__(name="soak-producer", daemon=True)
        self.rig = rig
        self.interval = 1.0 / rate
        self.stop = stop
        self.published: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        next_at = time.monotonic()
        try:
            while not self.stop.is_set():
                message_id = f"soak-{len(self.published):06d}"
                self.rig.publish([message_id])
                self.published.append(message_id)
                next_at += self.interval
                self.stop.wait(max(0.0, next_at - time.monotonic()))
        except BaseException as exc:  # reported by main(); the run then fails
            self.error = exc


class Nodes:
    """The worker nodes of the run, replaced when killed."""

    def __init__(self, rig: Rig, count: int, concurrency: int) -> None:
        self.rig = rig
        self.concurrency = concurrency
        self.generation = 0
        self.live: list[WorkerProcess] = [self._start(i) for i in range(count)]

    def _start(self, slot: int) -> WorkerProcess:
        self.generation += 1
        name = f"n{slot}-g{self.generation}"
        return self.rig.start_worker(name, concurrency=self.concurrency)

    def kill_child(self, rng: random.Random) -> str | None:
        """SIGKILL one pool child of a random node; ``None`` if it had none."""
        node = rng.choice(self.live)
        children = node.children()
        if not children:
            return None
        try:
            os.kill(rng.choice(children), signal.SIGKILL)
        except ProcessLookupError:
            return None
        return node.name

    def kill_node(self, rng: random.Random) -> str:
        """SIGKILL a random node (its whole process group) and start a replacement."""
        slot = rng.randrange(len(self.live))
        node = self.live[slot]
        node.kill_node()
        node.stop()  # closes its log; the process group is already gone
        self.live[slot] = self._start(slot)
        return node.name


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=SUMMARY)
    parser.add_argument("--seconds", type=float, default=300.0, help="load duration (300)")
    parser.add_argument("--rate", type=float, default=8.0, help="changes published per second")
    parser.add_argument("--fail-rate", type=float, default=0.2, help="fraction of 503 answers")
    parser.add_argument("--workers", type=int, default=2, help="worker nodes (2)")
    parser.add_argument("--concurrency", type=int, default=2, help="pool size per node (2)")
    parser.add_argument("--kill-min", type=float, default=20.0, help="min seconds between kills")
    parser.add_argument("--kill-max", type=float, default=40.0, help="max seconds between kills")
    parser.add_argument("--drain", type=float, default=300.0, help="max seconds to drain (300)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep logs and data here")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.rate <= 0 or not 0 <= args.fail_rate < 1:
        parser.error("--seconds and --rate must be positive, --fail-rate in [0, 1)")
    if args.kill_min <= 0 or args.kill_max < args.kill_min:
        parser.error("need 0 < --kill-min <= --kill-max")
    return args


def idle(rig: Rig) -> bool:
    """Whether Redis holds no work at all: no stream entry, queued or unacknowledged task,
    or scheduled retry. A delivery still open then has nothing left that could finish it."""
    client, prefix = rig.client, rig.settings.redis_prefix
    pending = client.xpending(rig.settings.stream_key, "herald")["pending"]
    return (
        client.xlen(rig.settings.stream_key) == 0
        and pending == 0
        and client.llen(rig.settings.queue) == 0
        and client.llen(rig.settings.keys.batch_queue) == 0
        and client.hlen("unacked") == 0
        and client.zcard(f"{prefix}:retry") == 0
    )


def wait_drained(
    rig: Rig, responder: Responder, expected: set[str], budget: float
) -> tuple[set[str], float]:
    """Wait until every expected delivery is delivered or FAILED, or until Redis has held no
    work for 5 s (what is missing then is lost), or at most ``budget`` s."""
    started = time.monotonic()
    last_note = started
    idle_since: float | None = None
    while True:
        delivered = responder.delivered() & expected
        counts = rig.status_counts()
        open_ = counts[DeliveryStatus.PENDING] + counts[DeliveryStatus.RETRYING]
        now = time.monotonic()
        if open_ == 0 and len(delivered) + counts[DeliveryStatus.FAILED] >= len(expected):
            return delivered, now - started
        idle_since = (idle_since or now) if idle(rig) else None
        if idle_since is not None and now - idle_since >= 5.0:
            return delivered, now - started
        if now - started > budget:
            return delivered, now - started
        if now - last_note >= 15:
            last_note = now
            print(
                f"  draining {now - started:5.0f}s: {len(delivered)}/{len(expected)} delivered, "
                f"{open_} open, {counts[DeliveryStatus.FAILED]} failed, "
                f"{rig.retry_count()} scheduled",
                flush=True,
            )
        time.sleep(1.0)


def describe_lost(rig: Rig, lost: list[str]) -> None:
    """Print where each lost delivery got stuck (at most 10)."""
    for delivery_id in lost[:10]:
        row = rig.store.get_delivery(delivery_id)
        where = (
            "no delivery row: the change never reached fan-out"
            if row is None
            else f"{row.status}, {row.attempts} attempts: {row.status_message}"
        )
        print(f"  lost {delivery_id}: {where}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    rng = random.Random(seed)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="herald-soak-"))
    print(
        f"soak: {args.seconds:.0f}s at {args.rate:g}/s, {args.fail_rate:.0%} 503s, "
        f"{args.workers} nodes x {args.concurrency}, kills every {args.kill_min:g}-"
        f"{args.kill_max:g}s, seed {seed}, logs in {workdir}",
        flush=True,
    )
    responder = Responder(FlakyEndpoint(args.fail_rate, 0.15, random.Random(seed + 1)))
    sink = Sink(responder)
    rig = Rig(
        workdir,
        visibility_timeout=10.0,
        retry_schedule=(0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0),
        breaker_threshold=5,
        breaker_cooldown=2.0,
        breaker_max_cooldown=8.0,
    )
    stop = threading.Event()
    chaos = Chaos()
    producer: Producer | None = None
    lost = -1
    try:
        event = rig.rest_event(sink.url, name="soak")
        nodes = Nodes(rig, args.workers, args.concurrency)
        producer = Producer(rig, args.rate, stop)
        started = time.monotonic()
        deadline = started + args.seconds
        producer.start()
        while True:
            pause = rng.uniform(args.kill_min, args.kill_max)
            if time.monotonic() + pause >= deadline:
                break
            time.sleep(pause)
            what = "child" if rng.random() < 0.5 else "node"
            victim = nodes.kill_child(rng) if what == "child" else nodes.kill_node(rng)
            if victim is not None:
                at = time.monotonic() - started
                chaos.events.append((at, what, victim))
                print(
                    f"  {at:6.1f}s: SIGKILL {what} of {victim}; "
                    f"{len(producer.published)} published",
                    flush=True,
                )
        time.sleep(max(0.0, deadline - time.monotonic()))
        stop.set()
        producer.join(timeout=30)
        if producer.error is not None:
            raise RuntimeError(f"producer failed: {producer.error!r}")

        expected = set(rig.delivery_ids(producer.published, event))
        print(f"  load done: {len(expected)} published; draining (at most {args.drain:.0f}s)")
        delivered, drain_s = wait_drained(rig, responder, expected, args.drain)
        counts = rig.status_counts()
        duplicates = sum(n - 1 for k, n in responder.ok_counts().items() if k in expected)
        lost = len(expected) - len(delivered)
        print("soak results")
        print(f"  published          {len(expected)}")
        print(f"  delivered unique   {len(delivered)}")
        print(f"  lost               {lost}")
        print(f"  duplicates         {duplicates}")
        print(f"  failed             {counts[DeliveryStatus.FAILED]}")
        print(f"  duplicate rate     {duplicates / max(1, len(delivered)):.4%}")
        print(f"  sink 503 answers   {responder.statuses()[503]}")
        print(f"  kills              {chaos.count('child')} children, {chaos.count('node')} nodes")
        print(f"  drain time         {drain_s:.1f}s")
        print(f"  still open         {counts['PENDING'] + counts['RETRYING']}")
        describe_lost(rig, sorted(expected - delivered))
    finally:
        stop.set()
        if producer is not None:
            producer.join(timeout=30)
        rig.close()
        sink.close()
    if lost == 0 and args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    elif lost != 0:
        print(f"soak: logs and data kept in {workdir}")
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
