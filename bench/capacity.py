"""The figures of one ``bench.scaling`` run, and what they project to: pure, no I/O.

:class:`Sample` holds a timed run's raw counts (deliveries, Redis commands by name, Redis and
worker CPU seconds); every figure per delivery, the projection to :data:`TARGET_RATE` and the
Markdown tables of ``docs/scaling.md`` are computed from them here, so ``tests/bench`` can
check each formula.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from bench.report import LoadAverage
from bench.stats import per_unit

#: The rate the projection is made for (issue 7).
TARGET_RATE = 10_000.0


@dataclass(frozen=True)
class Sample:
    """One timed run: what arrived, and what it cost Redis and the nodes."""

    label: str
    nodes: int
    concurrency: int
    broker: str
    expected: int
    deliveries: int
    seconds: float
    commands: dict[str, int]
    redis_cpu_s: float
    worker_cpu_s: float
    load: LoadAverage
    #: Redis CPU seconds per second with the nodes up and no load (their polling).
    redis_idle_cpu: float = 0.0

    @property
    def rate(self) -> float | None:
        """Deliveries per second, first send to last arrival."""
        return self.deliveries / self.seconds if self.deliveries and self.seconds > 0 else None

    @property
    def total_commands(self) -> int:
        """Redis commands of the run, every command together."""
        return sum(self.commands.values())

    def per_delivery(self, value: float) -> float | None:
        """``value`` divided by the deliveries (``None`` when nothing arrived)."""
        return per_unit(value, self.deliveries)

    @property
    def batch_size(self) -> float | None:
        """Mean deliveries per batch: one ``XACK`` acknowledges one batch."""
        return per_unit(self.deliveries, self.commands.get("xack", 0))

    @property
    def redis_busy_cpu_s(self) -> float:
        """The run's Redis CPU less what the idle nodes would have cost in the same time."""
        return max(0.0, self.redis_cpu_s - self.redis_idle_cpu * self.seconds)

    def summary(self) -> dict[str, Any]:
        """The run's raw counts and its figures per delivery, for the JSON."""
        return dataclasses.asdict(self) | {
            "rate": self.rate,
            "commands_per_delivery": self.per_delivery(self.total_commands),
            "redis_cpu_us_per_delivery": self.per_delivery(self.redis_cpu_s * 1e6),
            "redis_busy_cpu_us_per_delivery": self.per_delivery(self.redis_busy_cpu_s * 1e6),
            "worker_cpu_ms_per_delivery": self.per_delivery(self.worker_cpu_s * 1e3),
            "batch_size": self.batch_size,
        }


def projection(
    sample: Sample, target: float = TARGET_RATE, raw_ops: float | None = None
) -> dict[str, float | None]:
    """What ``target`` deliveries/s would take, extrapolated from ``sample``'s costs.

    Redis is single-threaded, so one instance is one core: its capacity is one CPU-second
    over the Redis CPU a delivery costs. ``raw_ops`` (``redis-benchmark``'s commands/s) gives
    a second, command-count bound. Worker cores come from the nodes' CPU per delivery;
    database transactions from two per batch, at the measured batch size and at a full one.
    """
    redis_s = sample.per_delivery(sample.redis_cpu_s)
    busy_s = sample.per_delivery(sample.redis_busy_cpu_s)
    cmds = sample.per_delivery(sample.total_commands)
    worker_s = sample.per_delivery(sample.worker_cpu_s)
    per_core = 1.0 / redis_s if redis_s else None
    by_ops = raw_ops / cmds if raw_ops and cmds else None
    batch = sample.batch_size
    return {
        "deliveries_per_redis_core": per_core,
        "deliveries_per_redis_core_less_idle": 1.0 / busy_s if busy_s else None,
        "deliveries_per_redis_by_commands": by_ops,
        "redis_cores": target / per_core if per_core else None,
        "redis_commands_per_s": target * cmds if cmds else None,
        "worker_cores": target * worker_s if worker_s else None,
        "db_transactions_per_s": 2 * target / batch if batch else None,
        "db_transactions_per_s_full_batches": 2 * target / 100,
    }


def num(value: float | None, digits: int = 1) -> str:
    """``1,234.5``, or ``n/a`` for a figure that was not measured."""
    return "n/a" if value is None else f"{value:,.{digits}f}"


def table(samples: list[Sample]) -> str:
    """The throughput table, one line per run."""
    lines = [
        "| run | deliveries/s | Redis cmd/delivery | Redis CPU µs/delivery (less idle)"
        " | Redis idle CPU | worker CPU ms/delivery | batch | load (1, 5, 15 min) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in samples:
        d = s.summary()
        done = "" if s.deliveries >= s.expected else f" ({s.deliveries} of {s.expected})"
        lines.append(
            f"| {s.label} (c{s.concurrency}) | {num(s.rate, 0)}{done}"
            f" | {num(d['commands_per_delivery'], 2)} | {num(d['redis_cpu_us_per_delivery'])}"
            f" ({num(d['redis_busy_cpu_us_per_delivery'])}) | {s.redis_idle_cpu:.1%}"
            f" | {num(d['worker_cpu_ms_per_delivery'], 2)} | {num(s.batch_size)}"
            f" | {', '.join(f'{x:.2f}' for x in s.load)} |"
        )
    return "\n".join(lines)


def breakdown(samples: list[Sample]) -> str:
    """Commands per delivery by command, one column per run."""
    names = sorted(
        {c for s in samples for c in s.commands}, key=lambda c: -samples[0].commands.get(c, 0)
    )
    lines = ["| command | " + " | ".join(s.label for s in samples) + " |"]
    lines.append("| --- |" + " --- |" * len(samples))
    for name in names:
        cells = [num(s.per_delivery(s.commands.get(name, 0)), 3) for s in samples]
        lines.append(f"| {name.upper()} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
