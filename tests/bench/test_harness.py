"""The benchmark harness's own arithmetic and table: fast, no worker processes.

``make bench`` prints verdicts from these functions, so a wrong percentile or an inverted
ratio would publish a wrong table; each is checked here against hand-computed values.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Column, DateTime, MetaData, String, Table, create_engine, select

from bench.config import FULL, QUICK
from bench.fanout import measured_tenants, tenant_name, unseen_tenants
from bench.latency import paced
from bench.report import (
    Figure,
    Row,
    RunInfo,
    Target,
    document,
    evaluate,
    format_table,
    notes,
)
from bench.seeding import insert_sqlite, retarget
from bench.sink import AsyncSink, body_id, content_length
from bench.stats import (
    command_calls,
    cpu_delta,
    cpu_ticks,
    descendants,
    latency_summary,
    next_size,
    parent_pid,
    percentile,
    pss_kib,
    rate,
    sized,
    vm_rss_kib,
)
from bench.table import rows


def test_rate_counts_to_the_last_completion_not_the_deadline() -> None:
    assert rate(100, 10.0, 12.0) == 50.0
    assert rate(0, 10.0, 12.0) is None
    assert rate(5, 10.0, None) is None


def test_percentile_interpolates() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([7.0], 0.99) == 7.0
    with pytest.raises(ValueError):
        percentile([], 0.5)


def test_latency_counts_the_missing_as_slowest() -> None:
    # 100 sent, 98 arrived: p50 is an arrival, p99 falls among the missing.
    got = latency_summary([i / 1000 for i in range(98)], sent=100, waited=7.0)
    assert got.p50 == pytest.approx(0.049)
    assert got.p99 is None
    assert (got.sent, got.arrived) == (100, 98)
    full = latency_summary([i / 1000 for i in range(100)], sent=100, waited=7.0)
    assert full.p99 == pytest.approx(0.098)
    with pytest.raises(ValueError):
        latency_summary([0.1, 0.2], sent=1, waited=1.0)


def test_command_calls_sums_every_command() -> None:
    stats = {"cmdstat_get": {"calls": 3, "usec": 9}, "cmdstat_xadd": {"calls": 2}, "other": 1}
    assert command_calls(stats) == 5


def test_proc_parsing() -> None:
    status = "Name:\tcelery\nVmPeak:\t  9000 kB\nVmRSS:\t  1234 kB\n"
    assert vm_rss_kib(status) == 1234
    assert vm_rss_kib("Name:\tzombie\n") == 0
    rollup = "55d0-7ffe ---p 0 00:00 0 [rollup]\nRss:  120000 kB\nPss:   64000 kB\nPss_Anon: 1 kB\n"
    assert pss_kib(rollup) == 64000
    assert pss_kib("") == 0
    # A command name with spaces and parentheses must not shift the fields.
    stat = "42 (celery (worker) 1) S 7 42 42 0 -1 0 0 0 0 0 150 25 0 0 20 0 1 0"
    assert parent_pid(stat) == 7
    assert cpu_ticks(stat) == 175


def test_process_tree_and_cpu_delta() -> None:
    parents = {1: 0, 10: 1, 11: 10, 12: 10, 13: 11, 20: 1}
    assert descendants(10, parents) == [10, 11, 12, 13]
    # 12 appeared during the run (a replaced child): it counts from zero.
    assert cpu_delta({10: 100, 11: 50}, {10: 130, 11: 60, 12: 5}) == 45


def test_runs_are_sized_from_the_warm_up() -> None:
    assert sized(50.0, 2.0, 10, 1000) == 100
    assert sized(1e6, 2.0, 10, 1000) == 1000
    assert sized(None, 2.0, 10, 1000) == 10


def test_targets_judge_ratio_or_value() -> None:
    fast = Figure("h", 700.0, "delivery/s")
    celery = Figure("c", 669.0, "task/s")
    [v] = evaluate([Row("k", "m", fast, celery, Target(">=", 1.0))])
    assert v.ratio == pytest.approx(700 / 669) and v.met is True
    rss = Figure("rss", 300.0, "MB")
    [v] = evaluate([Row("mem", "m", rss, Figure("b", 150.0, "MB"), Target("<=", 250.0, "value"))])
    assert v.ratio == 2.0 and v.met is False
    [v] = evaluate([Row("p", "m", Figure("x", None, "ms", note="pending"), None, Target("<=", 1))])
    assert v.ratio is None and v.met is None
    # A p99 among changes that never arrived: a lower bound, still judged, shown as such.
    late = Figure("p99", 6000.0, "ms", (4.0, 0.0, 0.0), lower_bound=True)
    [v] = evaluate([Row("lat", "m", late, None, Target("<=", 50.0, "value"))])
    assert v.met is False and "> 6,000 ms @4.00" in format_table([v])


def test_table_and_document_name_every_ratio() -> None:
    load = (1.5, 1.0, 0.5)
    figures = {
        "herald.instant.rate": Figure("herald.instant.rate", 55.0, "delivery/s", load),
        "celery.noop.rate": Figure("celery.noop.rate", 669.0, "task/s", load),
        "error.fanout": Figure("error.fanout", None, "", note="RuntimeError: boom"),
    }
    verdicts = evaluate(rows(figures, QUICK))
    keys = [v.row.key for v in verdicts]
    assert len(keys) == len(set(keys))
    assert {"instant_vs_bare_celery", "fanout_large_vs_small", "memory_vs_bare_celery"} <= set(keys)
    text = format_table(verdicts)
    assert "55.0 delivery/s @1.50" in text and "0.08x" in text
    assert "fanout failed" in text  # a failed measure says so in its rows...
    errors = [figures["error.fanout"]]
    assert "error.fanout: RuntimeError: boom" in notes(verdicts, errors)  # ...and why, once
    doc = document(verdicts, [], _info())
    assert doc["ratios"]["instant_vs_bare_celery"] == pytest.approx(55 / 669)
    assert doc["met"]["instant_vs_bare_celery"] is False
    assert doc["figures"]["celery.noop.rate"]["loadavg"] == [1.5, 1.0, 0.5]
    assert set(doc["ratios"]) == set(keys)


def _info() -> RunInfo:
    return RunInfo("quick", "abc", False, "2026-01-01T00:00:00+00:00", 1.0, 2, "3.11")


def test_memory_row_takes_the_peak_of_both_pipelines() -> None:
    figures = {
        "herald.instant.rss_peak": Figure("herald.instant.rss_peak", 200.0, "MB"),
        "herald.slow.rss_peak": Figure("herald.slow.rss_peak", 260.0, "MB"),
    }
    [v] = [v for v in evaluate(rows(figures, QUICK)) if v.row.key == "memory_vs_bare_celery"]
    assert v.row.herald.value == 260.0 and v.met is False


def test_pss_row_takes_the_peak_too_and_has_no_target_of_its_own() -> None:
    figures = {
        "herald.instant.pss_peak": Figure("herald.instant.pss_peak", 190.0, "MB"),
        "herald.slow.pss_peak": Figure("herald.slow.pss_peak", 180.0, "MB"),
    }
    [v] = [v for v in evaluate(rows(figures, QUICK)) if v.row.key == "memory_pss_vs_bare_celery"]
    assert v.row.herald.value == 190.0 and v.met is None


def test_seed_copies_change_only_the_given_columns() -> None:
    row = {"id": "a", "tenant_id": "t", "config": "{}"}
    assert retarget(row, id="b", missing="x") == {"id": "b", "tenant_id": "t", "config": "{}"}
    assert row["id"] == "a"


def test_fanout_measures_copied_tenants_too() -> None:
    assert measured_tenants(250, 4) == [tenant_name(i) for i in (0, 62, 125, 187)]
    assert measured_tenants(1, 4) == [tenant_name(0)]


def test_quick_mode_is_smaller_and_paced_sends_keep_the_rate() -> None:
    assert QUICK.fanout_sizes[1] < FULL.fanout_sizes[1] and QUICK.history_seed < FULL.history_seed
    offsets = paced(200.0, 5.0)
    assert len(offsets) == 1000 and offsets[1] == 0.005


def test_http_parsing() -> None:
    assert content_length(b"POST / HTTP/1.1\r\nContent-Length: 12\r\n\r\n") == 12
    assert content_length(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n") is None
    assert body_id(b'{"id": 7}') == "7" and body_id(b"[1]") is None and body_id(b"x") is None


def test_async_sink_records_and_delays() -> None:
    with AsyncSink(delay=0.05) as sink, httpx.Client() as client:
        start = time.perf_counter()
        for i in range(3):  # one keep-alive connection, three requests
            client.post(sink.url + "/hook", json={"id": f"m{i}"}).raise_for_status()
        elapsed = time.perf_counter() - start
        assert [mid for _, mid in sink.snapshot()] == ["m0", "m1", "m2"]
        assert elapsed >= 0.15
        chunked = client.post(sink.url, content=iter([b"{}"]))
        assert chunked.status_code == 411


def test_unseen_tenants_avoid_the_measured_ones() -> None:
    seen = measured_tenants(100, 4)
    fresh = unseen_tenants(100, 5, seen)
    assert len(fresh) == 5 and not set(fresh) & set(seen)
    assert unseen_tenants(2, 5, [tenant_name(0), tenant_name(1)]) == []


def test_a_run_shorter_than_its_budget_is_repeated_bigger() -> None:
    # 30 units in 0.3 s of a 1.5 s budget: a latency-bound run, five times bigger next.
    assert next_size(30, 0.3, True, 1.5, 10_000) == 150
    assert next_size(30, 0.01, True, 1.5, 10_000) == 4500
    assert next_size(30, 1.0, True, 1.5, 10_000) is None  # long enough
    assert next_size(30, 0.3, False, 1.5, 10_000) is None  # cut by its deadline
    assert next_size(9_000, 0.3, True, 1.5, 10_000) == 10_000
    assert next_size(10_000, 0.3, True, 1.5, 10_000) is None


def test_raw_sqlite_copies_read_back_as_sqlalchemy_wrote_them(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'copy.db'}")
    meta = MetaData()
    table = Table("t", meta, Column("id", String, primary_key=True), Column("at", DateTime))
    meta.create_all(engine)
    at = datetime(2026, 12, 1, 11, 41, 10, 612185)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"id": "orm", "at": at}])
    insert_sqlite(engine, [("t", [{"id": "raw", "at": at}])])
    with engine.connect() as conn:
        rows = dict(conn.execute(select(table.c.id, table.c.at)).all())
        stored: dict[str, str] = dict(conn.exec_driver_sql("SELECT id, at FROM t").all())
    assert rows == {"orm": at, "raw": at}
    assert stored["raw"] == stored["orm"]  # the very same text in the file
    engine.dispose()
