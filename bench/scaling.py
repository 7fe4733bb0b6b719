"""``python -m bench.scaling [--quick]``: what one Redis carries, for ``docs/scaling.md``.

Each run is a fresh :func:`~bench.rig.rig` on a private ``redis-server`` (AOF on, as the bench
runs it), one tenant with one matching event posting to the instant loopback
:class:`~bench.sink.AsyncSink`, and ``N`` real worker nodes
(:class:`~tests.support.processes.WorkerProcess`, ``--concurrency`` children each). A run is
warmed up, sized from its warm-up (:func:`bench.stats.sized`), then timed from the first
``XADD`` to the last arrival. Over the timed run it takes:

* ``INFO commandstats`` by command (the bench's own ``INFO`` excluded; the producer's ``XADD``
  kept, as ``make bench`` does), per delivery;
* ``INFO cpu`` of the Redis (``used_cpu_user + used_cpu_sys``), per delivery;
* the CPU of every node's process tree, from ``/proc``, per delivery;
* ``XACK`` calls: Herald acknowledges a batch in one call, so deliveries ÷ ``XACK`` is the mean
  batch size, and twice the batches are the database transactions.

Runs: 1, 2, 4 nodes with Redis as Celery's broker, 1 with RabbitMQ (``HERALD_BROKER_URL``),
``redis-benchmark`` on the same Redis, a projection to 10,000 deliveries/s. Full ≈ 3 min, quick ≈ 1.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from bench.capacity import TARGET_RATE, Sample, breakdown, num, projection, table
from bench.costs import BENCH_ONLY
from bench.pipeline import TENANT, warm_up
from bench.procs import TICKS_PER_SECOND, cpu_snapshot
from bench.report import load_average
from bench.rig import Rig, change, event_spec, rig, wait_arrivals
from bench.sink import AsyncSink
from bench.stats import command_deltas, cpu_delta, next_size, redis_cpu_seconds, sized
from integrations.config import Settings
from tests.support.processes import WorkerProcess

AMQP_URL = os.environ.get("HERALD_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
#: Commands per delivery before issue 7's rewrite, of record (issue 7; bench/results/README.md).
BEFORE_RECORD = (45.6, 46.8)
#: How long the nodes' idle Redis CPU is sampled before a timed run.
IDLE_S = 3.0


@dataclass(frozen=True)
class Mode:
    """How long each timed run lasts, and its size bounds."""

    name: str
    run_s: float
    warm_n: int
    run_min: int
    run_max: int
    bench_requests: int
    xadd_n: int


QUICK = Mode(
    "quick", 4.0, warm_n=100, run_min=200, run_max=20_000, bench_requests=50_000, xadd_n=20_000
)
FULL = Mode(
    "full", 15.0, warm_n=200, run_min=500, run_max=60_000, bench_requests=200_000, xadd_n=50_000
)


@contextlib.contextmanager
def nodes(settings: Settings, log_dir: Path, count: int, concurrency: int) -> Iterator[list[int]]:
    """``count`` worker nodes started at once; their main PIDs. Killed afterwards.

    Killed, not stopped, as :func:`bench.rig.herald_node` does: a warm shutdown takes
    seconds and the run's state is thrown away anyway.
    """
    workers = [
        WorkerProcess(settings, log_dir, name=f"w{i}", concurrency=concurrency)
        for i in range(count)
    ]
    try:
        with ThreadPoolExecutor(count) as pool:
            list(pool.map(lambda w: w.start(timeout=60), workers))
        yield [w.proc.pid for w in workers if w.proc is not None]
    finally:
        for w in workers:
            if w.proc is not None and w.proc.poll() is None:
                w.kill_node()
            w.stop()


def _tree_cpu(pids: list[int]) -> dict[int, int]:
    return {k: v for pid in pids for k, v in cpu_snapshot(pid).items()}


def timed(r: Rig, sink: AsyncSink, pids: list[int], n: int, tag: str, mode: Mode) -> Sample:
    """``n`` changes through the running nodes, with Redis' and the nodes' costs."""
    client = r.redis
    sink.clear()
    stats0, cpu0 = client.info("commandstats"), client.info("cpu")
    tree0 = _tree_cpu(pids)
    start = time.perf_counter()
    r.publish((f"{tag}-{i}", change(f"{tag}-{i}", TENANT)) for i in range(n))
    run = wait_arrivals(sink.snapshot, n, start, start + 3 * mode.run_s + 10)
    stats1, cpu1 = client.info("commandstats"), client.info("cpu")
    tree1 = _tree_cpu(pids)
    return Sample(
        label="",  # the caller's to fill
        nodes=len(pids),
        concurrency=0,
        broker="",
        expected=n,
        deliveries=run.done,
        seconds=(run.last - start) if run.last is not None else 0.0,
        commands=command_deltas(stats0, stats1, exclude=BENCH_ONLY),
        redis_cpu_s=redis_cpu_seconds(cpu1) - redis_cpu_seconds(cpu0),
        worker_cpu_s=cpu_delta(tree0, tree1) / TICKS_PER_SECOND,
        load=load_average(),
    )


def throughput(
    redis_url: str, sink: AsyncSink, count: int, concurrency: int, broker: str, mode: Mode
) -> Sample:
    """One configuration: ``count`` nodes on one Redis, ``broker`` ``redis`` or ``rabbitmq``."""
    label = f"{count} node{'s' if count > 1 else ''}, {broker}"
    with rig(redis_url, f"scale{count}{broker[0]}") as r:
        installed = r.tenant(TENANT)
        r.store.create_event(TENANT, installed, event_spec(sink.url))
        amqp = broker == "rabbitmq"
        settings = dataclasses.replace(r.settings, broker_url=AMQP_URL) if amqp else r.settings
        try:
            with nodes(settings, r.tmp, count, concurrency) as pids:
                warm = warm_up(r.publish, sink.snapshot, sink.clear, mode.warm_n)
                n = sized(warm.rate(), mode.run_s, mode.run_min, mode.run_max)
                time.sleep(0.5)  # the warm-up's acknowledgements land after its arrivals
                cpu0 = redis_cpu_seconds(r.redis.info("cpu"))
                time.sleep(IDLE_S)
                idle = (redis_cpu_seconds(r.redis.info("cpu")) - cpu0) / IDLE_S
                for k in range(3):
                    sample = timed(r, sink, pids, n, f"m{k}", mode)
                    bigger = next_size(
                        n, sample.seconds, sample.deliveries >= n, mode.run_s, mode.run_max
                    )
                    if bigger is None:
                        break
                    n = bigger
        finally:
            if amqp:
                _delete_amqp_queue(settings.queue)
    return dataclasses.replace(
        sample, label=label, concurrency=concurrency, broker=broker, redis_idle_cpu=idle
    )


def producer_only(redis_url: str, n: int) -> float:
    """Redis CPU µs per ``XADD`` of the producer alone, no node running.

    Every stream-fed design pays this share of a delivery's Redis cost; the rest is Herald's.
    """
    with rig(redis_url, "xadd") as r:
        cpu0 = redis_cpu_seconds(r.redis.info("cpu"))
        r.publish((f"x{i}", change(f"x{i}", TENANT)) for i in range(n))
        return (redis_cpu_seconds(r.redis.info("cpu")) - cpu0) * 1e6 / n


def _delete_amqp_queue(queue: str) -> None:
    from kombu import Connection

    with Connection(AMQP_URL, connect_timeout=3) as conn, contextlib.suppress(Exception):
        channel: Any = conn.default_channel  # kombu's stub lacks the AMQP channel's methods
        channel.queue_delete(queue)


def redis_benchmark(redis_url: str, requests: int, pipeline: int) -> dict[str, float] | None:
    """``redis-benchmark`` requests/s per test on the Redis at ``redis_url``.

    50 clients, ``pipeline`` commands per round trip; ``None`` if the tool is not installed.
    The tool runs on the same 2 cores as the Redis, so this is a floor of what Redis carries.
    """
    tool = shutil.which("redis-benchmark")
    if tool is None:
        return None
    port = redis.Redis.from_url(redis_url).connection_pool.connection_kwargs["port"]
    tests = "ping,set,get,incr,lpush"
    flags = ["-n", str(requests), "-c", "50", "-P", str(pipeline), "-t", tests, "--csv"]
    out = subprocess.run(
        [tool, "-h", "127.0.0.1", "-p", str(port), *flags],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    result: dict[str, float] = {}
    for line in out.splitlines()[1:]:
        fields = [f.strip('"') for f in line.split(",")]
        if len(fields) >= 2:
            result[fields[0]] = float(fields[1])
    return result


def _revision() -> str:
    root = Path(__file__).resolve().parents[1]
    git = ["git", "rev-parse", "--short", "HEAD"]
    return subprocess.run(git, cwd=root, capture_output=True, text=True).stdout.strip()


def measure(args: argparse.Namespace, mode: Mode, say: Any) -> dict[str, Any]:
    """Every configuration on one private Redis, then ``redis-benchmark`` on it."""
    from worker.redis_server import RedisServer

    samples: list[Sample] = []
    plan = [(int(n), "redis") for n in args.nodes.split(",") if n]
    plan += [] if args.no_rabbitmq else [(1, "rabbitmq")]
    with (
        tempfile.TemporaryDirectory(prefix="herald-scaling-") as tmp,
        RedisServer(Path(tmp)) as server,
        AsyncSink() as sink,
    ):
        say(f"private redis-server at {server.url}, sink at {sink.url}")
        for count, broker in plan:
            say(f"{count} node(s) x {args.concurrency}, broker {broker}")
            try:
                samples.append(throughput(server.url, sink, count, args.concurrency, broker, mode))
            except Exception as exc:  # one failed configuration must not hide the others
                say(f"FAILED: {type(exc).__name__}: {exc}")
        say("the producer's XADD alone")
        xadd_us = producer_only(server.url, mode.xadd_n)
        say("redis-benchmark")
        raw = {f"P{p}": redis_benchmark(server.url, mode.bench_requests, p) for p in (1, 16)}
    return {"samples": samples, "raw": raw, "xadd_us": xadd_us, "load": load_average()}


def main(argv: list[str]) -> int:
    """Run every configuration, print the tables and the projection (see module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m bench.scaling")
    parser.add_argument("--quick", action="store_true", help="short runs (about 1 minute)")
    parser.add_argument("--concurrency", type=int, default=1, help="pool children per node")
    parser.add_argument("--nodes", default="1,2,4", help="node counts on the Redis broker")
    parser.add_argument("--no-rabbitmq", action="store_true", help="skip the RabbitMQ run")
    parser.add_argument("--out", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args(argv)
    mode = QUICK if args.quick else FULL
    began = time.perf_counter()

    def say(text: str) -> None:
        stamp = f"[{time.perf_counter() - began:5.1f} s, load {os.getloadavg()[0]:.2f}]"
        print(f"{stamp} {text}", file=sys.stderr, flush=True)

    got = measure(args, mode, say)
    samples: list[Sample] = got["samples"]
    raw: dict[str, dict[str, float] | None] = got["raw"]
    # The slowest non-pipelined test: the command-count bound errs low.
    p1 = raw.get("P1")
    raw_ops = min(p1.values()) if p1 else None
    proj = projection(samples[0], raw_ops=raw_ops) if samples else {}
    lo, hi = BEFORE_RECORD
    print(f"bench.scaling {mode.name}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, rev {_revision()}")
    print(f"{os.cpu_count()} CPUs; before issue 7, of record: {lo}-{hi} Redis cmd/delivery\n")
    print(table(samples) + "\n\n" + breakdown(samples) + "\n")
    print(f"Redis CPU per XADD of the producer alone: {got['xadd_us']:.1f} µs")
    for key, rates in raw.items():
        print(f"redis-benchmark, 50 clients, -{key}, requests/s: {json.dumps(rates)}")
    print(f"projection to {TARGET_RATE:,.0f} deliveries/s from the first run:")
    for key, value in proj.items():
        print(f"  {key}: {num(value)}")
    if args.out:
        doc = {
            "mode": mode.name,
            "revision": _revision(),
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            "runs": [s.summary() for s in samples],
            "redis_benchmark": raw,
            "projection": proj,
            "redis_cpu_us_per_producer_xadd": got["xadd_us"],
            "loadavg_end": got["load"],
        }
        args.out.write_text(json.dumps(doc, indent=2) + "\n")
    say(f"done in {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
