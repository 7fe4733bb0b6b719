"""Hot state of a worker process: its tenants' events, loaded, decrypted and compiled once.

Matching a change asks the store only which active events are candidates, with their version
(``updated_at``): one indexed query per (tenant, entity, event type) in a batch. An event is
loaded, decrypted, validated and compiled only when its version is new to this process, and
kept in a bounded LRU that evicts the least recently used entry (never clears itself whole, so
a working set larger than the cache degrades gently instead of thrashing). Every write that
changes what an event matches or sends bumps its ``updated_at`` (the store does so, base
notifier changes included), so a change reaches every worker at its next batch.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from integrations.enums import Entity, EventType
from integrations.errors import HeraldError
from integrations.placeholders import BUILTINS
from integrations.rulebook import compile_criteria
from integrations.store import Store, StoredEvent
from rules import url
from rules.matcher import Matcher
from rules.render import referenced_names

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveEvent:
    """An event ready to match and render."""

    event: StoredEvent
    matcher: Matcher
    #: Whether its templates name values outside the entity (captured response values), so
    #: a delivery must read the entity's captures first; most events need none.
    needs_captures: bool


@dataclass(frozen=True)
class BrokenEvent:
    """A stored event that no longer loads or compiles: its deliveries fail visibly."""

    event_id: str
    reason: str


Candidate = LiveEvent | BrokenEvent
CandidateKey = tuple[str, Entity, EventType]


def compile_event(event: StoredEvent) -> LiveEvent:
    """Compile an event's filter criteria and inspect its templates (once per version)."""
    matcher = compile_criteria(event.spec.filterCriteria, event.spec.entity)
    token = event.spec.entity.token
    names = set(referenced_names(event.spec.template, event.spec.entity))
    if event.spec.endPointURI:
        names |= set(url.referenced_names(event.spec.endPointURI, event.spec.entity))
    names.discard(token)
    names -= BUILTINS.keys()  # given to every render, never read from the store
    return LiveEvent(event=event, matcher=matcher, needs_captures=bool(names))


class EventCache:
    """Compiled events by id and version; bounded, least recently used evicted first."""

    def __init__(self, store: Store, *, max_size: int = 20_000) -> None:
        self._store = store
        self._max = max_size
        self._live: OrderedDict[str, tuple[datetime, Candidate]] = OrderedDict()
        # Tenants are never deleted, so a tenant once seen stays known; one not seen yet is
        # asked for again each batch (it may have been created since).
        self._tenants: OrderedDict[str, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._live)

    def candidates(self, keys: Iterable[CandidateKey]) -> dict[CandidateKey, list[Candidate]]:
        """The active events each (tenant, entity, event type) may match, compiled."""
        wanted = {key: self._store.candidate_keys(*key) for key in set(keys)}
        stale = {
            event_id: updated_at
            for versions in wanted.values()
            for event_id, updated_at in versions
            if self._fresh(event_id, updated_at) is None
        }
        # Kept aside as well as cached: a working set larger than the cache is still matched
        # whole, even though the cache keeps only its most recently used part.
        loaded = self._load(stale) if stale else {}
        return {
            key: [
                hit
                for event_id, updated_at in versions
                if (hit := loaded.get(event_id) or self._fresh(event_id, updated_at))
            ]
            for key, versions in wanted.items()
        }

    def known_tenants(self, client_ids: Iterable[str]) -> set[str]:
        """Which of ``client_ids`` exist; asks the store only about tenants not seen yet."""
        wanted = set(client_ids)
        unseen = wanted.difference(self._tenants)
        for client_id in self._store.known_tenants(unseen) if unseen else ():
            self._tenants[client_id] = None
        known = wanted.intersection(self._tenants)
        for client_id in known:
            self._tenants.move_to_end(client_id)
        while len(self._tenants) > self._max:
            self._tenants.popitem(last=False)
        return known

    def _fresh(self, event_id: str, updated_at: datetime) -> Candidate | None:
        hit = self._live.get(event_id)
        if hit is None or hit[0] != updated_at:
            return None
        self._live.move_to_end(event_id)
        return hit[1]

    def _load(self, stale: dict[str, datetime]) -> dict[str, Candidate]:
        loaded: dict[str, Candidate] = {}
        try:
            events = self._store.load_events(stale)
        except (HeraldError, ValidationError):
            # One event that no longer loads (a stricter model, say) must not take its
            # neighbours down: load them one by one to find it.
            events = {}
            for event_id in stale:
                try:
                    if (event := self._store.load_event(event_id)) is not None:
                        events[event_id] = event
                except (HeraldError, ValidationError) as exc:
                    loaded[event_id] = _broken(event_id, exc)
        for event_id, event in events.items():
            try:
                loaded[event_id] = compile_event(event)
            except Exception as exc:  # any rule or template the engine now rejects
                loaded[event_id] = _broken(event_id, exc)
        for event_id, entry in loaded.items():
            self._put(event_id, stale[event_id], entry)
        return loaded

    def _put(self, event_id: str, updated_at: datetime, entry: Candidate) -> None:
        self._live[event_id] = (updated_at, entry)
        self._live.move_to_end(event_id)
        while len(self._live) > self._max:
            self._live.popitem(last=False)


def _broken(event_id: str, exc: Exception) -> BrokenEvent:
    # A stored event the engine now rejects must not block the others, and must not fail
    # silently: its deliveries are FAILED rows naming it and the reason.
    log.exception("event %s could not be evaluated", event_id)
    return BrokenEvent(event_id, f"integration event {event_id} could not be evaluated: {exc}")
