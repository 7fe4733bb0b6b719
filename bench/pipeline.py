"""Measures 1, 2, 7 and 8: deliveries per second through real workers, beside the baselines.

* instant sink (``RecordingSink``): Herald, the bare Celery no-op task, and the naive
  one-task-per-delivery ``requests.post``, all with the same prefork pool on the same Redis;
* 50 ms sink (:class:`~bench.sink.AsyncSink`): Herald, the naive tasks, and one process of
  64 threads sharing an ``httpx.Client``;
* each sink's own ceiling, measured in the same run, so a figure near it is known to be the
  sink's and not Herald's;
* for every worker run: Redis commands, worker CPU per unit, and peak RSS of the node.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import redis

from bench import loadgen
from bench.baseline import CeleryWorker, noop_run, publish_posts, purge
from bench.config import Mode
from bench.costs import Cost, cost_figures, costed, figure, grown
from bench.report import Figure
from bench.rig import Run, change, event_spec, herald_node, rig, wait_arrivals
from bench.sink import Arrivals, AsyncSink, RecordingArrivals
from bench.stats import sized

Snapshot = Callable[[], list[tuple[float, str | None]]]
TENANT = "bench"


def ceiling(name: str, url: str, connections: int, seconds: float) -> Figure:
    """A sink's requests/s under a raw asyncio client in another process."""
    result = loadgen.run(["raw", url, str(connections), str(seconds)], timeout=seconds + 30)
    return figure(
        name, result["requests"] / result["seconds"], "req/s", f"{connections} connections"
    )


def warm_up(
    publish: Callable[[list[tuple[str, str]]], object],
    snapshot: Snapshot,
    clear: Callable[[], None],
    n: int,
    timeout: float = 60.0,
) -> Run:
    """Send ``n`` changes, wait for them, forget them; the run, whose rate sizes the next.

    So connections, pool children and caches are warm and a run times the steady rate (the
    cold start is the fan-out measure's business).
    """
    clear()
    start = time.perf_counter()
    publish([(f"warm{i}", change(f"warm{i}", TENANT)) for i in range(n)])
    run = wait_arrivals(snapshot, n, start, start + timeout)
    if not run.complete:
        raise RuntimeError(f"warm-up: {run.note()}")
    clear()
    return run


def herald_run(redis_url: str, name: str, sink: Arrivals, mode: Mode) -> list[Figure]:
    """Changes, one delivery each, through a fresh Herald node; its figures."""
    with rig(redis_url, name) as r:
        installed = r.tenant(TENANT)
        r.store.create_event(TENANT, installed, event_spec(sink.url))
        with herald_node(r, mode.concurrency) as node:
            assert node.proc is not None
            warm = warm_up(r.publish, sink.snapshot, sink.clear, mode.warm_n)
            n = sized(warm.rate(), mode.run_s, mode.run_min, mode.run_max)
            client = redis.Redis.from_url(redis_url)
            pid = node.proc.pid

            def attempt(n: int, k: int) -> Cost:
                def work() -> Run:
                    sink.clear()
                    messages = ((f"m{k}-{i}", change(f"m{k}-{i}", TENANT)) for i in range(n))
                    start = time.perf_counter()
                    r.publish(messages)
                    return wait_arrivals(sink.snapshot, n, start, start + mode.deadline())

                return costed(client, pid, work)

            cost = grown(attempt, n, mode.run_s, mode.run_max)
            client.close()
    return cost_figures(f"herald.{name}", cost, "delivery")


def naive_run(worker: CeleryWorker, name: str, sink: Arrivals, mode: Mode) -> list[Figure]:
    """Naive delivery tasks (``requests.post`` each) on the baseline node."""
    url = sink.url + "/hook"

    def post(items: list[tuple[str, str]]) -> object:
        return publish_posts(worker, url, [body for _, body in items])

    warm = warm_up(post, sink.snapshot, sink.clear, mode.warm_n)
    n = sized(warm.rate(), mode.run_s, mode.run_min, mode.run_max)
    client = redis.Redis.from_url(worker.broker_url)

    def attempt(n: int, k: int) -> Cost:
        bodies = [change(f"m{k}-{i}", TENANT) for i in range(n)]

        def work() -> Run:
            sink.clear()
            start = publish_posts(worker, url, bodies)
            return wait_arrivals(sink.snapshot, n, start, start + mode.deadline())

        return costed(client, worker.pid, work)

    cost = grown(attempt, n, mode.run_s, mode.run_max)
    purge(worker)  # what a deadline left queued must not run into the next measure
    client.close()
    return cost_figures(f"naive.{name}", cost, "delivery")


def noop(worker: CeleryWorker, redis_url: str, mode: Mode) -> list[Figure]:
    """Bare no-op tasks on the baseline node."""
    client = redis.Redis.from_url(redis_url)
    warm = noop_run(worker, client, mode.warm_n, 60.0)
    n = sized(warm.rate(), mode.run_s, mode.run_min, mode.run_max)
    cost = grown(
        lambda size, _: costed(
            client, worker.pid, lambda: noop_run(worker, client, size, mode.deadline())
        ),
        n,
        mode.run_s,
        mode.run_max,
    )
    client.close()
    return cost_figures("celery.noop", cost, "task")


def threads_run(url: str, mode: Mode) -> Figure:
    """The issue's "64 threads sharing an httpx.Client", in a process of its own, for run_s."""
    args = ["threads", url, "64", str(mode.run_max), str(mode.run_s)]
    result = loadgen.run(args, timeout=mode.deadline() + 30)
    return figure("threads64.slow.rate", result["requests"] / result["seconds"], "req/s")


def measure(redis_url: str, mode: Mode, log_dir: str, say: Callable[[str], None]) -> list[Figure]:
    """Measures 1, 2, 7 and 8 in one go (the baseline node serves both sinks)."""
    figures: list[Figure] = []
    with CeleryWorker(redis_url, Path(log_dir), concurrency=mode.concurrency) as celery:
        with RecordingArrivals() as sink:
            figures.append(ceiling("sink.instant.ceiling", sink.url, 8, mode.ceiling_s))
            say("instant sink: Herald")
            figures += herald_run(redis_url, "instant", sink, mode)
            say("instant sink: bare Celery no-op")
            figures += noop(celery, redis_url, mode)
            say("instant sink: naive requests.post tasks")
            figures += naive_run(celery, "instant", sink, mode)
        with AsyncSink(delay=mode.slow_delay) as slow:
            figures.append(
                ceiling("sink.slow.ceiling", slow.url, mode.ceiling_connections, mode.ceiling_s)
            )
            say(f"{mode.slow_delay * 1000:.0f} ms sink: Herald")
            figures += herald_run(redis_url, "slow", slow, mode)
            say(f"{mode.slow_delay * 1000:.0f} ms sink: naive tasks")
            figures += naive_run(celery, "slow", slow, mode)
            say(f"{mode.slow_delay * 1000:.0f} ms sink: 64 threads")
            figures.append(threads_run(slow.url, mode))
    return figures
