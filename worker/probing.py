"""Which of a batch's requests go at once, and which wait behind a probe of their endpoint.

A batch sends its first attempts together. Against an endpoint that this process has seen
answer recently, that is right: it is alive. Against one it knows nothing of, or one that
has been failing, sending a whole batch at once would spend every attempt on an outage that
the circuit breaker exists to absorb. So such an endpoint gets a probe wave first, as many
requests as its breaker has failures left before it opens; the rest follow only if a probe
succeeds, or if the failures did not open the breaker. Pure apart from :class:`RecentSuccess`,
a bounded memory with an injectable clock.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


class RecentSuccess:
    """Endpoints this process saw answer 2xx within ``horizon`` seconds (bounded, LRU)."""

    def __init__(
        self,
        horizon: float = 30.0,
        *,
        max_size: int = 10_000,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._horizon = horizon
        self._max = max_size
        self._now = now
        self._seen: OrderedDict[str, float] = OrderedDict()

    def note(self, endpoint: str) -> None:
        """``endpoint`` just answered 2xx."""
        self._seen[endpoint] = self._now()
        self._seen.move_to_end(endpoint)
        while len(self._seen) > self._max:
            self._seen.popitem(last=False)

    def __contains__(self, endpoint: object) -> bool:
        seen = self._seen.get(endpoint) if isinstance(endpoint, str) else None
        return seen is not None and self._now() - seen <= self._horizon


def split_for_probing(
    items: Sequence[T],
    key: Callable[[T], str],
    *,
    is_open: Callable[[str], bool],
    healthy: Callable[[str], bool],
    probes: Callable[[str], int],
) -> tuple[list[T], dict[str, list[T]], list[T]]:
    """``(send now, held behind each endpoint's probes, deferred)``, order kept.

    Deferred: the endpoint's breaker is open. Sent now: everything for a healthy endpoint, and
    the first ``probes(endpoint)`` (at least one) for any other; the rest of those are held.
    """
    now: list[T] = []
    held: dict[str, list[T]] = {}
    deferred: list[T] = []
    launched: dict[str, int] = {}
    for item in items:
        endpoint = key(item)
        if is_open(endpoint):
            deferred.append(item)
        elif healthy(endpoint) or launched.get(endpoint, 0) < max(1, probes(endpoint)):
            launched[endpoint] = launched.get(endpoint, 0) + 1
            now.append(item)
        else:
            held.setdefault(endpoint, []).append(item)
    return now, held, deferred
