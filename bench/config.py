"""How big each measure is: the full run (``make bench``) and the quick one (``make bench-quick``).

Every count has a deadline beside it, so a slow Herald makes a measure report the rate it
sustained ("deadline: 312 of 1000") instead of running for ever.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mode:
    """Sizes and time limits of one run (seconds unless named otherwise)."""

    name: str
    #: Prefork pool size of every worker node, Herald's and the baselines'.
    concurrency: int
    #: A throughput run lasts about ``run_s``: it is sized from its warm-up of ``warm_n``
    #: units (see :func:`bench.stats.sized`) to between ``run_min`` and ``run_max`` units,
    #: and cut at ``deadline()`` if the estimate was far off.
    run_s: float
    warm_n: int
    run_min: int
    run_max: int
    #: Delay of the slow sink.
    slow_delay: float
    #: Sink ceilings: how long the load generator runs, and its connections at 50 ms.
    ceiling_s: float
    ceiling_connections: int
    #: Latency: changes per second, for how long (after a warm-up), stragglers' grace.
    latency_rate: float
    latency_s: float
    latency_warmup: int
    latency_grace: float
    #: Fan-out: configured events small and large, candidates (matching) per change.
    fanout_sizes: tuple[int, int]
    fanout_candidates: int
    fanout_matching: int
    #: Events created through ``Store.create_event`` to time it (the rest are bulk copies).
    fanout_created: int
    #: Tenants the steady phase cycles through, and warm-up rounds over them; the steady
    #: burst is sized like a throughput run, at most ``fanout_max`` changes.
    fanout_tenants: int
    fanout_warmup_rounds: int
    fanout_max: int
    #: History: earlier deliveries seeded (its runs are sized like throughput runs).
    history_seed: int
    #: Iterations of the pure micro-benchmarks (``bench/pure.py``).
    pure_n: int

    def deadline(self) -> float:
        """Seconds after which a run is cut, whatever its size."""
        return 3 * self.run_s + 5


FULL = Mode(
    name="full",
    concurrency=2,
    run_s=15.0,
    warm_n=50,
    run_min=50,
    run_max=50_000,
    slow_delay=0.05,
    ceiling_s=3.0,
    ceiling_connections=200,
    latency_rate=200.0,
    latency_s=30.0,
    latency_warmup=200,
    latency_grace=10.0,
    fanout_sizes=(1_000, 100_000),
    fanout_candidates=40,
    fanout_matching=32,
    fanout_created=200,
    fanout_tenants=20,
    fanout_warmup_rounds=2,
    fanout_max=400,
    history_seed=1_000_000,
    pure_n=50_000,
)

QUICK = Mode(
    name="quick",
    concurrency=2,
    run_s=1.0,
    warm_n=10,
    run_min=30,
    run_max=20_000,
    slow_delay=0.05,
    ceiling_s=0.7,
    ceiling_connections=200,
    latency_rate=200.0,
    latency_s=5.0,
    latency_warmup=10,
    latency_grace=1.0,
    fanout_sizes=(1_000, 10_000),
    fanout_candidates=40,
    fanout_matching=32,
    fanout_created=40,
    fanout_tenants=2,
    fanout_warmup_rounds=1,
    fanout_max=100,
    history_seed=20_000,
    pure_n=2_000,
)
