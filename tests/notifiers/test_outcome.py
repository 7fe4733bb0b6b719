"""Classification of HTTP results (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from integrations.errors import PermanentError, RetryableError
from notifiers.outcome import (
    EXCERPT_BYTES,
    error_for_exception,
    error_for_status,
    excerpt,
    parse_retry_after,
)

MAX = 3600.0


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, None),
        (201, None),
        (202, None),
        (204, None),
        (299, None),
        (100, PermanentError),
        (301, PermanentError),
        (302, PermanentError),
        (304, PermanentError),
        (307, PermanentError),
        (308, PermanentError),
        (400, PermanentError),
        (401, PermanentError),
        (403, PermanentError),
        (404, PermanentError),
        (409, PermanentError),
        (422, PermanentError),
        (408, RetryableError),
        (429, RetryableError),
        (500, RetryableError),
        (502, RetryableError),
        (503, RetryableError),
        (504, RetryableError),
        (599, RetryableError),
    ],
)
def test_classification_table(status: int, kind: type[Exception] | None) -> None:
    error = error_for_status(status, {}, b"body", max_retry_after=MAX)
    if kind is None:
        assert error is None
        return
    assert type(error) is kind
    assert error is not None
    assert error.error_class == f"http_{status}"
    assert error.http_status == status
    assert error.response_excerpt == "body"


def test_reason_names_status_and_url_without_secrets() -> None:
    error = error_for_status(
        404, {}, b"", max_retry_after=MAX, url="https://u:pw@a.example/x?token=abc"
    )
    assert error is not None
    assert error.reason == "HTTP 404 Not Found from https://a.example/x?..."


def test_redirect_reason_names_location() -> None:
    error = error_for_status(302, {"location": "https://b.example/next"}, b"", max_retry_after=MAX)
    assert error is not None
    assert error.reason == "HTTP 302 Found: redirect to https://b.example/next not followed"
    relative = error_for_status(301, {"Location": "/moved"}, b"", max_retry_after=MAX)
    assert relative is not None and "redirect to /moved not followed" in relative.reason


def test_retry_after_on_retryable() -> None:
    error = error_for_status(503, {"Retry-After": "120"}, b"", max_retry_after=MAX)
    assert isinstance(error, RetryableError)
    assert error.retry_after == 120
    assert error.response_headers == {"Retry-After": "120"}
    plain = error_for_status(500, {}, b"", max_retry_after=MAX)
    assert isinstance(plain, RetryableError) and plain.retry_after is None


NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("0", 0.0),
        ("120", 120.0),
        (" 30 ", 30.0),
        ("1.5", 1.5),
        ("-5", 0.0),
        ("999999", MAX),
        ("soon", None),
        ("nan", None),
        (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
        (format_datetime(NOW - timedelta(seconds=90), usegmt=True), 0.0),
        (format_datetime(NOW + timedelta(days=2), usegmt=True), MAX),
        ("Wed, 01 Jan 2025 12:01:00 GMT", 60.0),
        ("Wednesday, 01-Jan-25 12:01:00 GMT", 60.0),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, MAX, now=NOW) == expected


def test_excerpt_is_bounded_and_lenient() -> None:
    assert len(excerpt(b"x" * 10_000)) == EXCERPT_BYTES
    assert excerpt(b"caf\xc3") == "caf\ufffd"
    assert excerpt("déjà") == "déjà"


REQ = httpx.Request("POST", "https://a.example/x")


@pytest.mark.parametrize(
    ("exc", "kind", "error_class"),
    [
        (httpx.ConnectTimeout("t", request=REQ), RetryableError, "timeout"),
        (httpx.ReadTimeout("t", request=REQ), RetryableError, "timeout"),
        (httpx.WriteTimeout("t", request=REQ), RetryableError, "timeout"),
        (httpx.PoolTimeout("t", request=REQ), RetryableError, "timeout"),
        (httpx.ConnectError("refused", request=REQ), RetryableError, "connect_error"),
        (httpx.RemoteProtocolError("eof", request=REQ), RetryableError, "network_error"),
        (httpx.ReadError("reset", request=REQ), RetryableError, "network_error"),
        (httpx.UnsupportedProtocol("ftp", request=REQ), PermanentError, "unsupported_protocol"),
        (httpx.LocalProtocolError("bad header", request=REQ), PermanentError, "invalid_request"),
    ],
)
def test_exceptions(exc: httpx.HTTPError, kind: type[Exception], error_class: str) -> None:
    error = error_for_exception(exc, "https://a.example/x")
    assert type(error) is kind
    assert error.error_class == error_class
    assert "https://a.example/x" in error.reason
