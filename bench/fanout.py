"""Measure 5: cost per change with 1,000 configured events against 100,000 (quick: 10,000).

Tenants each have ``fanout_candidates`` INCIDENT/CREATE events (``fanout_matching`` of them
match the change), so every change has dense candidates whatever the total. The first
tenants' events go through ``Store.create_event`` (timed: the figure says what creating them
all that way would cost); the rest are copies of their rows (:mod:`bench.seeding`). A fresh
node is started on each database, and the measure reports:

* the cold cost: the first change after start, ``XADD`` to its last delivery;
* the steady cost: after a warm-up round over the measured tenants, a burst of changes cycling
  through them, first ``XADD`` to last delivery, divided by the changes;
* the unseen cost: a burst of changes each for a tenant no change has touched since the
  start, so the cost of a miss in whatever the worker caches, at both sizes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.config import Mode
from bench.costs import figure
from bench.report import Figure
from bench.rig import Rig, Run, change, event_spec, herald_node, rig, wait_arrivals
from bench.seeding import clone_tenants, read_tenant
from bench.sink import AsyncSink
from bench.stats import next_size, sized


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


def unseen_tenants(total: int, count: int, seen: list[str]) -> list[str]:
    """Up to ``count`` tenants spread over ``total`` that are not in ``seen``."""
    fresh = [tenant_name(i) for i in range(total) if tenant_name(i) not in set(seen)]
    step = max(1, len(fresh) // max(count, 1))
    return fresh[::step][:count]


@dataclass(frozen=True)
class Burst:
    """Changes published at once, and their deliveries."""

    run: Run
    per_change: int
    #: Deliveries beyond the matching ones (a non-matching candidate delivered).
    extra: int

    def ms_per_change(self) -> float | None:
        """First ``XADD`` to last delivery, divided by the changes delivered."""
        changes = self.run.done / self.per_change
        if self.run.last is None or not changes:
            return None
        return (self.run.last - self.run.start) * 1000 / changes

    def note(self, base: str) -> str:
        """``base`` plus what went wrong, if anything."""
        if not self.run.complete:
            base += f"; {self.run.note()} deliveries"
        if self.extra > 0:
            base += f"; {self.extra} deliveries too many"
        return base


def _burst(
    r: Rig, sink: AsyncSink, messages: list[tuple[str, str]], per_change: int, deadline: float
) -> Burst:
    sink.clear()
    start = time.perf_counter()
    r.publish(messages)
    run = wait_arrivals(sink.snapshot, len(messages) * per_change, start, start + deadline)
    time.sleep(0.1)  # time for deliveries the non-matching candidates must not make
    return Burst(run, per_change, sink.count - run.expected)


def _one_size(redis_url: str, sink: AsyncSink, mode: Mode, size: int, label: str) -> list[Figure]:
    per_change = mode.fanout_matching
    total = max(1, size // mode.fanout_candidates)
    about = f"{size:,} events, {mode.fanout_candidates} candidates ({per_change} match) per change"
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
        tenants = measured_tenants(total, mode.fanout_tenants)
        with herald_node(r, mode.concurrency):
            cold = _burst(
                r, sink, [("cold", change("cold", tenants[0]))], per_change, 2 * mode.deadline()
            )
            figures.append(
                figure(
                    f"fanout.{label}.cold",
                    cold.ms_per_change(),
                    "ms/change",
                    cold.note(f"{size:,} events, first change after start"),
                )
            )
            warm = [
                (f"warm{k}-{i}", change(f"warm{k}-{i}", t))
                for k in range(mode.fanout_warmup_rounds)
                for i, t in enumerate(tenants)
            ]
            warmed = _burst(r, sink, warm, per_change, 2 * mode.deadline())
            changes_per_s = (warmed.run.rate() or 0.0) / per_change
            count = sized(changes_per_s, mode.run_s, len(tenants), mode.fanout_max)
            for k in range(4):  # grown like a throughput run (see bench.stats.next_size)
                burst = [
                    (f"m{k}-{i}", change(f"m{k}-{i}", tenants[i % len(tenants)]))
                    for i in range(count)
                ]
                steady = _burst(r, sink, burst, per_change, mode.deadline())
                last = steady.run.last
                elapsed = last - steady.run.start if last is not None else 0.0
                bigger = next_size(count, elapsed, steady.run.complete, mode.run_s, mode.fanout_max)
                if bigger is None:
                    break
                count = bigger
            figures.append(
                figure(
                    f"fanout.{label}.steady",
                    steady.ms_per_change(),
                    "ms/change",
                    steady.note(about),
                )
            )
            # Changes of tenants no change has touched since the start: what a cache miss
            # costs, which steady state over a few tenants never shows.
            fresh = unseen_tenants(total, min(count, mode.fanout_max), tenants)
            if fresh:
                unseen = _burst(
                    r,
                    sink,
                    [(f"u{i}", change(f"u{i}", t)) for i, t in enumerate(fresh)],
                    per_change,
                    mode.deadline(),
                )
                figures.append(
                    figure(
                        f"fanout.{label}.unseen",
                        unseen.ms_per_change(),
                        "ms/change",
                        unseen.note(f"{len(fresh)} tenants not seen since start"),
                    )
                )
    return figures


def measure(redis_url: str, mode: Mode, say: Callable[[str], None]) -> list[Figure]:
    """Steady and cold cost per change at both sizes."""
    figures: list[Figure] = []
    with AsyncSink() as sink:
        for size, label in zip(mode.fanout_sizes, ("small", "large"), strict=True):
            say(f"fan-out: {size:,} configured events")
            figures += _one_size(redis_url, sink, mode, size, label)
    return figures
