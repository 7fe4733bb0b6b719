"""The entry point the worker calls: send one rendered event to its notifier.

:class:`Sender` owns one ``httpx.Client`` (connection pooling across deliveries) whose
transport is the SSRF-guarded :class:`~notifiers.safety.GuardedTransport`. Per delivery it
builds the request (method, body, Content-Type, ``Idempotency-Key``, Standard Webhooks
signature, SOAP envelope), applies the notifier's auth, sends it without following redirects,
and turns the answer into a :class:`DeliveryResponse` or a Retryable/Permanent error. A 401
from an OAUTH2/JWT endpoint is retried once with a freshly obtained token.

Neither secrets nor tokens are logged; the request headers echoed in
:class:`DeliveryResponse` are redacted.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx
import redis

from integrations.config import Settings
from integrations.enums import HttpMethod, NotifierType
from integrations.errors import HeraldError, NotifierMisconfigured, PermanentError
from integrations.models import Header, Notifier, is_credential_header
from notifiers import soap
from notifiers.auth import AppliedAuth, Authenticator
from notifiers.capture import capture
from notifiers.outcome import error_for_exception, error_for_status, excerpt
from notifiers.safety import GuardedTransport
from notifiers.signing import signature_headers
from notifiers.urls import redact_url
from notifiers.xmldoc import to_data

log = logging.getLogger(__name__)

USER_AGENT = "Herald/0.1"
#: Largest response body read; the rest is dropped (a hostile endpoint cannot exhaust memory).
MAX_RESPONSE_BYTES = 1024 * 1024
REDACTED = "***"

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


@dataclass(frozen=True)
class DeliveryResponse:
    """A successful (2xx) delivery, for the activity log and response capture."""

    http_status: int
    #: Response headers, names lower-cased.
    headers: dict[str, str]
    body_excerpt: str
    json_body: Any | None
    duration_ms: float
    #: What was sent, with Authorization and other secrets replaced by ``***``.
    request_headers: dict[str, str] = field(default_factory=dict)
    #: The body as received (at most ``MAX_RESPONSE_BYTES``), for capture from XML.
    raw_body: bytes = field(default=b"", repr=False)

    def capture(self, mappings: Iterable[Header | Mapping[str, str]]) -> dict[str, str]:
        """Apply an event's ``responseHeaders`` to this response (JSON or XML body)."""
        wanted = list(mappings)
        if not wanted:
            return {}
        body = self.json_body
        if body is None:
            # XML is parsed only here, when an event asks for values: most deliveries don't.
            body = to_data(self.raw_body)
        return capture(wanted, body, self.headers)


@dataclass
class _Exchange:
    status: int
    headers: httpx.Headers
    body: bytes
    request_headers: httpx.Headers
    duration_ms: float


def _no_cookies() -> CookieJar:
    # Deliveries of different tenants share the client: a cookie set by one endpoint must
    # never ride along on another notifier's request, so no cookie is ever stored.
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


def _looks_like_json(body: str) -> bool:
    try:
        json.loads(body)
    except (ValueError, RecursionError):
        return False
    return True


def content_type_for(notifier_type: NotifierType, body: str, declared: str | None) -> str | None:
    """The Content-Type to send (pure).

    REST: the event's header if given; else ``application/json`` for a JSON body,
    ``application/xml`` for an XML-looking one, ``text/plain; charset=utf-8`` otherwise, and
    none for an empty body. SOAP: the event's header only if it names an XML type (the seed's
    SOAP samples declare ``application/json``, which no SOAP server accepts), else
    ``text/xml; charset=utf-8``.
    """
    if notifier_type is NotifierType.SOAP_API:
        return declared if declared and "xml" in declared.lower() else soap.CONTENT_TYPE
    if declared:
        return declared
    if not body:
        return None
    if _looks_like_json(body):
        return "application/json"
    if body.lstrip().startswith("<"):
        return "application/xml"
    return "text/plain; charset=utf-8"


def redact_headers(headers: Iterable[tuple[str, str]], secrets: Iterable[str]) -> dict[str, str]:
    """Headers for display: credential-bearing names and any value containing a known secret
    become ``***`` (pure)."""
    known = [s for s in secrets if s and len(s) >= 4]
    shown: dict[str, str] = {}
    for name, value in headers:
        lowered = name.lower()
        if is_credential_header(name) or any(s in value for s in known):
            value = REDACTED
        shown[lowered] = value
    return shown


class Sender:
    """Sends :class:`OutboundRequest` s; one per worker process, reused across deliveries."""

    def __init__(
        self,
        settings: Settings,
        redis: redis.Redis | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self._client = httpx.Client(
            transport=transport or GuardedTransport(settings.allowed_networks),
            timeout=httpx.Timeout(
                connect=settings.connect_timeout,
                read=settings.read_timeout,
                write=settings.read_timeout,
                pool=settings.connect_timeout,
            ),
            follow_redirects=False,
            # Proxies from the environment would bypass the SSRF guard (it would only see the
            # proxy's address); Herald talks to endpoints directly.
            trust_env=False,
            headers={"User-Agent": USER_AGENT},
            cookies=_no_cookies(),
        )
        self._auth = Authenticator(settings, self._client, redis)

    def close(self) -> None:
        """Close pooled connections."""
        self._client.close()

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------ sending

    def send(self, request: OutboundRequest) -> DeliveryResponse:
        """Deliver ``request``; return the 2xx response or raise a RetryableError /
        PermanentError subclass (integrations.errors) saying why not."""
        notifier = request.notifier
        body = request.body
        if notifier.type is NotifierType.SOAP_API:
            body = soap.wrap(body)
        content = body.encode("utf-8")
        if request.method in (HttpMethod.GET, HttpMethod.DELETE) and not body:
            payload: bytes | None = None  # no body at all, not even Content-Length: 0
        else:
            payload = content

        applied = self._auth.apply(notifier)
        exchange = self._exchange(request, payload, applied)
        renewed = False
        if exchange.status == 401 and applied.renewable:
            # The token may have been revoked or expired early: one retry with a fresh one.
            log.info("401 from %s; renewing the token and retrying once", redact_url(request.url))
            self._auth.invalidate(notifier, applied)
            applied = self._auth.apply(notifier)
            exchange = self._exchange(request, payload, applied)
            renewed = True
        return self._outcome(request, exchange, applied, renewed)

    def _headers(
        self, request: OutboundRequest, payload: bytes | None, applied: AppliedAuth
    ) -> list[tuple[str, str]]:
        notifier = request.notifier
        managed = {"idempotency-key", "content-type"}
        if applied.headers:
            managed |= {name.lower() for name, _ in applied.headers}
        if notifier.signingSecret:
            managed |= {"webhook-id", "webhook-timestamp", "webhook-signature"}
        is_soap = notifier.type is NotifierType.SOAP_API
        if is_soap and notifier.soapAction:
            managed.add("soapaction")

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
        content_type = content_type_for(notifier.type, text, declared)
        if content_type and payload is not None:
            headers.append(("Content-Type", content_type))
        if is_soap:
            has_action = any(n.lower() == "soapaction" for n, _ in headers)
            if notifier.soapAction:
                headers.append(("SOAPAction", soap.soap_action_header(notifier.soapAction)))
            elif not has_action and content_type and content_type.startswith("text/xml"):
                # SOAP 1.1 requires the header; "" means "the intent is the request URI".
                headers.append(("SOAPAction", '""'))
        headers.append(("Idempotency-Key", request.delivery_id))
        if notifier.signingSecret:
            try:
                signed = signature_headers(
                    notifier.signingSecret, request.delivery_id, payload or b""
                )
            except ValueError as exc:
                raise NotifierMisconfigured(f"notifier.signingSecret: {exc}") from None
            headers.extend(signed.items())
        headers.extend(applied.headers)
        return headers

    def _exchange(
        self, request: OutboundRequest, payload: bytes | None, applied: AppliedAuth
    ) -> _Exchange:
        pairs = self._headers(request, payload, applied)
        started = time.monotonic()
        try:
            try:
                # httpx encodes str header values as ASCII; templates may render any text, so
                # values go out as UTF-8 (what servers decode in practice) instead of crashing.
                headers = [(n.encode("ascii"), v.encode("utf-8")) for n, v in pairs]
                outgoing = self._client.build_request(
                    request.method.value, request.url, headers=headers, content=payload
                )
            except (UnicodeError, ValueError, TypeError) as exc:
                raise PermanentError(
                    f"invalid request header: {type(exc).__name__}", error_class="invalid_request"
                ) from None
            response = self._client.send(outgoing, stream=True)
            try:
                body = self._read_limited(response, started)
            finally:
                response.close()
        except httpx.InvalidURL as exc:
            raise PermanentError(
                f"invalid URL {redact_url(request.url)}: {exc}", error_class="invalid_url"
            ) from None
        except httpx.HTTPError as exc:
            raise error_for_exception(exc, request.url) from None
        duration_ms = (time.monotonic() - started) * 1000
        log.debug(
            "%s %s -> %s in %.0f ms",
            request.method.value,
            redact_url(request.url),
            response.status_code,
            duration_ms,
        )
        return _Exchange(
            response.status_code, response.headers, body, outgoing.headers, duration_ms
        )

    def _read_limited(self, response: httpx.Response, started: float) -> bytes:
        # httpx's read timeout is per read: a server dripping one byte at a time would never
        # trip it. Bound the whole body phase too.
        deadline = started + self._settings.connect_timeout + 2 * self._settings.read_timeout
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= MAX_RESPONSE_BYTES:
                break
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout("response body took too long", request=response.request)
        return b"".join(chunks)[:MAX_RESPONSE_BYTES]

    def _outcome(
        self, request: OutboundRequest, exchange: _Exchange, applied: AppliedAuth, renewed: bool
    ) -> DeliveryResponse:
        notifier = request.notifier
        if notifier.type is NotifierType.SOAP_API:
            error: HeraldError | None = soap.error_for_soap_response(
                exchange.status,
                exchange.headers,
                exchange.body,
                max_retry_after=self._settings.max_retry_after,
                url=request.url,
            )
        else:
            error = error_for_status(
                exchange.status,
                exchange.headers,
                exchange.body,
                max_retry_after=self._settings.max_retry_after,
                url=request.url,
            )
        if error is not None:
            if renewed and exchange.status == 401:
                error.reason += " (also with a freshly obtained token)"
                error.args = (error.reason,)
            raise error
        json_body: Any | None = None
        if exchange.body.strip():
            try:
                json_body = json.loads(exchange.body)
            except (ValueError, RecursionError):
                # Not JSON, or JSON nested too deep to decode: the delivery has succeeded
                # all the same, there is just nothing to capture from it as JSON.
                json_body = None
        secrets = [
            *applied.secrets,
            *(s for s in (notifier.password, notifier.apiSecret, notifier.signingSecret) if s),
        ]
        return DeliveryResponse(
            http_status=exchange.status,
            headers={k.lower(): v for k, v in exchange.headers.items()},
            body_excerpt=excerpt(exchange.body),
            json_body=json_body,
            raw_body=exchange.body,
            duration_ms=exchange.duration_ms,
            request_headers=redact_headers(exchange.request_headers.items(), secrets),
        )
