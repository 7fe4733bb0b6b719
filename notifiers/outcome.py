"""What an HTTP result means for the delivery: success, retry later, or give up.

Pure functions: they turn a status, headers and body (or an httpx exception) into ``None`` for
success or into the :mod:`integrations.errors` exception the caller raises. Rules:

* 2xx: success;
* 408, 429 and 5xx: :class:`RetryableError`, honouring ``Retry-After`` (clamped);
* other 4xx: :class:`PermanentError`;
* 1xx and 3xx: :class:`PermanentError` -- redirects are never followed, because following one
  would send the payload and credentials somewhere the notifier did not name;
* timeouts, refused connections, dropped connections: :class:`RetryableError`.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from http import HTTPStatus

import httpx

from integrations.errors import HeraldError, PermanentError, RetryableError
from notifiers.urls import redact_url

#: How much of a response body is kept for the activity log.
EXCERPT_BYTES = 2048
RETRYABLE_STATUSES = frozenset({408, 429})


def excerpt(body: bytes | str, limit: int = EXCERPT_BYTES) -> str:
    """The first ``limit`` bytes of a body as text, undecodable bytes replaced."""
    if isinstance(body, str):
        body = body.encode("utf-8", errors="replace")
    return body[:limit].decode("utf-8", errors="replace")


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup in any mapping (``httpx.Headers`` or a plain dict)."""
    if isinstance(headers, httpx.Headers):
        found: str | None = headers.get(name)
        return found
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def parse_retry_after(
    value: str | None, max_retry_after: float, *, now: datetime | None = None
) -> float | None:
    """Seconds to wait according to a ``Retry-After`` value, clamped to ``[0, max]``.

    Accepts delay-seconds (``"120"``) and an HTTP-date (``"Wed, 21 Oct 2015 07:28:00 GMT"``);
    returns ``None`` when the value is absent or unreadable.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # an HTTP-date is GMT by definition
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), max_retry_after)


def _phrase(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def error_for_status(
    status: int,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    max_retry_after: float,
    url: str | None = None,
) -> HeraldError | None:
    """``None`` for a 2xx; otherwise the error to raise for this response."""
    if 200 <= status < 300:
        return None
    where = f" from {redact_url(url)}" if url else ""
    text = excerpt(body)
    kept = dict(headers.items())
    if status in RETRYABLE_STATUSES or 500 <= status < 600:
        return RetryableError(
            f"{_phrase(status)}{where}",
            retry_after=parse_retry_after(header(headers, "Retry-After"), max_retry_after),
            error_class=f"http_{status}",
            http_status=status,
            response_excerpt=text,
            response_headers=kept,
        )
    reason = f"{_phrase(status)}{where}"
    if 300 <= status < 400:
        location = header(headers, "Location")
        shown = redact_url(location) if location and "://" in location else location
        reason += f": redirect to {shown} not followed" if location else ": redirect not followed"
    return PermanentError(
        reason,
        error_class=f"http_{status}",
        http_status=status,
        response_excerpt=text,
        response_headers=kept,
    )


def error_for_exception(exc: httpx.HTTPError, url: str | None = None) -> HeraldError:
    """The error for an exchange that produced no usable response."""
    where = f" {redact_url(url)}" if url else ""
    if isinstance(exc, httpx.TimeoutException):
        phase = {
            httpx.ConnectTimeout: "connecting to",
            httpx.ReadTimeout: "waiting for the answer of",
            httpx.WriteTimeout: "sending to",
            httpx.PoolTimeout: "waiting for a free connection to",
        }.get(type(exc), "talking to")
        return RetryableError(f"timed out {phase}{where}", error_class="timeout")
    if isinstance(exc, httpx.ConnectError):
        return RetryableError(f"cannot connect to{where}: {exc}", error_class="connect_error")
    if isinstance(exc, httpx.UnsupportedProtocol):
        return PermanentError(f"unsupported URL{where}: {exc}", error_class="unsupported_protocol")
    if isinstance(exc, httpx.LocalProtocolError):
        # Raised before anything is sent: a header value httpx refuses, for instance.
        return PermanentError(f"invalid request to{where}: {exc}", error_class="invalid_request")
    if isinstance(exc, httpx.TransportError | httpx.DecodingError):
        return RetryableError(f"connection to{where} failed: {exc}", error_class="network_error")
    return RetryableError(f"request to{where} failed: {exc}", error_class="http_error")
