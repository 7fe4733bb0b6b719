"""A first attempt of a batch, as the batch's phases fill it in."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from integrations.errors import HeraldError, RetryableError
from worker.fanout import Planned
from worker.ordering import arrival
from worker.outcomes import AttemptContext, Outcome, trips_breaker
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

    def trips_on(self, result: object) -> bool:
        """Whether ``result`` of its send counts against the endpoint's breaker."""
        return isinstance(result, RetryableError) and trips_breaker(result, self.prepared)

    def context(self, duration_ms: float) -> AttemptContext:
        """What is known of this first attempt when it ends."""
        planned = self.planned
        capture_for = None
        if planned.entity_id is not None and planned.live.event.spec.responseHeaders:
            capture_for = (planned.live.event.id, planned.entity_id)
        return AttemptContext(
            delivery_id=planned.delivery_id,
            attempts=0,
            attempts_base=0,
            started_at=self.started_at,
            duration_ms=duration_ms,
            prepared=self.prepared,
            capture_for=capture_for,
            notes=self.notes,
        )


def as_counted(
    outcomes: Iterable[tuple[FirstAttempt, Outcome]],
) -> Iterator[tuple[str, int | None, str | None, float | None]]:
    """A turn's outcomes as :func:`integrations.metrics.delivered_many` counts them."""
    for attempt, outcome in outcomes:
        record = outcome.record
        arrived = arrival(attempt.planned.order.sequence)
        yield outcome.result, record.http_status, record.error_class, arrived
