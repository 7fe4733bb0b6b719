"""Sender against a real loopback sink: methods, bodies, headers, BASIC auth, outcomes.

Every test that sends runs through both paths (``send`` and ``send_async``).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import gzip
import socket
import time

import pytest

from integrations.config import Settings
from integrations.errors import NotifierMisconfigured, PermanentError, RetryableError
from integrations.models import Notifier
from notifiers.sender import (
    MAX_RESPONSE_BYTES,
    USER_AGENT,
    Sender,
    content_type_for,
    redact_headers,
)
from notifiers.signing import verify
from tests.notifiers.conftest import Send, SendPath, outbound
from tests.support.sinks import RecordingSink, Reply


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "GET", "DELETE"])
def test_every_method_with_a_body(send: Send, sink: RecordingSink, method: str) -> None:
    response = send(outbound(f"{sink.url}/hook?x=1", method=method, body='{"a": 1}'))
    assert response.http_status == 200
    [req] = sink.requests
    assert (req.method, req.path, req.body) == (method, "/hook?x=1", b'{"a": 1}')
    assert req.header("Content-Type") == "application/json"


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_get_and_delete_without_body_send_none(
    send: Send, sink: RecordingSink, method: str
) -> None:
    send(outbound(sink.url, method=method, body=""))
    [req] = sink.requests
    assert req.body == b""
    assert "content-length" not in req.header_names
    assert "content-type" not in req.header_names


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_empty_body_is_an_empty_entity(send: Send, sink: RecordingSink, method: str) -> None:
    send(outbound(sink.url, method=method, body=""))
    [req] = sink.requests
    assert req.header("Content-Length") == "0"
    assert "content-type" not in req.header_names


@pytest.mark.parametrize(
    ("body", "declared", "expected"),
    [
        ('{"a": 1}', None, "application/json"),
        ("[1, 2]", None, "application/json"),
        ("<ticket><id>1</id></ticket>", None, "application/xml"),
        ("plain words", None, "text/plain; charset=utf-8"),
        ("{broken json", None, "text/plain; charset=utf-8"),
        ("plain words", "application/x-www-form-urlencoded", "application/x-www-form-urlencoded"),
        ('{"a": 1}', "application/vnd.api+json", "application/vnd.api+json"),
    ],
)
def test_content_type(
    send: Send, sink: RecordingSink, body: str, declared: str | None, expected: str
) -> None:
    headers = [("content-type", declared)] if declared else []
    send(outbound(sink.url, body=body, headers=headers))
    [req] = sink.requests
    assert req.header("Content-Type") == expected
    assert [k.lower() for k, _ in req.headers].count("content-type") == 1


def test_content_type_for_soap_is_pure() -> None:
    from integrations.enums import NotifierType

    assert content_type_for(NotifierType.SOAP_API, "<a/>", "application/json") == (
        "text/xml; charset=utf-8"
    )
    assert content_type_for(NotifierType.SOAP_API, "<a/>", "application/soap+xml") == (
        "application/soap+xml"
    )
    assert content_type_for(NotifierType.REST_API, "", None) is None


def test_headers(send: Send, sink: RecordingSink) -> None:
    send(
        outbound(
            sink.url,
            delivery_id="dlv-42",
            headers=[
                ("accept", "application/json"),
                ("X-Custom", "one"),
                ("X-Custom", "two"),
                ("Host", "evil.example"),
                ("Content-Length", "999"),
                ("Idempotency-Key", "spoofed"),
            ],
        )
    )
    [req] = sink.requests
    assert req.header("Accept") == "application/json"
    assert [v for k, v in req.headers if k.lower() == "x-custom"] == ["one", "two"]
    assert req.header("Host") == f"127.0.0.1:{sink.port}"
    assert req.header("Content-Length") == str(len(req.body))
    assert req.header("Idempotency-Key") == "dlv-42"
    assert req.header("User-Agent") == USER_AGENT
    assert "webhook-signature" not in req.header_names
    assert "cookie" not in req.header_names


def test_event_may_override_user_agent(send: Send, sink: RecordingSink) -> None:
    send(outbound(sink.url, headers=[("User-Agent", "Custom/1")]))
    assert sink.requests[0].header("User-Agent") == "Custom/1"


def test_basic_auth_and_redaction(send: Send, sink: RecordingSink) -> None:
    response = send(
        outbound(
            sink.url,
            authType="BASIC",
            userName="svc",
            password="pa:ss wörd",
            headers=[("X-Api-Key", "k-123456"), ("X-Echo", "contains pa:ss wörd inside")],
        )
    )
    [req] = sink.requests
    expected = base64.b64encode("svc:pa:ss wörd".encode()).decode()
    assert req.header("Authorization") == f"Basic {expected}"
    shown = response.request_headers
    assert shown["authorization"] == "***"
    assert shown["x-api-key"] == "***"
    assert shown["x-echo"] == "***"
    assert shown["idempotency-key"].startswith("dlv-")
    assert "pa:ss" not in repr(response)


def test_event_authorization_is_kept_without_auth_type(send: Send, sink: RecordingSink) -> None:
    response = send(outbound(sink.url, headers=[("Authorization", "Token static-abc")]))
    assert sink.requests[0].header("Authorization") == "Token static-abc"
    assert response.request_headers["authorization"] == "***"


def test_auth_type_overrides_event_authorization(send: Send, sink: RecordingSink) -> None:
    send(
        outbound(
            sink.url,
            authType="BASIC",
            userName="u",
            password="p",
            headers=[("Authorization", "Token static")],
        )
    )
    [req] = sink.requests
    assert [v for k, v in req.headers if k.lower() == "authorization"] == [
        "Basic " + base64.b64encode(b"u:p").decode()
    ]


@pytest.mark.parametrize(
    ("fields", "missing"),
    [({"password": "p"}, "notifier.userName"), ({"userName": "u"}, "notifier.password")],
)
def test_basic_auth_misconfigured(
    send: Send, sink: RecordingSink, fields: dict[str, str], missing: str
) -> None:
    with pytest.raises(NotifierMisconfigured) as info:
        send(outbound(sink.url, authType="BASIC", **fields))
    assert info.value.reason == f"{missing} is required for BASIC"
    assert sink.count == 0


def test_signing(send: Send, sink: RecordingSink) -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
    notifier = Notifier(signingSecret=secret)
    for _ in range(2):  # a retry of the same delivery keeps its webhook-id
        send(outbound(sink.url, notifier, delivery_id="dlv-7", body='{"n": 1}'))
    for req in sink.requests:
        assert req.header("webhook-id") == "dlv-7"
        verify(secret, dict(req.headers), req.body)


def test_success_response(send: Send, sink: RecordingSink) -> None:
    sink.reply(Reply.json({"id": "T-9"}, status=201, X_Trace="abc"))
    response = send(outbound(sink.url))
    assert response.http_status == 201
    assert response.json_body == {"id": "T-9"}
    assert response.headers["x-trace"] == "abc"
    assert response.body_excerpt == '{"id": "T-9"}'
    assert response.duration_ms > 0


def test_non_json_success(send: Send, sink: RecordingSink) -> None:
    sink.reply(Reply(204))
    assert send(outbound(sink.url)).json_body is None
    sink.reply(Reply(200, body="OK"))
    assert send(outbound(sink.url)).body_excerpt == "OK"


def test_large_response_is_bounded(send: Send, sink: RecordingSink) -> None:
    sink.reply(Reply(200, body=b"x" * (MAX_RESPONSE_BYTES * 2)))
    response = send(outbound(sink.url))
    assert len(response.body_excerpt) == 2048


def test_retryable_with_retry_after(send: Send, sink: RecordingSink) -> None:
    sink.reply(Reply(429, [("Retry-After", "5")], "slow down"))
    with pytest.raises(RetryableError) as info:
        send(outbound(f"{sink.url}/x"))
    error = info.value
    assert (error.error_class, error.http_status, error.retry_after) == ("http_429", 429, 5.0)
    assert error.response_excerpt == "slow down"
    assert error.reason == f"HTTP 429 Too Many Requests from {sink.url}/x"


def test_retry_after_is_clamped(settings: Settings, sink: RecordingSink, path: SendPath) -> None:
    clamped = dataclasses.replace(settings, max_retry_after=60)
    sink.reply(Reply(503, [("Retry-After", "86400")]))
    with Sender(clamped) as sender, pytest.raises(RetryableError) as info:
        path(sender, outbound(sink.url))
    assert info.value.retry_after == 60


def test_permanent_4xx(send: Send, sink: RecordingSink) -> None:
    sink.reply(Reply.json({"error": "no such queue"}, status=404))
    with pytest.raises(PermanentError) as info:
        send(outbound(sink.url))
    assert info.value.error_class == "http_404"
    assert "no such queue" in info.value.response_excerpt


def test_read_timeout(settings: Settings, sink: RecordingSink, path: SendPath) -> None:
    fast = dataclasses.replace(settings, read_timeout=0.3)
    sink.reply(Reply(200, delay=1.0))
    started = time.monotonic()
    with Sender(fast) as sender, pytest.raises(RetryableError) as info:
        path(sender, outbound(sink.url))
    assert info.value.error_class == "timeout"
    assert time.monotonic() - started < 5
    assert sink.count == 1  # it was delivered; only the answer was late


def test_connection_refused(send: Send) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RetryableError) as info:
        send(outbound(f"http://127.0.0.1:{port}/"))
    assert info.value.error_class == "connect_error"


def test_invalid_header_value_is_permanent(send: Send, sink: RecordingSink) -> None:
    with pytest.raises(PermanentError) as info:
        send(outbound(sink.url, headers=[("X-Bad", "line\r\nInjected: yes")]))
    assert info.value.error_class == "invalid_request"
    assert sink.count == 0


def test_connections_are_pooled_and_cookies_dropped(send: Send, sink: RecordingSink) -> None:
    sink.reply(Reply(200, [("Set-Cookie", "session=abc; Path=/")]))
    send(outbound(sink.url))
    send(outbound(sink.url))
    first, second = sink.requests
    assert first.client == second.client  # same TCP connection
    assert second.header("Cookie") is None


def test_redact_headers_is_pure() -> None:
    shown = redact_headers(
        [
            ("Authorization", "Bearer x"),
            ("X-Auth-Token", "t"),
            ("Cookie", "a=b"),
            ("webhook-signature", "v1,abc"),
            ("Content-Type", "hello secret-value"),
            ("Accept", "ab"),
            ("Ocp-Apim-Subscription-Key", "k-123"),
            ("User-Agent", "herald"),
        ],
        ["secret-value", "ab"],
    )
    assert shown == {
        "authorization": "***",
        "x-auth-token": "***",
        "cookie": "***",
        "webhook-signature": "v1,abc",
        "content-type": "***",  # it holds a known secret
        "accept": "ab",  # secrets under 4 characters would redact everything
        # Issue 8: an unknown header is a secret by default, whatever its name says.
        "ocp-apim-subscription-key": "***",
        "user-agent": "herald",
    }


def test_non_ascii_header_name_is_permanent(send: Send, sink: RecordingSink) -> None:
    with pytest.raises(PermanentError) as info:
        send(outbound(sink.url, headers=[("X-Grüße", "1")]))
    assert info.value.error_class == "invalid_request"
    assert sink.count == 0


def test_bad_signing_secret_is_misconfiguration(send: Send, sink: RecordingSink) -> None:
    with pytest.raises(NotifierMisconfigured, match=r"notifier\.signingSecret"):
        send(outbound(sink.url, Notifier(signingSecret="whsec_***")))
    assert sink.count == 0


def test_send_async_belongs_to_one_loop(sender: Sender, sink: RecordingSink) -> None:
    first = asyncio.new_event_loop()
    try:
        response = first.run_until_complete(sender.send_async(outbound(sink.url)))
        assert response.http_status == 200
        with pytest.raises(RuntimeError, match="second event loop"):
            asyncio.run(sender.send_async(outbound(sink.url)))
        first.run_until_complete(sender.aclose())
    finally:
        first.close()


def test_encoded_answer_is_decoded(send: Send, sink: RecordingSink) -> None:
    # An encoded body streams through the decoder (the async transport's read-ahead only
    # takes plain bodies), so the size cap bounds what it decodes to.
    body = gzip.compress(b'{"id": 7}')
    sink.reply(
        Reply(200, [("Content-Encoding", "gzip"), ("Content-Type", "application/json")], body)
    )
    response = send(outbound(sink.url))
    assert response.json_body == {"id": 7}
    assert response.headers["content-encoding"] == "gzip"


def test_decoded_answer_is_bounded(send: Send, sink: RecordingSink) -> None:
    body = gzip.compress(b"x" * (MAX_RESPONSE_BYTES * 3))
    sink.reply(Reply(200, [("Content-Encoding", "gzip")], body))
    response = send(outbound(sink.url))
    assert len(response.raw_body) == MAX_RESPONSE_BYTES
