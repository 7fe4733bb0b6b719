"""Response shapes, following the seed's samples (``shared/seed/create-integration-event.txt``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from integrations.models import MASK, Header, is_credential_header
from integrations.store import Delivery, InstalledIntegration, StoredEvent


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _epoch_ms(value: datetime | None) -> int | None:
    return int(value.timestamp() * 1000) if value is not None else None


def installed_view(inst: InstalledIntegration) -> dict[str, Any]:
    """An installed integration (``id`` = ``INTG-<uuid>``), with the fields it keeps."""
    view: dict[str, Any] = dict(inst.extra or {})
    view.update(
        {
            "id": inst.id,
            "displayName": inst.display_name,
            "integration": {"id": inst.intg_id},
            "state": str(inst.state),
            "createdTime": _time(inst.created_at),
            "updatedTime": _time(inst.updated_at or inst.created_at),
        }
    )
    if inst.state_reason is not None:
        view["uninstallReason"] = inst.state_reason
    if inst.base_notifier is not None:
        view["notifier"] = inst.base_notifier.public()
        # Where OpsRamp echoes it, with its type and grant; never with a secret.
        shown = {**inst.base_notifier.public(), "type": inst.base_notifier.type.value}
        if inst.base_notifier.grantType is not None:
            shown["grantType"] = inst.base_notifier.grantType.value
        outbound = dict(view.get("outboundConfig") or {})
        outbound["baseNotifier"] = shown
        view["outboundConfig"] = outbound
    return view


def _headers_view(headers: Sequence[Header]) -> list[dict[str, str]]:
    """Request headers as the API shows them: a credential's value masked."""
    return [
        {"key": h.key, "value": MASK if is_credential_header(h.key) else h.value} for h in headers
    ]


def _dependent_view(spec: Any) -> dict[str, Any] | None:
    dep = spec.depEvent
    if dep is None:
        return None
    return {
        "depEndPointURI": dep.depEndPointURI,
        "thirdPartyEventType": dep.thirdPartyEventType.value,
        "headers": _headers_view(dep.headers),
        "eventPayload": dep.template,
        "responseHeaders": [{"key": h.key, "value": h.value} for h in dep.responseHeaders],
    }


def event_view(event: StoredEvent) -> dict[str, Any]:
    """An integration event as the seed's sample responses show it, never with a secret.

    The seed echoes ``notifier.baseURI`` as the URL the event posts to (its samples show the
    ``endPointURI``), so that is what it holds here; ``endPointURI`` is echoed on its own too.
    """
    spec = event.spec
    view: dict[str, Any] = {
        "id": event.id,
        "name": spec.name,
        "entity": spec.entity.value,
        "eventType": spec.eventType.value,
    }
    if spec.filterCriteria is not None:
        fc = spec.filterCriteria
        view["filterCriteria"] = {
            "id": fc.id,
            "name": fc.name or spec.name,
            "matchType": fc.matchType.value,
            "rules": [
                {
                    "id": r.id,
                    "key": r.key,
                    "operator": r.operator.value,
                    "value": r.value,
                    "resourceType": (r.resourceType or spec.entity).value,
                }
                for r in fc.rules
            ],
            "actions": [],
        }
    view["useBaseNotifier"] = spec.useBaseNotifier
    if spec.notifier is not None:
        shown = spec.notifier.public()
        shown["baseURI"] = spec.endPointURI or spec.notifier.baseURI
        shown["type"] = spec.notifier.type.value
        if spec.notifier.grantType is not None:
            shown["grantType"] = spec.notifier.grantType.value
        view["notifier"] = shown
    view.update(
        {
            "endPointURI": spec.endPointURI,
            "thirdPartyEventType": spec.thirdPartyEventType.value,
            "headers": _headers_view(spec.headers),
            "eventPayload": spec.template,
            "responseHeaders": [{"key": h.key, "value": h.value} for h in spec.responseHeaders],
            "ordering": spec.ordering.value,
            "depEvent": _dependent_view(spec),
            "active": event.active,
            "disabledReason": event.disabled_reason,
            "installedIntgId": event.installed_id,
            "createdTime": _time(event.created_at),
            "updatedTime": _time(event.updated_at),
        }
    )
    return view


def activity_view(d: Delivery) -> dict[str, Any]:
    """A row of the activity log, shaped like OpsRamp's (``intgMode`` = ``OUTBOUND``)."""
    return {
        "id": d.id,
        "status": d.status,
        "statusMessage": d.status_message,
        "intgMode": "OUTBOUND",
        "requestUrl": d.request_url,
        "reqPayload": d.req_payload,
        "resPayload": d.res_payload,
        "httpStatus": d.http_status,
        "errorClass": d.error_class,
        # OpsRamp gives epoch milliseconds; Herald's ISO time is beside it.
        "processedTime": _epoch_ms(d.processed_time),
        "processedTimeIso": _time(d.processed_time),
        "createdTime": _time(d.created_at),
        "nextAttemptTime": _time(d.next_attempt_at),
        "eventId": d.event_id,
        "installedIntgId": d.installed_id,
        "messageId": d.message_id,
        "entity": d.entity,
        "eventType": d.event_type,
        "entityId": d.entity_id,
        "attempts": d.attempts,
        # The delivery of the same ticket this one waits for (WAITING), or last waited for.
        "waitsOn": d.waits_on,
        "warnings": d.warnings,
        "captured": d.captured,
        "attemptLog": [
            {
                "attempt": a.number,
                "time": _time(a.started_at),
                "durationMs": round(a.duration_ms, 1),
                "outcome": a.outcome,
                "httpStatus": a.http_status,
                "errorClass": a.error_class,
                "reason": a.reason,
                "responseExcerpt": a.response_excerpt,
            }
            for a in d.attempt_log
        ],
        # A dead letter keeps the raw message so an operator can see what was rejected.
        "message": d.message if d.event_id is None else None,
    }
