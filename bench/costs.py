"""What a timed run cost: Redis commands (``INFO commandstats``), worker CPU and peak RSS.

The bench runs its own ``redis-server``, so the command counts are the run's alone; the
bench's own bookkeeping (``INFO``, polling a counter) is taken out, the producer's
``XADD``/``LPUSH`` of the work stays in, for Herald and the baselines alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from bench.procs import TICKS_PER_SECOND, RssSampler, cpu_snapshot
from bench.report import Figure, load_average
from bench.rig import Run
from bench.stats import command_calls, cpu_delta, next_size, per_unit

#: Commands only the bench sends: never part of what a delivery costs.
BENCH_ONLY = ("cmdstat_info",)


@dataclass(frozen=True)
class Cost:
    """One run and what it cost the node that did the work."""

    run: Run
    commands: int
    cpu_seconds: float
    rss_peak: int
    pss_peak: int = 0

    def commands_per_unit(self) -> float | None:
        """Redis commands per completed unit (delivery or task)."""
        return per_unit(self.commands, self.run.done)

    def cpu_ms_per_unit(self) -> float | None:
        """Worker CPU milliseconds per completed unit."""
        value = per_unit(self.cpu_seconds * 1000, self.run.done)
        return value


def _calls(client: redis.Redis) -> int:
    stats: dict[str, Any] = client.info("commandstats")
    return command_calls({k: v for k, v in stats.items() if k not in BENCH_ONLY})


def costed(client: redis.Redis, root_pid: int, work: Callable[[], Run]) -> Cost:
    """Run ``work`` while counting Redis commands, the CPU and RSS of ``root_pid``'s tree."""
    calls0, cpu0 = _calls(client), cpu_snapshot(root_pid)
    with RssSampler(root_pid) as sampler:
        run = work()
    calls1, cpu1 = _calls(client), cpu_snapshot(root_pid)
    return Cost(
        run=run,
        commands=calls1 - calls0 - run.own_commands,
        cpu_seconds=cpu_delta(cpu0, cpu1) / TICKS_PER_SECOND,
        rss_peak=sampler.peak,
        pss_peak=sampler.peak_pss,
    )


def grown(measure: Callable[[int, int], Cost], n: int, seconds: float, high: int) -> Cost:
    """``measure(n, attempt)`` repeated bigger until a run lasts about ``seconds`` (max 4)."""
    for attempt in range(4):
        cost = measure(n, attempt)
        run = cost.run
        elapsed = run.last - run.start if run.last is not None else 0.0
        bigger = next_size(n, elapsed, run.complete, seconds, high)
        if bigger is None:
            break
        n = bigger
    return cost


def figure(
    name: str, value: float | None, unit: str, note: str = "", *, lower_bound: bool = False
) -> Figure:
    """A figure stamped with the load average now."""
    return Figure(name, value, unit, load_average(), note, lower_bound)


def cost_figures(prefix: str, cost: Cost, unit: str) -> list[Figure]:
    """Rate, commands, CPU, RSS and PSS of a run, named ``<prefix>.rate`` etc."""
    note = cost.run.note()
    return [
        figure(f"{prefix}.rate", cost.run.rate(), f"{unit}/s", note),
        figure(f"{prefix}.redis_cmds", cost.commands_per_unit(), f"cmd/{unit}"),
        figure(f"{prefix}.cpu_ms", cost.cpu_ms_per_unit(), f"ms/{unit}"),
        figure(f"{prefix}.rss_peak", cost.rss_peak / 2**20 if cost.rss_peak else None, "MB"),
        figure(f"{prefix}.pss_peak", cost.pss_peak / 2**20 if cost.pss_peak else None, "MB"),
    ]
