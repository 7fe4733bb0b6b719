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
from bench.stats import next_size, sized


def _timed(r: Rig, sink: RecordingArrivals, tag: str, n: int, mode: Mode) -> Run:
    sink.clear()
    messages = [(f"{tag}{i}", change(f"{tag}{i}", TENANT)) for i in range(n)]
    start = time.perf_counter()
    r.publish(messages)
    return wait_arrivals(sink.snapshot, len(messages), start, start + mode.deadline())


def _grow(r: Rig, sink: RecordingArrivals, n: int, mode: Mode) -> int | None:
    run = _timed(r, sink, f"size{n}-", n, mode)
    elapsed = run.last - run.start if run.last is not None else 0.0
    return next_size(n, elapsed, run.complete, mode.run_s, mode.run_max)


def _best_of(r: Rig, sink: RecordingArrivals, tag: str, n: int, mode: Mode, note: str) -> Figure:
    """The faster of two runs of ``n`` deliveries, as ms per delivery, stamped when taken.

    Two, because the first run after a change of state (start, seed) pays for warming what
    the second finds warm, and a shared machine's load moves between runs.
    """
    runs = [_timed(r, sink, f"{tag}{k}-", n, mode) for k in range(2)]
    best = max(runs, key=lambda run: run.rate() or 0.0)
    rate = best.rate()
    extra = "; ".join(p for p in (note, best.note()) if p)
    return figure(f"history.{tag}", 1000 / rate if rate else None, "ms/delivery", extra)


def measure(redis_url: str, mode: Mode, say: Callable[[str], None]) -> list[Figure]:
    """Per-delivery cost before and after the seeded history, and the seeding rate."""
    with RecordingArrivals() as sink, rig(redis_url, "history") as r:
        installed = r.tenant(TENANT)
        r.store.create_event(TENANT, installed, event_spec(sink.url))
        with herald_node(r, mode.concurrency):
            warm = warm_up(r.publish, sink.snapshot, sink.clear, mode.warm_n)
            n = sized(warm.rate(), mode.run_s, mode.run_min, mode.run_max)
            # Grown like a throughput run, then the same size before and after the seed.
            while (bigger := _grow(r, sink, n, mode)) is not None:
                n = bigger
            say("history: empty activity log")
            empty = _best_of(r, sink, "empty", n, mode, f"best of 2 runs of {n} deliveries")
            say(f"history: seeding {mode.history_seed:,} earlier deliveries")
            start = time.perf_counter()
            made = clone_history(
                r.store.engine, read_delivery(r.store.engine, TENANT), mode.history_seed
            )
            seeded_rate = figure(
                "seeding.deliveries",
                made / (time.perf_counter() - start),
                "delivery/s",
                "bulk copies, one transaction per 20,000",
            )
            say("history: after the seed")
            seeded = _best_of(
                r, sink, "seeded", n, mode, f"best of 2 runs of {n} after {made:,} earlier"
            )
    return [empty, seeded, seeded_rate]
