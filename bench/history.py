"""Measure 6: per-delivery cost with an empty activity log, and after a long history.

One node and one database: a timed run on the empty log; then ``history_seed`` earlier
deliveries of the same tenant are copied from a delivery that run made (rows in
``deliveries``, ``attempts`` and ``messages``, exactly as the worker wrote them); then the
same run again. Same process, same warm caches: only the history differs.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bench.config import Mode
from bench.costs import figure
from bench.pipeline import TENANT, warm_up
from bench.report import Figure
from bench.rig import Rig, Run, change, event_spec, herald_node, rig, wait_arrivals
from bench.seeding import clone_history, read_delivery
from bench.sink import RecordingArrivals
from bench.stats import sized


def _timed(r: Rig, sink: RecordingArrivals, tag: str, n: int, mode: Mode) -> Run:
    sink.clear()
    messages = [(f"{tag}{i}", change(f"{tag}{i}", TENANT)) for i in range(n)]
    start = time.perf_counter()
    r.publish(messages)
    return wait_arrivals(sink.snapshot, len(messages), start, start + mode.deadline())


def _per_delivery(name: str, run: Run, note: str) -> Figure:
    rate = run.rate()
    extra = "; ".join(p for p in (note, run.note()) if p)
    return figure(name, 1000 / rate if rate else None, "ms/delivery", extra)


def measure(redis_url: str, mode: Mode, say: Callable[[str], None]) -> list[Figure]:
    """Per-delivery cost before and after the seeded history, and the seeding rate."""
    with RecordingArrivals() as sink, rig(redis_url, "history") as r:
        installed = r.tenant(TENANT)
        r.store.create_event(TENANT, installed, event_spec(sink.url))
        with herald_node(r, mode.concurrency):
            warm = warm_up(r.publish, sink.snapshot, sink.clear, mode.warm_n)
            n = sized(warm.rate(), mode.run_s, mode.run_min, mode.run_max)
            say("history: empty activity log")
            empty = _timed(r, sink, "a", n, mode)
            say(f"history: seeding {mode.history_seed:,} earlier deliveries")
            start = time.perf_counter()
            made = clone_history(
                r.store.engine, read_delivery(r.store.engine, TENANT), mode.history_seed
            )
            seed_rate = made / (time.perf_counter() - start)
            say("history: after the seed")
            seeded = _timed(r, sink, "b", n, mode)
    return [
        _per_delivery("history.empty", empty, f"{n} deliveries"),
        _per_delivery("history.seeded", seeded, f"{n} deliveries after {made:,} earlier"),
        figure("seeding.deliveries", seed_rate, "delivery/s", "bulk copies, one tx per 20,000"),
    ]
