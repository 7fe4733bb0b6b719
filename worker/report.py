"""What a batch reports: its counts, and where its time went."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from integrations.store import Delivery


@dataclass(frozen=True)
class BatchReport:
    """What one batch did."""

    messages: int
    created: int
    sent: int
    retrying: int
    failed: int
    deferred: int
    dead_letters: int
    #: Deliveries an interrupted earlier run left PENDING: the caller dispatches them.
    redelivered: tuple[Delivery, ...]
    #: Deliveries held behind earlier ones of their ticket (:mod:`worker.ordering`).
    waiting: int = 0
    #: Wall time of each phase (ms), for the task's log line: where a slow batch waited.
    phases_ms: dict[str, float] = field(default_factory=dict)


class Phases:
    """Wall time per phase of a batch, for its log line."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        """End the phase ``name`` now."""
        now = time.perf_counter()
        self.phases[name] = round((now - self._last) * 1000, 1)
        self._last = now
