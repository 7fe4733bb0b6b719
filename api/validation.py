"""Save-time checks of an integration event beyond its model (each a 400 naming the field)."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from integrations.config import Settings
from integrations.errors import HeraldError, InvalidInput
from integrations.models import IntegrationEventIn, Notifier
from integrations.placeholders import BUILTINS, FUNCTION_ROOTS
from integrations.rulebook import (
    compile_criteria,
    template_names,
    url_names,
    validate_template,
    validate_url_template,
)
from notifiers.safety import check_literal_url
from notifiers.urls import resolve_url


def check_urls(spec_urls: dict[str, str | None], settings: Settings) -> None:
    """Refuse at save time a URL whose host is a literal address Herald will not reach."""
    for field, url in spec_urls.items():
        if url:
            if "@" in url.split("://", 1)[-1].split("/", 1)[0]:
                # Credentials in a URL end up in logs and activity rows; they belong in the
                # notifier's auth fields, which are sealed.
                raise InvalidInput(field, "must not contain credentials; use authType BASIC")
            reason = check_literal_url(url, settings.allowed_networks)
            if reason:
                raise InvalidInput(field, reason)


def notifier_destinations(notifier: Notifier) -> frozenset[str]:
    """The origins (scheme, host, port) a base notifier sends to or asks tokens from."""
    return _origins([notifier.baseURI, notifier.accessTokenURL, notifier.tokenURL])


def destinations(spec: IntegrationEventIn) -> frozenset[str]:
    """The origins (scheme, host, port) an event sends to or asks tokens from."""
    n = spec.notifier
    urls: list[str | None] = [n.accessTokenURL, n.tokenURL] if n is not None else []
    try:
        urls.append(resolve_url(n.baseURI if n else None, spec.endPointURI))
    except HeraldError:
        urls.append(spec.endPointURI)
    return _origins(urls)


def _origins(urls: list[str | None]) -> frozenset[str]:
    origins = set()
    for url in urls:
        if url:
            parts = urlsplit(url if "://" in url else f"https://{url}")
            origins.add(f"{parts.scheme}://{(parts.hostname or '').lower()}:{parts.port or ''}")
    return frozenset(origins)


def validate_event(
    spec: IntegrationEventIn, settings: Settings, captured: Iterable[str] = ()
) -> None:
    """Checks beyond the model: regexes, template syntax, the names templates read, URLs
    (each a 400 naming the field). ``captured``: what the installed integration's other
    events capture from responses, which this one's templates may read."""
    compile_criteria(spec.filterCriteria, spec.entity)
    validate_template(spec.template)
    if spec.endPointURI:
        validate_url_template(spec.endPointURI)
    check_names(spec, captured)
    n = spec.notifier
    _resolvable(spec, spec.endPointURI, "endPointURI")
    check_urls(
        {
            "endPointURI": spec.endPointURI,
            "notifier.baseURI": n.baseURI if n else None,
            "notifier.accessTokenURL": n.accessTokenURL if n else None,
            "notifier.tokenURL": n.tokenURL if n else None,
        },
        settings,
    )
    if spec.depEvent is not None:
        _validate_dependent(spec, settings, captured)


def _resolvable(spec: IntegrationEventIn, end_point: str | None, field: str) -> None:
    """A 400 naming ``field`` if ``end_point`` cannot be joined to the event's own notifier."""
    n = spec.notifier
    if n is not None and not spec.useBaseNotifier:
        try:
            resolve_url(n.baseURI, end_point)
        except HeraldError as exc:
            raise InvalidInput(field, exc.reason) from None


def _validate_dependent(
    spec: IntegrationEventIn, settings: Settings, captured: Iterable[str]
) -> None:
    """``depEvent`` as its own small event: its template, URL and names (it reads what the
    event's own call captures), each error naming ``depEvent.<field>``."""
    dep = spec.depEvent
    assert dep is not None
    as_event = spec.model_copy(
        update={
            "payload": dep.payload,
            "endPointURI": dep.depEndPointURI,
            "headers": dep.headers,
            "responseHeaders": [*spec.responseHeaders, *dep.responseHeaders],
            "depEvent": None,
        }
    )
    try:
        validate_template(dep.template)
        if dep.depEndPointURI:
            validate_url_template(dep.depEndPointURI)
        check_names(as_event, captured)
    except InvalidInput as exc:
        field = "depEndPointURI" if exc.field == "endPointURI" else exc.field
        raise InvalidInput(f"depEvent.{field}", exc.problem) from None
    _resolvable(spec, dep.depEndPointURI, "depEvent.depEndPointURI")
    check_urls({"depEvent.depEndPointURI": dep.depEndPointURI}, settings)


def check_names(spec: IntegrationEventIn, captured: Iterable[str]) -> None:
    """A 400 for a ``$root`` the event's templates read that nothing will ever provide (a
    typo such as ``$incidnet``); fields under a known root stay free (custom fields)."""
    own = [h.key for h in spec.responseHeaders]
    known = [spec.entity.token, *BUILTINS, *FUNCTION_ROOTS, *captured, *own]
    folded = {name.casefold() for name in known}
    read = {
        "payload": template_names(spec.template, spec.entity),
        "endPointURI": url_names(spec.endPointURI, spec.entity) if spec.endPointURI else (),
    }
    for field, names in read.items():
        unknown = sorted(n for n in names if n.casefold() not in folded)
        if unknown:
            others = sorted(set(captured) | set(own))
            values = f"; captured values: ${', $'.join(others)}" if others else ""
            raise InvalidInput(
                field,
                f"${unknown[0]} is not a placeholder this event can read: it reads "
                f"${spec.entity.token}.<field>, ${', $'.join(BUILTINS)}, $utils.<function> "
                f"and $esc.<function>{values} (a value captured by another event of the "
                "integration can be read once that event exists)",
            )
