"""Herald's Celery tasks: thin wrappers over :mod:`worker.pipeline` and :mod:`worker.delivery`."""

from __future__ import annotations

import logging

from worker.app import app
from worker.pipeline import fan_out
from worker.runtime import get_runtime

log = logging.getLogger(__name__)


@app.task(name="herald.ingest")
def ingest(raw: str) -> int:
    """Validate one entity-change message and dispatch a delivery per matching event."""
    rt = get_runtime()
    result = fan_out(rt.store, rt.matchers, raw, dedupe_window=rt.settings.dedupe_window)
    for delivery_id in result.deliveries:
        deliver.apply_async(args=(delivery_id, 0))
    return len(result.deliveries)


# The soft limit bounds one attempt (token request + connect + read, and rendering, which the
# sandbox cannot bound itself); the deliverer records a hit as a retryable internal error.
@app.task(name="herald.deliver", soft_time_limit=150, time_limit=180)
def deliver(delivery_id: str, expected_attempts: int | None = None) -> str:
    """Make one attempt at a delivery; retries go through the durable schedule."""
    result = get_runtime().deliverer.deliver(delivery_id, expected_attempts)
    log.info("delivery %s: %s %s", delivery_id, result.outcome, result.detail)
    return result.outcome
