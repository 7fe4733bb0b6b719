"""What one exchange produced: a :class:`DeliveryResponse`, or the error to raise (pure).

Shared by the sync and async paths of :class:`~notifiers.sender.Sender`: the body reader's
bounds (size and total time), the outcome (REST status or SOAP fault), and the redacted echo
of what was sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import httpx

from integrations.enums import NotifierType
from integrations.errors import HeraldError
from integrations.models import Header, is_credential_header
from notifiers.build import header_items
from notifiers.capture import capture
from notifiers.outcome import excerpt
from notifiers.protocols import for_type
from notifiers.xmldoc import to_data

#: Largest response body read; the rest is dropped (a hostile endpoint cannot exhaust memory).
MAX_RESPONSE_BYTES = 1024 * 1024
REDACTED = "***"


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


@dataclass(frozen=True)
class Exchange:
    """One request and its (bounded) answer, as the transport saw them."""

    status: int
    headers: httpx.Headers
    body: bytes
    #: The headers of the request actually sent last (auth included).
    request_headers: httpx.Headers
    duration_ms: float
    #: Whether a 401 was answered with a fresh token and this is the second try.
    renewed: bool = False


class BodyLimit:
    """Accumulates a response body up to :data:`MAX_RESPONSE_BYTES` and a total deadline.

    httpx's read timeout is per read: a server dripping one byte at a time would never trip
    it, so the whole body phase is bounded too.
    """

    def __init__(self, response: httpx.Response, deadline: float, clock: Callable[[], float]):
        self._response = response
        self._deadline = deadline
        self._clock = clock
        self._chunks: list[bytes] = []
        self._size = 0

    def add(self, chunk: bytes) -> bool:
        """Keep ``chunk``; ``False`` once enough was read. Raises ``ReadTimeout`` when late."""
        self._chunks.append(chunk)
        self._size += len(chunk)
        if self._size >= MAX_RESPONSE_BYTES:
            return False
        if self._clock() > self._deadline:
            raise httpx.ReadTimeout("response body took too long", request=self._response.request)
        return True

    @property
    def body(self) -> bytes:
        """What was read, cut to :data:`MAX_RESPONSE_BYTES`."""
        return b"".join(self._chunks)[:MAX_RESPONSE_BYTES]


def redact_headers(headers: Iterable[tuple[str, str]], secrets: Iterable[str]) -> dict[str, str]:
    """Headers for display: credential-bearing names and any value containing a known secret
    become ``***`` (pure)."""
    known = [s for s in secrets if s and len(s) >= 4]
    shown: dict[str, str] = {}
    for name, value in headers:
        if _is_credential(name) or (known and any(s in value for s in known)):
            value = REDACTED
        shown[name.lower()] = value
    return shown


#: :func:`is_credential_header` per name: a process sends a few dozen distinct header names,
#: and each delivery's echo asks about every one of them.
_is_credential = lru_cache(maxsize=1024)(is_credential_header)


def error_for_exchange(
    notifier_type: NotifierType, exchange: Exchange, *, max_retry_after: float, url: str
) -> HeraldError | None:
    """``None`` for a successful exchange, else the error to raise (pure)."""
    error = for_type(notifier_type).error_for(
        exchange.status,
        exchange.headers,
        exchange.body,
        max_retry_after=max_retry_after,
        url=url,
    )
    if error is not None and exchange.renewed and exchange.status == 401:
        error.reason += " (also with a freshly obtained token)"
        error.args = (error.reason,)
    return error


def _json_or_none(body: bytes) -> Any | None:
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        # Not JSON, or JSON nested too deep to decode: the delivery has succeeded all the
        # same, there is just nothing to capture from it as JSON.
        return None


def delivery_response(exchange: Exchange, secrets: Iterable[str]) -> DeliveryResponse:
    """The :class:`DeliveryResponse` of a successful exchange (pure)."""
    return DeliveryResponse(
        http_status=exchange.status,
        headers=header_items(exchange.headers),
        body_excerpt=excerpt(exchange.body),
        json_body=_json_or_none(exchange.body),
        raw_body=exchange.body,
        duration_ms=exchange.duration_ms,
        request_headers=redact_headers(header_items(exchange.request_headers).items(), secrets),
    )
