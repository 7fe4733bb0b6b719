"""Measure 3: latency from ``XADD`` to arrival at the instant sink, at a fixed rate.

Changes are sent one ``XADD`` each on a fixed schedule (200/s), not in a burst, after a short
warm-up; a change that has not arrived when the run ends counts as slower than every one that
did (see :func:`bench.stats.latency_summary`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bench.config import Mode
from bench.costs import figure
from bench.pipeline import TENANT, warm_up
from bench.report import Figure
from bench.rig import change, event_spec, herald_node, rig
from bench.sink import RecordingArrivals
from bench.stats import latency_summary


def paced(rate: float, seconds: float) -> list[float]:
    """Send offsets (s from the start) of ``rate`` messages per second for ``seconds``."""
    return [i / rate for i in range(int(rate * seconds))]


def measure(redis_url: str, mode: Mode, say: Callable[[str], None]) -> list[Figure]:
    """p50 and p99 at ``mode.latency_rate`` changes/s."""
    say(f"latency at {mode.latency_rate:.0f} changes/s for {mode.latency_s:.0f} s")
    with RecordingArrivals() as sink, rig(redis_url, "latency") as r:
        installed = r.tenant(TENANT)
        r.store.create_event(TENANT, installed, event_spec(sink.url))
        with herald_node(r, mode.concurrency):
            warm_up(r.publish, sink.snapshot, sink.clear, mode.latency_warmup)
            sent: dict[str, float] = {}
            start = time.perf_counter()
            for i, offset in enumerate(paced(mode.latency_rate, mode.latency_s)):
                delay = start + offset - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                mid = f"lat{i}"
                sent[mid] = time.perf_counter()
                r.redis.xadd(r.settings.stream_key, {"message": change(mid, TENANT)})
            behind = time.perf_counter() - start - mode.latency_s
            deadline = time.perf_counter() + mode.latency_grace
            while sink.count < len(sent) and time.perf_counter() < deadline:
                time.sleep(0.01)
            waited = time.perf_counter() - start
            arrived = {mid: t for t, mid in sink.snapshot() if mid in sent}
    summary = latency_summary([arrived[mid] - sent[mid] for mid in arrived], len(sent), waited)
    note = f"{summary.arrived} of {summary.sent} arrived within {summary.waited:.1f} s"
    if behind > 0.5:
        note += f"; the producer fell {behind:.1f} s behind its schedule"

    def quantile(name: str, value: float | None) -> Figure:
        # Among the missing: slower than the whole wait, which is a bound the target can judge.
        if value is None:
            return figure(name, summary.waited * 1000, "ms", note, lower_bound=True)
        return figure(name, value * 1000, "ms", note)

    return [
        quantile("herald.latency.p50", summary.p50),
        quantile("herald.latency.p99", summary.p99),
    ]
