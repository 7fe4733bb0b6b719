"""A first attempt of a batch, as the batch's phases fill it in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from integrations.errors import HeraldError
from worker.fanout import Planned
from worker.prepare import Prepared


@dataclass
class FirstAttempt:
    """One delivery's first attempt: what it is, what was built, how it failed."""

    planned: Planned
    started_at: datetime
    t0: float
    prepared: Prepared | None = None
    breaker_key: str | None = None
    error: HeraldError | None = None
    #: Notes for its row (:class:`~worker.outcomes.AttemptContext`).
    notes: tuple[str, ...] = ()
