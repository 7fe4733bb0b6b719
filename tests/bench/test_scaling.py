"""The arithmetic of ``bench.scaling``: counter deltas, per-delivery figures, the projection.

``docs/scaling.md`` quotes these numbers, so each formula is checked against hand-computed
values; no worker processes run here.
"""

from __future__ import annotations

import pytest

from bench.capacity import Sample, breakdown, projection, table
from bench.stats import command_deltas, redis_cpu_seconds


def sample(**kw: object) -> Sample:
    base: dict[str, object] = {
        "label": "1 node, redis",
        "nodes": 1,
        "concurrency": 1,
        "broker": "redis",
        "expected": 1000,
        "deliveries": 1000,
        "seconds": 2.0,
        "commands": {"xadd": 1000, "xack": 10, "llen": 90},
        "redis_cpu_s": 0.05,
        "worker_cpu_s": 2.0,
        "load": (1.0, 1.0, 1.0),
    }
    base.update(kw)
    return Sample(**base)  # type: ignore[arg-type]


def test_command_deltas_per_command_without_the_excluded_and_the_unchanged() -> None:
    before = {
        "cmdstat_xadd": {"calls": 5},
        "cmdstat_get": {"calls": 7},
        "cmdstat_info": {"calls": 1},
    }
    after = {
        "cmdstat_xadd": {"calls": 105},
        "cmdstat_get": {"calls": 7},
        "cmdstat_info": {"calls": 3},
        "cmdstat_xack": {"calls": 2},  # first seen after: counts from zero
        "errorstat_ERR": {"count": 1},
    }
    assert command_deltas(before, after, exclude=("cmdstat_info",)) == {"xadd": 100, "xack": 2}


def test_redis_cpu_is_user_plus_system() -> None:
    assert redis_cpu_seconds({"used_cpu_user": "1.25", "used_cpu_sys": 0.5}) == 1.75


def test_sample_figures_per_delivery() -> None:
    s = sample()
    assert s.rate == 500.0
    assert s.total_commands == 1100
    assert s.per_delivery(s.total_commands) == 1.1
    assert s.batch_size == 100.0  # one XACK per batch
    summary = s.summary()
    assert summary["redis_cpu_us_per_delivery"] == pytest.approx(50.0)
    assert summary["worker_cpu_ms_per_delivery"] == pytest.approx(2.0)


def test_a_run_with_nothing_delivered_has_no_figures() -> None:
    s = sample(deliveries=0, seconds=0.0, commands={})
    assert s.rate is None and s.batch_size is None and s.per_delivery(5) is None


def test_projection_to_ten_thousand_deliveries_per_second() -> None:
    p = projection(sample(), raw_ops=22_000.0)
    assert p["deliveries_per_redis_core"] == pytest.approx(20_000.0)  # 50 µs each
    assert p["redis_cores"] == pytest.approx(0.5)
    assert p["deliveries_per_redis_by_commands"] == pytest.approx(20_000.0)  # 22,000 / 1.1
    assert p["redis_commands_per_s"] == pytest.approx(11_000.0)
    assert p["worker_cores"] == pytest.approx(20.0)  # 2 ms each
    assert p["db_transactions_per_s"] == pytest.approx(200.0)  # 100 batches/s, two each


def test_projection_without_a_batch_count_or_benchmark_says_so() -> None:
    p = projection(sample(commands={"xadd": 1000}))
    assert p["db_transactions_per_s"] is None
    assert p["deliveries_per_redis_by_commands"] is None


def test_idle_polling_is_taken_out_of_the_busy_redis_cpu() -> None:
    s = sample(redis_idle_cpu=0.01)  # 1 % of a core for the run's 2 s: 0.02 s
    assert s.redis_busy_cpu_s == pytest.approx(0.03)
    assert projection(s)["deliveries_per_redis_core_less_idle"] == pytest.approx(1000 / 0.03)
    assert sample(redis_idle_cpu=1.0).redis_busy_cpu_s == 0.0  # never negative


def test_tables_show_each_run_and_each_command() -> None:
    runs = [sample(), sample(label="2 nodes, redis", nodes=2, deliveries=500)]
    rows = table(runs).splitlines()
    assert rows[2].startswith("| 1 node, redis (c1) | 500 | 1.10 | 50.0 (50.0) | 0.0%")
    assert "(500 of 1000)" in rows[3]
    lines = breakdown(runs).splitlines()
    assert lines[2] == "| XADD | 1.000 | 2.000 |"  # most frequent first, per delivery
