"""A batch's failures, counted: against endpoints' breakers and events' failure streaks.

An event whose every attempt failed for too long is disabled here, and the batch's failures
of it are recorded as FAILED with that reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from integrations.config import Settings
from integrations.errors import HeraldError, RetryableError
from integrations.store import Store
from worker.first_attempt import FirstAttempt
from worker.health import BreakerState, EndpointHealth
from worker.outcomes import AttemptContext, Outcome, failed, streak_gap
from worker.outcomes import trips_breaker as _trips

log = logging.getLogger(__name__)


class FailureStreaks:
    """Counts a batch's failures; one per batch runner."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        health: EndpointHealth,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.health = health
        self.now = now

    def note(
        self,
        outcomes: list[tuple[FirstAttempt, Outcome]],
        states: dict[str, BreakerState],
        counted: dict[str, int],
        context: Callable[[FirstAttempt, float], AttemptContext],
    ) -> list[tuple[FirstAttempt, Outcome]]:
        """Count failures against breakers and events (failures only); auto-disable.

        ``counted``: failures of probes, already counted before the rest was sent."""
        per_endpoint: dict[str, int] = {}
        failing_events: dict[str, HeraldError] = {}
        # An event that also succeeded in this batch is not failing all along: its failures
        # here neither extend nor start a streak (the success ends it).
        succeeding = {a.planned.live.event.id for a, o in outcomes if o.result == "sent"}
        for attempt, outcome in outcomes:
            if outcome.result == "sent" or attempt.error is None:
                continue
            if attempt.planned.live.event.id not in succeeding:
                failing_events[attempt.planned.live.event.id] = attempt.error
            if isinstance(attempt.error, RetryableError) and _trips(
                attempt.error, attempt.prepared
            ):
                key = attempt.breaker_key or ""
                per_endpoint[key] = per_endpoint.get(key, 0) + 1
        for endpoint, count in per_endpoint.items():
            if count > counted.get(endpoint, 0):
                states[endpoint] = self.health.record_failure(
                    endpoint, self.now(), count=count - counted.get(endpoint, 0)
                )
        disabled: dict[str, str] = {}
        for event_id, error in failing_events.items():
            reason = self.health.disable_reason(
                event_id,
                error.reason,
                self.now(),
                gap=streak_gap(self.settings),
                disable_after=self.settings.disable_after,
            )
            if reason is not None:
                self.store.set_event_active(event_id, False, reason)
                log.warning("event %s %s", event_id, reason)
                disabled[event_id] = reason
        if not disabled:
            return outcomes
        return [
            (a, failed(context(a, o.record.duration_ms), a.error, reason=reason))
            if a.error is not None and (reason := disabled.get(a.planned.live.event.id))
            else (a, o)
            for a, o in outcomes
        ]
