"""What a process tree costs, read from ``/proc``: resident memory and CPU time.

A worker node is its main process plus its pool children; both are counted, as the issue's
memory target is "all worker processes together".
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

from bench.stats import cpu_ticks, descendants, parent_pid, pss_kib, vm_rss_kib

PROC = Path("/proc")
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None  # the process exited between listing and reading


def tree(root: int) -> list[int]:
    """``root`` and all its descendants now."""
    parents: dict[int, int] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (text := _read(entry / "stat")) is not None:
            parents[int(entry.name)] = parent_pid(text)
    return descendants(root, parents) if root in parents else []


def rss_bytes(root: int) -> int:
    """Sum of ``VmRSS`` over the tree of ``root``."""
    total = 0
    for pid in tree(root):
        if (text := _read(PROC / str(pid) / "status")) is not None:
            total += vm_rss_kib(text) * 1024
    return total


def pss_bytes(root: int) -> int:
    """Sum of ``Pss`` over the tree of ``root``: its memory with shared pages counted once."""
    total = 0
    for pid in tree(root):
        if (text := _read(PROC / str(pid) / "smaps_rollup")) is not None:
            total += pss_kib(text) * 1024
    return total


def cpu_snapshot(root: int) -> dict[int, int]:
    """``pid -> utime+stime`` ticks for the tree of ``root``."""
    snap = {}
    for pid in tree(root):
        if (text := _read(PROC / str(pid) / "stat")) is not None:
            snap[pid] = cpu_ticks(text)
    return snap


class RssSampler:
    """Samples the tree's RSS and PSS on a thread while a measure runs; keeps the peaks.

    ``with RssSampler(pid) as s: ...`` then ``s.peak`` and ``s.peak_pss`` (bytes).
    """

    def __init__(self, root: int, interval: float = 0.25) -> None:
        self.root = root
        self.interval = interval
        self.peak = 0
        self.peak_pss = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            with contextlib.suppress(OSError):
                self.peak = max(self.peak, rss_bytes(self.root))
                self.peak_pss = max(self.peak_pss, pss_bytes(self.root))
                self.samples += 1
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
