"""Pure arithmetic of the benchmark: rates, percentiles, Redis and ``/proc`` counters.

Nothing here does I/O, so ``tests/bench`` can check every formula the table depends on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def rate(count: int, start: float, end: float | None) -> float | None:
    """``count`` events per second between ``start`` and ``end`` (``None`` if nothing came).

    ``end`` is the time of the last completion, not the deadline: a run cut short by its
    deadline still gives the rate it sustained while it ran.
    """
    if count <= 0 or end is None or end <= start:
        return None
    return count / (end - start)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1) of ``sorted_values`` by linear interpolation."""
    if not sorted_values:
        raise ValueError("no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile out of range: {q}")
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass(frozen=True)
class Latency:
    """Percentiles of one latency run; a quantile that falls among the missing is ``None``."""

    sent: int
    arrived: int
    p50: float | None
    p99: float | None
    #: How long the run waited for stragglers: a missing arrival took longer than this.
    waited: float


def latency_summary(latencies: Iterable[float], sent: int, waited: float) -> Latency:
    """p50/p99 over ``sent`` messages of which ``latencies`` arrived.

    The missing ones count as slower than every arrival (they had not arrived after
    ``waited`` seconds), so a system that falls behind cannot report a flattering p99.
    """
    values = sorted(latencies)
    if len(values) > sent:
        raise ValueError(f"{len(values)} arrivals for {sent} messages")

    def quantile(q: float) -> float | None:
        # Nearest rank among all sent messages; ranks past the arrivals are the missing ones.
        rank = max(1, math.ceil(q * sent))
        return values[rank - 1] if 0 < rank <= len(values) else None

    return Latency(sent, len(values), quantile(0.50), quantile(0.99), waited)


def command_calls(commandstats: Mapping[str, Any]) -> int:
    """Total commands in a redis-py ``INFO commandstats`` answer.

    redis-py gives ``{"cmdstat_get": {"calls": 3, ...}, ...}``; ``INFO`` itself and the
    ``CLIENT``/``HELLO`` of new connections are counted too, as the server does.
    """
    total = 0
    for name, entry in commandstats.items():
        if name.startswith("cmdstat_") and isinstance(entry, Mapping):
            total += int(entry.get("calls", 0))
    return total


def command_deltas(
    before: Mapping[str, Any], after: Mapping[str, Any], exclude: Sequence[str] = ()
) -> dict[str, int]:
    """Calls per command between two redis-py ``INFO commandstats`` answers.

    Keys lose their ``cmdstat_`` prefix (``{"xadd": 100}``); ``exclude`` names full keys
    (``cmdstat_info``: the bench's own). A command first seen in ``after`` counts from zero;
    commands with no new calls are left out.
    """
    out: dict[str, int] = {}
    for name, entry in after.items():
        if not name.startswith("cmdstat_") or name in exclude or not isinstance(entry, Mapping):
            continue
        old = before.get(name)
        calls = int(entry.get("calls", 0)) - (
            int(old.get("calls", 0)) if isinstance(old, Mapping) else 0
        )
        if calls:
            out[name.removeprefix("cmdstat_")] = calls
    return out


def redis_cpu_seconds(info_cpu: Mapping[str, Any]) -> float:
    """User plus system CPU seconds of a Redis process, from a redis-py ``INFO cpu`` answer."""
    return float(info_cpu["used_cpu_user"]) + float(info_cpu["used_cpu_sys"])


def per_unit(delta: float, units: int) -> float | None:
    """``delta`` divided by ``units`` (``None`` when nothing was done)."""
    return delta / units if units > 0 else None


def vm_rss_kib(status_text: str) -> int:
    """``VmRSS`` in KiB from the text of ``/proc/<pid>/status`` (0 if absent: a zombie)."""
    for line in status_text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pss_kib(rollup_text: str) -> int:
    """``Pss`` in KiB from the text of ``/proc/<pid>/smaps_rollup`` (0 if absent).

    The proportional set size counts a page shared by N processes as 1/N in each, so the
    PSS of a process tree adds up to the memory it really holds; summed RSS counts a shared
    page once per process that maps it.
    """
    for line in rollup_text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def cpu_ticks(stat_text: str) -> int:
    """``utime + stime`` in clock ticks from the text of ``/proc/<pid>/stat``.

    The command name (field 2) may hold spaces and parentheses, so fields are counted from
    after its last ``)``.
    """
    rest = stat_text[stat_text.rindex(")") + 2 :].split()
    # rest[0] is field 3 (state); utime and stime are fields 14 and 15.
    return int(rest[11]) + int(rest[12])


def parent_pid(stat_text: str) -> int:
    """The parent PID (field 4) from the text of ``/proc/<pid>/stat``."""
    return int(stat_text[stat_text.rindex(")") + 2 :].split()[1])


def descendants(root: int, parents: Mapping[int, int]) -> list[int]:
    """``root`` and every process below it, given a ``pid -> ppid`` map."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return sorted(found)


def cpu_delta(before: Mapping[int, int], after: Mapping[int, int]) -> int:
    """CPU ticks spent between two snapshots of ``pid -> ticks``.

    A process that appeared in between (a replaced pool child) counts from zero; one that
    vanished counts up to its last snapshot, which is all that can be known of it.
    """
    return sum(ticks - before.get(pid, 0) for pid, ticks in after.items())


def sized(rate_estimate: float | None, seconds: float, low: int, high: int) -> int:
    """How many units make a run of about ``seconds`` at ``rate_estimate`` units/s.

    A run is timed from its first send until its last unit is done, so it must be sized to
    what the system sustains: cut by a deadline, a staged pipeline (ingest all, then deliver)
    would show its ramp-up, not its rate. The warm-up gives the estimate.
    """
    if not rate_estimate or rate_estimate <= 0:
        return low
    return max(low, min(high, int(rate_estimate * seconds)))


def next_size(n: int, elapsed: float, complete: bool, seconds: float, high: int) -> int | None:
    """The size of the next run if the last (``n`` units in ``elapsed`` s) was too short.

    A pipeline that waits to fill batches finishes a small run in its latency, not at its
    rate, and the warm-up then underestimates it; so a run that took under 60 % of
    ``seconds`` is repeated bigger (``None``: the last run stands).
    """
    if not complete or n >= high or elapsed >= 0.6 * seconds:
        return None
    return min(high, max(2 * n, int(n * seconds / max(elapsed, 0.01))))
