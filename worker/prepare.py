"""Turning one delivery of one change into the request to send: render, resolve, build.

Shared by the first attempt (made in the batch that fanned the change out) and by every retry
(made by the ``herald.deliver`` task), so both send exactly the same request. Pure apart from
what the caller passes in: the captured values are read by the caller, and only when the
event's templates refer to names outside the entity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from integrations.enums import Entity
from integrations.errors import HeraldError, NotifierMisconfigured, PermanentError
from integrations.models import Notifier
from integrations.placeholders import builtin_values
from integrations.rulebook import render, render_url
from integrations.store import StoredEvent
from notifiers.protocols import for_notifier
from notifiers.sender import OutboundRequest
from notifiers.urls import resolve_url
from rules.render import Rendered, detect_syntax

BASE_NOTIFIER_MISSING = (
    "useBaseNotifier is true but the installed integration has no base notifier; "
    "set one with POST .../integrations/installed/{id}/notifier"
)


@dataclass(frozen=True)
class Prepared:
    """A delivery ready to send, and what rendering noticed."""

    request: OutboundRequest
    rendered: Rendered


def notifier_for(event: StoredEvent) -> Notifier:
    """The event's own notifier, or its installed integration's base notifier.

    The base notifier comes loaded with the event (``StoredEvent.base_notifier``), so no
    delivery reads the installed integration.
    """
    if not event.spec.useBaseNotifier and event.spec.notifier is not None:
        return event.spec.notifier
    if event.base_notifier is None:
        raise NotifierMisconfigured(BASE_NOTIFIER_MISSING)
    return event.base_notifier


def declared_content_type(event: StoredEvent) -> str | None:
    """The Content-Type the event's headers declare, if any."""
    for header in event.spec.headers:
        if header.key.lower() == "content-type":
            return header.value
    return None


def build_request(
    *,
    delivery_id: str,
    event: StoredEvent,
    entity: Entity,
    data: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> Prepared:
    """Render the event's payload and URL for one change and build the request.

    Raises a :class:`PermanentError` when it cannot be built (a template error, a notifier
    misconfiguration): the same event and change would fail again.
    """
    # $installedAppId and $entity, for OpsRamp's $utils.extEntityId($incident.id, ...).
    extra = {**(extra or {}), **builtin_values(event.installed_id, entity)}
    notifier = notifier_for(event)
    hint = for_notifier(notifier).render_syntax_hint(declared_content_type(event))
    syntax = detect_syntax(event.spec.template, hint)
    try:
        rendered = render(
            event.spec.template,
            entity=entity,
            data=data,
            extra=extra,
            syntax=syntax,
            reraise=(SoftTimeLimitExceeded,),
        )
    except (HeraldError, SoftTimeLimitExceeded):
        raise
    except Exception as exc:  # a template error is the tenant's to fix, never a retry
        raise PermanentError(
            f"payload template failed to render: {exc}", error_class="template_error"
        ) from None
    end_point = event.spec.endPointURI
    if end_point:
        end_point = render_url(end_point, entity=entity, data=data, extra=extra or {})
    request = OutboundRequest(
        delivery_id=delivery_id,
        notifier=notifier,
        method=event.spec.thirdPartyEventType,
        url=resolve_url(notifier.baseURI, end_point),
        headers=[(h.key, h.value) for h in event.spec.headers],
        body=rendered.body,
    )
    return Prepared(request=request, rendered=rendered)
