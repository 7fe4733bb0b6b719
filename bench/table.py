"""Issue 7's table: which figure is compared with which, and against what target.

Pure: :func:`rows` turns the figures of a run (by name) into :class:`~bench.report.Row`s. A
figure a measure did not produce is shown as missing with a reason, never left out, so the
table always has every line of the issue.
"""

from __future__ import annotations

from collections.abc import Mapping

from bench.config import Mode
from bench.report import Figure, Row, Target

#: Why a figure is missing, when the run says nothing more precise.
NOT_RUN = "not run"

#: Which measure makes the figures of each name prefix (the rest come from "pipeline").
_MEASURE_OF = {
    "match.": "pure",
    "render.": "pure",
    "herald.latency.": "latency",
    "fanout.": "fanout",
    "history.": "history",
}


def measure_of(name: str) -> str:
    """The measure (``python -m bench --only`` name) that produces figure ``name``."""
    return next((m for p, m in _MEASURE_OF.items() if name.startswith(p)), "pipeline")


def missing(name: str, unit: str, figures: Mapping[str, Figure]) -> Figure:
    """A placeholder for figure ``name``: "<measure> failed" if it did, else "not run".

    The error itself is printed once under the table (figure ``error.<measure>``).
    """
    measure = measure_of(name)
    note = f"{measure} failed" if f"error.{measure}" in figures else NOT_RUN
    return Figure(name, None, unit, note=note)


def peak(figures: Mapping[str, Figure], name: str, *sources: str) -> Figure | None:
    """The largest of ``sources`` as a new figure ``name`` (the memory peak over measures)."""
    found = [figures[s] for s in sources if s in figures and figures[s].value is not None]
    if not found:
        return None
    top = max(found, key=lambda f: f.value or 0.0)
    return Figure(name, top.value, top.unit, top.load, f"max of {', '.join(sources)}")


def rows(figures: Mapping[str, Figure], mode: Mode) -> list[Row]:
    """Every row of the table for ``figures`` measured in ``mode``."""
    figs = dict(figures)
    rss = peak(figs, "herald.rss_peak", "herald.instant.rss_peak", "herald.slow.rss_peak")
    if rss is not None:
        figs[rss.name] = rss
    pss = peak(figs, "herald.pss_peak", "herald.instant.pss_peak", "herald.slow.pss_peak")
    if pss is not None:
        figs[pss.name] = pss

    def f(name: str, unit: str = "") -> Figure:
        return figs.get(name) or missing(name, unit, figs)

    small, large = mode.fanout_sizes
    delay = f"{mode.slow_delay * 1000:g} ms"
    return [
        Row(
            "instant_vs_bare_celery",
            "pipeline, instant sink: deliveries/s vs bare Celery no-op tasks/s",
            f("herald.instant.rate", "delivery/s"),
            f("celery.noop.rate", "task/s"),
            Target(">=", 1.0),
        ),
        Row(
            "instant_vs_naive",
            "pipeline, instant sink: vs naive requests.post tasks",
            f("herald.instant.rate", "delivery/s"),
            f("naive.instant.rate", "delivery/s"),
        ),
        Row(
            "slow_rate_vs_sink_ceiling",
            f"pipeline, {delay} sink: deliveries/s (baseline: the sink's ceiling)",
            f("herald.slow.rate", "delivery/s"),
            f("sink.slow.ceiling", "req/s"),
            Target(">=", 1000.0, "value"),
        ),
        Row(
            "slow_vs_naive",
            f"pipeline, {delay} sink: vs naive requests.post tasks",
            f("herald.slow.rate", "delivery/s"),
            f("naive.slow.rate", "delivery/s"),
            Target(">=", 10.0),
        ),
        Row(
            "slow_vs_threads64",
            f"pipeline, {delay} sink: vs 64 threads sharing an httpx.Client",
            f("herald.slow.rate", "delivery/s"),
            f("threads64.slow.rate", "req/s"),
        ),
        Row(
            "latency_p99",
            f"latency p99, XADD to sink at {mode.latency_rate:g} changes/s",
            f("herald.latency.p99", "ms"),
            None,
            Target("<=", 50.0, "value"),
        ),
        Row(
            "latency_p50",
            f"latency p50, XADD to sink at {mode.latency_rate:g} changes/s",
            f("herald.latency.p50", "ms"),
        ),
        Row(
            "match_vs_rule_engine",
            "matching: matches/s vs rule-engine",
            f("match.herald", "match/s"),
            f("match.rule_engine", "match/s"),
            Target(">=", 10.0),
        ),
        Row(
            "match_vs_naive",
            "matching: vs a naive interpreter (faster: > 1x)",
            f("match.herald", "match/s"),
            f("match.naive", "match/s"),
            Target(">=", 1.0),
        ),
        Row(
            "render4_vs_jinja2",
            "rendering, 4 fields: renders/s vs jinja2",
            f("render.herald_4", "render/s"),
            f("render.jinja2_4", "render/s"),
            Target(">=", 0.8),
        ),
        Row(
            "render50_vs_jinja2",
            "rendering, 50 fields: renders/s vs jinja2",
            f("render.herald_50", "render/s"),
            f("render.jinja2_50", "render/s"),
            Target(">=", 0.8),
        ),
        Row(
            "fanout_large_vs_small",
            f"fan-out: ms per change at {large:,} events vs {small:,}",
            f("fanout.large.steady", "ms/change"),
            f("fanout.small.steady", "ms/change"),
            Target("<=", 1.5),
        ),
        Row(
            "fanout_cold_vs_steady",
            f"fan-out: first change after start vs steady, {large:,} events",
            f("fanout.large.cold", "ms/change"),
            f("fanout.large.steady", "ms/change"),
        ),
        Row(
            "fanout_unseen_large_vs_small",
            f"fan-out: ms per change of an unseen tenant, {large:,} events vs {small:,}",
            f("fanout.large.unseen", "ms/change"),
            f("fanout.small.unseen", "ms/change"),
        ),
        Row(
            "history_seeded_vs_empty",
            f"history: ms per delivery after {mode.history_seed:,} earlier vs empty",
            f("history.seeded", "ms/delivery"),
            f("history.empty", "ms/delivery"),
            Target("<=", 1.2),
        ),
        Row(
            "memory_vs_bare_celery",
            "memory: peak RSS of all worker processes (vs the bare Celery node)",
            f("herald.rss_peak", "MB"),
            f("celery.noop.rss_peak", "MB"),
            Target("<=", 250.0, "value"),
        ),
        Row(
            "memory_pss_vs_bare_celery",
            "memory: peak PSS of all worker processes, shared pages counted once",
            f("herald.pss_peak", "MB"),
            f("celery.noop.pss_peak", "MB"),
        ),
        Row(
            "redis_cmds_vs_bare_celery",
            "Redis commands per delivery vs per bare task (budget: about 2)",
            f("herald.instant.redis_cmds", "cmd/delivery"),
            f("celery.noop.redis_cmds", "cmd/task"),
            Target("<=", 2.0, "value"),
        ),
        Row(
            "cpu_vs_bare_celery",
            "worker CPU per delivery vs per bare task (budget: about 2 ms)",
            f("herald.instant.cpu_ms", "ms/delivery"),
            f("celery.noop.cpu_ms", "ms/task"),
            Target("<=", 2.0, "value"),
        ),
        Row(
            "harness_instant_sink_headroom",
            "harness: instant sink's ceiling vs Herald's rate (below 2x, the sink bounds it)",
            f("sink.instant.ceiling", "req/s"),
            f("herald.instant.rate", "delivery/s"),
            Target(">=", 2.0),
        ),
        Row(
            "harness_slow_sink_ceiling",
            f"harness: {delay} sink's ceiling (it must sustain 2,000 req/s)",
            f("sink.slow.ceiling", "req/s"),
            None,
            Target(">=", 2000.0, "value"),
        ),
        Row(
            "cpu_vs_naive",
            "worker CPU per delivery vs the naive task",
            f("herald.instant.cpu_ms", "ms/delivery"),
            f("naive.instant.cpu_ms", "ms/delivery"),
        ),
    ]
