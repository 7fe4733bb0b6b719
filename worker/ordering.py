"""Per-ticket ordering, the pure part: keys, sequences, and who waits for whom.

Deliveries that share a *ticket*, (tenant, installed integration, entity, entity id), are
sent in the order of their changes, so an UPDATE never overtakes its CREATE and a later
UPDATE never lands before an earlier one. A delivery waits (``WAITING``, no attempt spent,
no worker slot held) while an earlier delivery of its ticket is unfinished; it goes as soon
as that one succeeds or ends FAILED.

The order is stream order: a change's *sequence* is its stream entry id (milliseconds, then
a counter), with ``occurredAt`` breaking ties between changes that reached the stream in the
same millisecond (two producers). A change that did not come from the stream (a replayed
dead letter, a message retried after an outage) takes the time it is processed.

Why this is free of races between processes and nodes (the I/O lives in
:mod:`worker.gate`): a batch commits its deliveries, and only then acknowledges and deletes
its stream entries. The stream therefore holds exactly the entries read and not yet stored
(and later ones not yet read). Before a delivery is sent, the stream is read for an earlier
entry of the same entity (not yet stored: wait for it), and only then the store for an
earlier unfinished delivery of the ticket. An earlier batch that is not in the stream at the
first read had committed, so the second one sees its rows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from integrations.enums import Entity
from integrations.store.records import Unfinished
from rules.fields import MISSING, resolve

#: A waiting delivery is looked at again after this long even if no one wakes it (a worker
#: that died between storing the earlier delivery's outcome and waking this one).
RECHECK = 60.0
#: The same, while the earlier change is still being stored by another batch (milliseconds).
RECHECK_UNSTORED = 1.0
#: The key of :func:`hold`'s ``unstored`` map that stands for every entity: the stream had
#: more unstored earlier entries than were read, so anything later may be related.
ANY_ENTITY = "*"
#: Deliveries of one ticket sent one after the other within one batch; later ones wait and
#: go through the retry path, so one busy ticket cannot hold a batch's slot for long.
MAX_TURNS = 8


def ticket_of(data: dict[str, object]) -> str | None:
    """The entity's own id (``id`` or ``uniqueId``, any case): what a ticket is keyed by."""
    for key in ("id", "uniqueId"):
        value = resolve(data, key)
        if value is not MISSING and value is not None and value != "":
            return str(value)
    return None


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "replace")).hexdigest()[:32]


def ordering_key(tenant: str, installed: str, entity: str, entity_id: str | None) -> str | None:
    """The key of a ticket, or ``None`` when the entity has no id to order by."""
    if entity_id is None:
        return None
    return "T-" + _digest(tenant, installed, entity, entity_id)


def entity_key(tenant: str, entity: str, entity_id: str) -> str:
    """An entity across all of a tenant's installed integrations: what an unstored stream
    entry is compared by (which integrations it matches is not known before it is stored)."""
    return _digest(tenant, entity, entity_id)


def _entry_parts(entry_id: str) -> tuple[int, int]:
    ms, _, n = entry_id.partition("-")
    return int(ms), int(n or 0)


def sequence_of(entry_id: str, occurred_at: datetime) -> str:
    """A change's place in stream order, as a string that sorts like it."""
    ms, n = _entry_parts(entry_id)
    micros = max(0, int(occurred_at.astimezone(UTC).timestamp() * 1_000_000))
    return f"{ms:015d}.{micros:020d}.{n:010d}"


def sequence_now(now: float, occurred_at: datetime) -> str:
    """The sequence of a change processed at ``now`` that has no stream entry."""
    return sequence_of(f"{int(now * 1000)}-0", occurred_at)


def arrival(sequence: str | None) -> float | None:
    """When the change of ``sequence`` reached the stream (epoch seconds)."""
    return int(sequence.split(".", 1)[0]) / 1000 if sequence else None


def entry_bound(sequence: str) -> str:
    """The stream entry id of ``sequence``: the entries before it are the earlier ones."""
    # A dependent call's sequence is its first call's plus ".dep" (worker.dependent).
    ms, _, n = sequence.split(".")[:3]
    return f"{int(ms)}-{int(n)}"


def unstored_entity(entry_id: str, raw: str) -> tuple[str, str] | None:
    """``(entity key, sequence)`` of a stream entry not yet stored, or ``None`` if it names
    no entity with an id (it creates no ordered delivery: nothing waits for it)."""
    try:
        doc = json.loads(raw)
        data, tenant, entity = doc["data"], doc["tenantId"], doc["entity"]
        occurred = datetime.fromisoformat(str(doc["occurredAt"]).replace("Z", "+00:00"))
        if occurred.tzinfo is None:
            occurred = occurred.replace(tzinfo=UTC)
    except (ValueError, TypeError, KeyError, RecursionError):
        return None
    if not isinstance(data, dict) or not isinstance(tenant, str) or not isinstance(entity, str):
        return None
    ticket = ticket_of(data)
    if ticket is None:
        return None
    return entity_key(tenant, _fold(entity), ticket), sequence_of(entry_id, occurred)


#: The canonical spellings, which nearly every producer uses: no parse for them.
_ENTITIES = frozenset(e.value for e in Entity)


def _fold(entity: str) -> str:
    if entity in _ENTITIES:
        return entity
    try:
        return Entity.parse(entity).value
    except ValueError:
        return entity


@dataclass(frozen=True)
class Ordered:
    """A delivery about to be sent, as the ordering sees it."""

    id: str
    key: str | None
    sequence: str | None
    #: Whether it waits for earlier deliveries of its ticket.
    waits: bool
    #: :func:`entity_key` of its entity, for the unstored entries.
    entity: str | None = None


@dataclass(frozen=True)
class Wait:
    """Why a delivery is held, and when it is looked at again without a wake-up."""

    id: str
    waits_on: str | None
    reason: str
    recheck: float


def hold(
    item: Ordered,
    unfinished: Sequence[Unfinished],
    unstored: dict[str, str],
    *,
    now: float,
) -> Wait | None:
    """Whether ``item`` must wait: for an earlier change of its entity that is still being
    stored (``unstored``: entity key -> earliest such sequence), or for the latest earlier
    unfinished delivery of its ticket (``unfinished``: the ticket's, any order)."""
    if not item.waits or item.key is None or item.sequence is None:
        return None
    firsts = [unstored.get(item.entity or ""), unstored.get(ANY_ENTITY)]
    if any(f is not None and f < item.sequence for f in firsts):
        return Wait(
            item.id,
            None,
            "waiting: an earlier change of this entity is still being stored",
            RECHECK_UNSTORED,
        )
    earlier = [
        u
        for u in unfinished
        if u.key == item.key and u.id != item.id and u.sequence < item.sequence
    ]
    if not earlier:
        return None
    blocker = max(earlier, key=lambda u: u.sequence)
    recheck = RECHECK
    if blocker.due is not None:
        recheck = max(RECHECK, blocker.due - now + RECHECK / 2)
    return Wait(
        item.id,
        blocker.id,
        f"waiting for delivery {blocker.id} ({blocker.status}), an earlier change of this ticket",
        recheck,
    )


def next_up(unfinished: Sequence[Unfinished]) -> list[str]:
    """The WAITING deliveries to wake: for each ticket, its earliest unfinished delivery,
    when that one waits (the one it waited for has finished)."""
    first: dict[str, Unfinished] = {}
    for u in unfinished:
        if u.key not in first or u.sequence < first[u.key].sequence:
            first[u.key] = u
    return sorted(u.id for u in first.values() if u.status == "WAITING")


def turns(items: Sequence[Ordered]) -> list[int]:
    """The turn of each of a batch's deliveries (same order, which is stream order): one
    ticket's changes go one turn after another, the deliveries of one change (to several
    events of the ticket's integration) together, and unrelated ones all in turn 0."""
    # Per ticket: the latest sequence seen, the highest turn among its deliveries, and the
    # highest turn among the deliveries of earlier sequences (-1: none).
    state: dict[str, tuple[str, int, int]] = {}
    out: list[int] = []
    for item in items:
        if item.key is None or item.sequence is None:
            out.append(0)
            continue
        sequence, current, before = state.get(item.key, (item.sequence, -1, -1))
        if item.sequence != sequence:
            sequence, current, before = item.sequence, -1, max(before, current)
        turn = before + 1 if item.waits and before >= 0 else 0
        state[item.key] = (sequence, max(current, turn), before)
        out.append(turn)
    return out


def failed_note(delivery_id: str, reason: str) -> str:
    """The note a delivery carries when an earlier one of its ticket ended FAILED."""
    return f"waited for delivery {delivery_id}, which failed: {reason}"


def earlier_failed_note(delivery_id: str, reason: str) -> str:
    """The note of a delivery that could not be built after an earlier one of its ticket
    failed (the value that one would have captured is missing, say)."""
    return f"an earlier delivery of this ticket, {delivery_id}, failed: {reason}"


def behind(
    item: Ordered,
    earlier: Sequence[Ordered],
    ended: dict[str, str | None],
    dues: dict[str, float],
    *,
    now: float,
) -> tuple[Wait | None, tuple[str, ...]]:
    """Whether a batch's delivery waits for an earlier one of the same batch and ticket.

    ``earlier``: those deliveries, in order; ``ended``: the batch's finished deliveries,
    with their failure reason (``None`` for a success); ``dues``: when the unfinished ones
    are due again. Also the notes of those that failed.
    """
    if not item.waits:
        return None, ()
    notes = tuple(failed_note(e.id, why) for e in earlier if (why := ended.get(e.id)) is not None)
    unfinished = [e for e in earlier if e.id not in ended]
    if not unfinished:
        return None, notes
    blocker = unfinished[-1].id
    recheck = RECHECK
    if (due := dues.get(blocker)) is not None:
        recheck = max(RECHECK, due - now + RECHECK / 2)
    reason = f"waiting for delivery {blocker}, an earlier change of this ticket"
    return Wait(item.id, blocker, reason, recheck), notes


class BatchTurns:
    """A batch's own deliveries turn by turn: which go, which wait, and for what.

    Pure bookkeeping; the batch sends each turn's deliveries and reports their outcomes.
    """

    def __init__(self, items: Sequence[Ordered], held: dict[str, Wait]) -> None:
        #: Deliveries that wait instead of going (the store's or the stream's reasons first).
        self.waits: dict[str, Wait] = dict(held)
        #: Finished deliveries of the batch, with their failure reason (``None``: success).
        self.ended: dict[str, str | None] = {}
        #: When each retrying delivery of the batch is due again.
        self.dues: dict[str, float] = {}
        #: Finished deliveries whose dependent call (``depEvent``) is still to be made.
        self.follow: dict[str, str] = {}
        self._earlier: dict[str, list[Ordered]] = {}
        seen: dict[str, list[Ordered]] = {}
        for item in items:
            if item.key is not None:
                self._earlier[item.id] = [
                    e for e in seen.get(item.key, ()) if (e.sequence or "") < (item.sequence or "")
                ]
                seen.setdefault(item.key, []).append(item)

    def admit(self, item: Ordered, turn: int, *, now: float) -> tuple[bool, tuple[str, ...]]:
        """Whether ``item`` goes in ``turn``, and the notes its row gets."""
        if item.id in self.waits:
            return False, ()
        earlier = self._earlier.get(item.id, [])
        # One whose dependent call is still to be made is not finished: the call stands in
        # for it.
        stand_in = [
            Ordered(self.follow[e.id], e.key, e.sequence, e.waits) if e.id in self.follow else e
            for e in earlier
        ]
        wait, notes = behind(item, stand_in, self.ended, self.dues, now=now)
        if wait is None and turn >= MAX_TURNS and earlier:
            # Its turn would come too late in this batch: it waits outside it, and is woken
            # once the earlier ones are done.
            reason = f"waiting for delivery {earlier[-1].id}, an earlier change of this ticket"
            wait = Wait(item.id, earlier[-1].id, reason, RECHECK)
        if wait is not None:
            self.waits[item.id] = wait
            return False, ()
        return True, notes

    def followed_by(self, delivery_id: str, dependent: str) -> None:
        """Note that a finished delivery's dependent call is still to be made."""
        self.follow[delivery_id] = dependent

    def ended_with(self, delivery_id: str, failure: str | None, due: float | None) -> None:
        """Note an outcome: finished (``due`` None; ``failure`` its reason if it failed),
        or due again at ``due``."""
        if due is None:
            self.ended[delivery_id] = failure
        else:
            self.dues[delivery_id] = due
