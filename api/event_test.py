"""Trying an integration event on a sample change before it goes live (beyond OpsRamp).

Kept out of the route (which only parses and answers): the answer says whether the event
matches, rule by rule, the request it would send (secrets masked) and every placeholder with
no value. Nothing is sent unless asked; a sent test is recorded in the activity log as one
(``TEST-`` id, ``errorClass`` ``test`` when it failed), and never retried.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from api.deps import Services
from integrations.errors import HeraldError
from integrations.models import MASK, EntityChange, is_credential_header
from integrations.rulebook import compile_criteria
from integrations.store import AttemptRecord, DeliveryStatus, StoredEvent
from notifiers.sender import Sender
from notifiers.urls import redact_url
from rules.fields import FieldView
from worker.fanout import entity_id
from worker.prepare import Prepared, build_request

#: The event id a test of an unsaved event is recorded under.
UNSAVED = "TEST"


def explain(event: StoredEvent, change: EntityChange) -> dict[str, Any]:
    """Whether ``event`` matches ``change``, and each rule's outcome (pure)."""
    matcher = compile_criteria(event.spec.filterCriteria, event.spec.entity)
    view = FieldView(change.data)
    rules = event.spec.filterCriteria.rules if event.spec.filterCriteria else []
    outcomes = matcher.explain(view)
    same_kind = change.entity == event.spec.entity and change.eventType == event.spec.eventType
    return {
        "matches": same_kind and matcher.matches(view),
        "entityAndEventType": same_kind,
        "matchType": event.spec.filterCriteria.matchType.value
        if event.spec.filterCriteria
        else None,
        "rules": [
            {"key": r.key, "operator": r.operator.value, "value": r.value, "matched": ok}
            for r, ok in zip(rules, outcomes, strict=True)
        ],
    }


def _request_view(prepared: Prepared) -> dict[str, Any]:
    request = prepared.request
    return {
        "method": request.method.value,
        "url": redact_url(request.url),
        "headers": [
            {"key": k, "value": MASK if is_credential_header(k) else v} for k, v in request.headers
        ],
        "authType": request.notifier.authType.value,
        "body": request.body,
    }


def run_test(
    svc: Services, event: StoredEvent, change: EntityChange, *, send: bool
) -> dict[str, Any]:
    """The test's answer: match, request, missing placeholders, and the send if asked."""
    answer = explain(event, change)
    delivery_id = f"TEST-{uuid.uuid4()}"
    ent_id = entity_id(change.data)
    captured = svc.store.captured_for_entity(event, ent_id) if ent_id is not None else {}
    try:
        prepared = build_request(
            delivery_id=delivery_id,
            event=event,
            entity=change.entity,
            data=change.data,
            extra=captured,
        )
    except HeraldError as exc:
        return answer | {"request": None, "error": exc.reason, "missing": [], "sent": None}
    answer |= {
        "request": _request_view(prepared),
        "error": None,
        "missing": list(prepared.rendered.warnings),
        "sent": None,
    }
    if send:
        answer["sent"] = _send(svc, event, change, prepared, delivery_id)
    return answer


def _send(
    svc: Services, event: StoredEvent, change: EntityChange, prepared: Prepared, delivery_id: str
) -> dict[str, Any]:
    """Send the test once, and record it in the activity log as a test."""
    started, t0 = datetime.now(UTC), time.perf_counter()
    sender = Sender(svc.settings, svc.redis)
    http_status: int | None
    excerpt: str | None
    try:
        response = sender.send(prepared.request)
        status, http_status, excerpt = DeliveryStatus.SUCCESS, response.http_status, None
        reason, error_class = f"test: delivered: HTTP {response.http_status}", None
        excerpt = response.body_excerpt
    except HeraldError as exc:
        status, http_status, excerpt = DeliveryStatus.FAILED, exc.http_status, exc.response_excerpt
        reason, error_class = f"test: {exc.reason}", "test"
    finally:
        sender.close()
    svc.store.create_delivery(
        delivery_id=delivery_id,
        tenant_id=event.tenant_id,
        message=change.model_dump_json(),
        event_id=event.id,
        installed_id=event.installed_id,
        message_id=change.id,
        entity=change.entity.value,
        event_type=change.eventType.value,
        entity_id=entity_id(change.data),
    )
    svc.store.record_attempt(
        AttemptRecord(
            delivery_id=delivery_id,
            started_at=started,
            duration_ms=(time.perf_counter() - t0) * 1000,
            outcome="success" if status == DeliveryStatus.SUCCESS else "permanent",
            status=status,
            status_message=reason,
            http_status=http_status,
            error_class=error_class,
            request_url=redact_url(prepared.request.url),
            req_payload=prepared.request.body,
            res_payload=excerpt,
            warnings=tuple(prepared.rendered.warnings),
        )
    )
    return {
        "activityId": delivery_id,
        "status": str(status),
        "httpStatus": http_status,
        "reason": reason,
        "response": json.loads(excerpt) if _is_json(excerpt) else excerpt,
    }


def _is_json(text: str | None) -> bool:
    if not text:
        return False
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
