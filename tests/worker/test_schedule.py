"""The retry schedule: pure backoff (table + properties) and the Redis sorted set (real Redis)."""

from __future__ import annotations

import threading

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from integrations.config import DEFAULT_RETRY_SCHEDULE
from worker.schedule import RetrySchedule, compute_backoff


@pytest.mark.parametrize(
    ("made", "rand", "retry_after", "expected"),
    [
        (1, 0.5, None, 10.0),  # middle of the jitter band = the schedule itself
        (2, 0.5, None, 60.0),
        (8, 0.5, None, 86400.0),
        (9, 0.5, None, None),  # exhausted after the last scheduled delay
        (0, 0.5, None, None),
        (1, 0.0, None, 8.0),  # -20 %
        (1, 1.0, None, 12.0),  # +20 %
        (1, 0.5, 120.0, 120.0),  # Retry-After longer than the schedule wins
        (3, 0.5, 5.0, 300.0),  # ...but never shortens it
        (1, 0.5, 999_999.0, 3600.0),  # clamped to max_retry_after
        (1, 0.5, -5.0, 10.0),
    ],
)
def test_compute_backoff_table(
    made: int, rand: float, retry_after: float | None, expected: float | None
) -> None:
    got = compute_backoff(
        made,
        DEFAULT_RETRY_SCHEDULE,
        retry_after=retry_after,
        max_retry_after=3600.0,
        rand=lambda: rand,
    )
    assert got == (pytest.approx(expected) if expected is not None else None)


@given(
    made=st.integers(min_value=1, max_value=8),
    r=st.floats(min_value=0.0, max_value=1.0),
    retry_after=st.none() | st.floats(min_value=0, max_value=1e7, allow_nan=False),
)
def test_backoff_stays_within_the_jitter_band_and_the_clamp(
    made: int, r: float, retry_after: float | None
) -> None:
    base = DEFAULT_RETRY_SCHEDULE[made - 1]
    got = compute_backoff(made, DEFAULT_RETRY_SCHEDULE, retry_after=retry_after, rand=lambda: r)
    assert got is not None
    lower, upper = base * 0.8, base * 1.2
    if retry_after is not None:
        clamped = min(retry_after, 3600.0)
        lower, upper = max(lower, clamped), max(upper, clamped)
    assert lower - 1e-6 <= got <= upper + 1e-6


def test_claim_due_leases_entries_until_the_work_removes_them(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    sched = RetrySchedule(redis_client, redis_prefix)
    sched.add("DLV-a", 100.0)
    sched.add("DLV-b", 200.0)
    sched.add("DLV-c", 10_000.0)
    claimed = sched.claim_due(now=300.0, lease=60.0)
    assert sorted(m for m, _ in claimed) == ["DLV-a", "DLV-b"]
    # Claimed entries stay in the set under the lease: not due again before it ends...
    assert sched.claim_due(now=301.0) == []
    assert len(sched) == 3
    # ...and due again after it, unless the work removed or rescheduled them.
    sched.remove("DLV-a")
    sched.add("DLV-b", 5_000.0)
    assert sched.claim_due(now=361.0) == []
    assert [m for m, _ in sched.claim_due(now=5_000.0)] == ["DLV-b"]
    assert sched.due_at("DLV-c") == pytest.approx(10_000.0)


def test_remove_if_unchanged_spares_an_entry_rescheduled_since_the_claim(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    sched = RetrySchedule(redis_client, redis_prefix)
    sched.add("DLV-a", 100.0)
    sched.add("DLV-b", 100.0)
    leases = dict(sched.claim_due(now=1_795_000_000.0, lease=600.0))
    sched.add("DLV-b", 1_795_000_100.0)  # rescheduled after the claim (a replay, say)
    assert sched.remove_if_unchanged("DLV-a", leases["DLV-a"]) is True
    assert sched.remove_if_unchanged("DLV-b", leases["DLV-b"]) is False
    assert sched.remove_if_unchanged("DLV-missing", leases["DLV-a"]) is False
    assert sched.due_at("DLV-a") is None
    assert sched.due_at("DLV-b") == pytest.approx(1_795_000_100.0)


def test_a_lost_dispatch_comes_due_again_after_its_lease(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    """A scheduler that dies after claiming, or a task the broker loses, loses nothing."""
    sched = RetrySchedule(redis_client, redis_prefix)
    sched.add("DLV-a", 100.0)
    assert [m for m, _ in sched.claim_due(now=100.0, lease=30.0)] == ["DLV-a"]
    assert sched.claim_due(now=129.0, lease=30.0) == []
    assert [m for m, _ in sched.claim_due(now=131.0, lease=30.0)] == ["DLV-a"]


def test_concurrent_schedulers_never_claim_the_same_entry(
    redis_url: str, redis_prefix: str, redis_client: redis.Redis
) -> None:
    sched = RetrySchedule(redis_client, redis_prefix)
    for i in range(300):
        sched.add(f"DLV-{i}", 100.0)
    claimed: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        own = RetrySchedule(redis.Redis.from_url(redis_url), redis_prefix)
        while True:
            got = own.claim_due(now=200.0, limit=7)
            if not got:
                return
            with lock:
                claimed.extend(m for m, _ in got)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(f"DLV-{i}" for i in range(300))
