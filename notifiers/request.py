"""Building one delivery's HTTP request from an :class:`OutboundRequest` (pure).

Shared by the sync and async paths of :class:`~notifiers.sender.Sender`: the body (SOAP
envelope included), the headers (the event's, minus those Herald manages, plus Content-Type,
SOAPAction, ``Idempotency-Key`` and the Standard Webhooks signature) and their encoding.
Auth headers are not set here: :class:`~notifiers.auth.NotifierAuth` adds them per attempt.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from integrations.enums import HttpMethod, NotifierType
from integrations.errors import NotifierMisconfigured, PermanentError
from integrations.models import Notifier
from notifiers.protocols import for_notifier, for_type
from notifiers.signing import signature_headers

USER_AGENT = "Herald/0.1"

#: Headers an event may not set: they describe the connection, which httpx manages.
_HOP_BY_HOP = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "expect",
        "proxy-authorization",
        "proxy-connection",
    }
)


@dataclass(frozen=True)
class OutboundRequest:
    """One delivery attempt's input, rendered and resolved by the worker."""

    #: Stable per (message, event): sent as ``Idempotency-Key`` and ``webhook-id``.
    delivery_id: str
    #: With secrets (from integrations.models).
    notifier: Notifier
    method: HttpMethod
    #: Already resolved by :func:`notifiers.urls.resolve_url`.
    url: str
    #: From the event's ``headers``.
    headers: Sequence[tuple[str, str]]
    #: Rendered template, may be ''.
    body: str


def content_type_for(notifier_type: NotifierType, body: str, declared: str | None) -> str | None:
    """The Content-Type to send (pure): see :meth:`NotifierProtocol.content_type`."""
    return for_type(notifier_type).content_type(body, declared)


def payload_of(request: OutboundRequest) -> bytes | None:
    """The bytes to send: the body (in a SOAP envelope for SOAP notifiers), or ``None`` for a
    GET/DELETE without one (no body at all, not even ``Content-Length: 0``)."""
    body = for_notifier(request.notifier).wrap(request.body)
    if request.method in (HttpMethod.GET, HttpMethod.DELETE) and not body:
        return None
    return body.encode("utf-8")


def header_pairs(
    request: OutboundRequest, payload: bytes | None, auth_names: Iterable[str] = ()
) -> list[tuple[str, str]]:
    """The request's headers, auth excepted (pure but for the signature's timestamp).

    ``auth_names`` are the (lower-case) header names the notifier's auth will set: an event
    header of the same name is dropped so the auth type wins.
    """
    notifier = request.notifier
    protocol = for_notifier(notifier)
    managed = {"idempotency-key", "content-type", *auth_names, *protocol.managed_headers(notifier)}
    if notifier.signingSecret:
        managed |= {"webhook-id", "webhook-timestamp", "webhook-signature"}

    headers: list[tuple[str, str]] = []
    declared: str | None = None
    for name, value in request.headers:
        lowered = name.strip().lower()
        if lowered == "content-type":
            declared = value
        if lowered in _HOP_BY_HOP or lowered in managed:
            continue
        headers.append((name.strip(), value))
    text = payload.decode("utf-8") if payload is not None else ""
    content_type = protocol.content_type(text, declared)
    if content_type and payload is not None:
        headers.append(("Content-Type", content_type))
    headers.extend(protocol.extra_headers(notifier, headers, content_type))
    headers.append(("Idempotency-Key", request.delivery_id))
    if notifier.signingSecret:
        try:
            signed = signature_headers(notifier.signingSecret, request.delivery_id, payload or b"")
        except ValueError as exc:
            raise NotifierMisconfigured(f"notifier.signingSecret: {exc}") from None
        headers.extend(signed.items())
    return headers


def encode_headers(pairs: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """Header pairs as bytes; a name that is not ASCII is a :class:`PermanentError`.

    httpx encodes str header values as ASCII; templates may render any text, so values go out
    as UTF-8 (what servers decode in practice) instead of crashing.
    """
    try:
        return [(n.encode("ascii"), v.encode("utf-8")) for n, v in pairs]
    except UnicodeError as exc:
        raise invalid_request(exc) from None


def invalid_request(exc: Exception) -> PermanentError:
    """The error for a request httpx refuses to build (a bad header name or value)."""
    return PermanentError(
        f"invalid request header: {type(exc).__name__}", error_class="invalid_request"
    )
