"""Measure 5: cost per change with 1,000 configured events against 100,000 (quick: 10,000).

Tenants each have ``fanout_candidates`` INCIDENT/CREATE events (``fanout_matching`` of them
match the change), so every change has dense candidates whatever the total. The first
tenants' events go through ``Store.create_event`` (timed: the figure says what creating them
all that way would cost); the rest are copies of their rows (:mod:`bench.seeding`). A fresh
node is started on each database, and the measure reports:

* the cold cost: the first change after start, ``XADD`` to its last delivery;
* the steady cost: after a warm-up round over the measured tenants, a burst of changes cycling
  through them, first ``XADD`` to last delivery, divided by the changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bench.config import Mode
from bench.costs import figure
from bench.report import Figure
from bench.rig import Rig, change, event_spec, herald_node, rig, wait_arrivals
from bench.seeding import clone_tenants, read_tenant
from bench.sink import AsyncSink
from bench.stats import sized


def tenant_name(i: int) -> str:
    """The ``i``-th fan-out tenant."""
    return f"fan-{i:06d}"


def measured_tenants(total: int, count: int) -> list[str]:
    """``count`` tenants spread evenly over ``total`` (copies included, not just the first)."""
    count = min(count, total)
    return [tenant_name(i * total // count) for i in range(count)]


def _configure(r: Rig, sink_url: str, mode: Mode, size: int) -> tuple[float, int, float]:
    """Create ``size`` events; (create_event/s, events copied, copies/s)."""
    tenants = max(1, size // mode.fanout_candidates)
    by_store = max(1, min(tenants, mode.fanout_created // mode.fanout_candidates))
    start = time.perf_counter()
    for t in range(by_store):
        installed = r.tenant(tenant_name(t))
        for e in range(mode.fanout_candidates):
            spec = event_spec(sink_url, matching=e < mode.fanout_matching, name=f"fan {e}")
            r.store.create_event(tenant_name(t), installed, spec)
    created_rate = by_store * mode.fanout_candidates / (time.perf_counter() - start)
    start = time.perf_counter()
    copied = clone_tenants(
        r.store.engine,
        read_tenant(r.store.engine, tenant_name(0)),
        [tenant_name(t) for t in range(by_store, tenants)],
    )
    copy_rate = copied / (time.perf_counter() - start) if copied else 0.0
    return created_rate, copied, copy_rate


def _one_size(redis_url: str, sink: AsyncSink, mode: Mode, size: int, label: str) -> list[Figure]:
    per_change = mode.fanout_matching
    figures: list[Figure] = []
    with rig(redis_url, f"fanout-{label}") as r:
        created_rate, _, copy_rate = _configure(r, sink.url, mode, size)
        figures.append(
            figure(
                f"store.create_event.{label}",
                created_rate,
                "event/s",
                f"{100_000 / created_rate:.0f} s for 100,000 this way",
            )
        )
        figures.append(figure(f"seeding.events.{label}", copy_rate or None, "event/s"))
        tenants = measured_tenants(max(1, size // mode.fanout_candidates), mode.fanout_tenants)
        with herald_node(r, mode.concurrency):
            sink.clear()
            start = time.perf_counter()
            r.publish([("cold", change("cold", tenants[0]))])
            cold = wait_arrivals(sink.snapshot, per_change, start, start + 2 * mode.deadline())
            figures.append(
                figure(
                    f"fanout.{label}.cold",
                    (cold.last - start) * 1000 if cold.last and cold.complete else None,
                    "ms/change",
                    cold.note() or f"{size:,} events, first change after start",
                )
            )
            warm = [
                (f"warm{k}-{i}", change(f"warm{k}-{i}", t))
                for k in range(mode.fanout_warmup_rounds)
                for i, t in enumerate(tenants)
            ]
            sink.clear()
            start = time.perf_counter()
            r.publish(warm)
            warmed = wait_arrivals(
                sink.snapshot, len(warm) * per_change, start, start + 2 * mode.deadline()
            )
            sink.clear()
            changes_per_s = (warmed.rate() or 0.0) / per_change
            count = sized(changes_per_s, mode.run_s, len(tenants), mode.fanout_max)
            burst = [(f"m{i}", change(f"m{i}", tenants[i % len(tenants)])) for i in range(count)]
            start = time.perf_counter()
            r.publish(burst)
            run = wait_arrivals(
                sink.snapshot, len(burst) * per_change, start, start + mode.deadline()
            )
            time.sleep(0.2)  # deliveries the non-matching candidates must not make
            extra = sink.count - run.expected
    changes = run.done / per_change
    cost = (run.last - start) * 1000 / changes if run.last and changes else None
    note = f"{size:,} events, {mode.fanout_candidates} candidates ({per_change} match) per change"
    if not run.complete:
        note += f"; {run.note()} deliveries"
    if extra > 0:
        note += f"; {extra} deliveries too many"
    figures.append(figure(f"fanout.{label}.steady", cost, "ms/change", note))
    return figures


def measure(redis_url: str, mode: Mode, say: Callable[[str], None]) -> list[Figure]:
    """Steady and cold cost per change at both sizes."""
    figures: list[Figure] = []
    with AsyncSink() as sink:
        for size, label in zip(mode.fanout_sizes, ("small", "large"), strict=True):
            say(f"fan-out: {size:,} configured events")
            figures += _one_size(redis_url, sink, mode, size, label)
    return figures
