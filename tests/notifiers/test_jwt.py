"""OpsRamp JWT auth (tokenURL / tokenPayload / tokensPath / resourceAuthHeaders)."""

from __future__ import annotations

import base64
import json
import time

import pytest

from integrations.errors import (
    AuthenticationFailed,
    NotifierMisconfigured,
    TokenEndpointUnavailable,
)
from integrations.models import Header, Notifier
from notifiers.auth import jwt_expiry
from tests.notifiers.conftest import Send, outbound
from tests.support.sinks import RecordedRequest, RecordingSink, Reply


def make_jwt(exp: float, n: int) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part({'exp': exp, 'n': n})}.sig"


class JwtEndpoint:
    """Plan for a sink: /auth issues JWTs, anything else demands the current one."""

    def __init__(self, lifetime: float = 600) -> None:
        self.lifetime = lifetime
        self.issued: list[str] = []

    def __call__(self, req: RecordedRequest) -> Reply:
        if req.path == "/auth":
            token = make_jwt(time.time() + self.lifetime, len(self.issued))
            self.issued.append(token)
            return Reply.json({"data": {"accessToken": token}})
        if self.issued and req.header("X-Auth") == f"Token {self.issued[-1]}":
            return Reply.json({"id": "T-1"})
        if self.issued and req.header("Authorization") == f"Bearer {self.issued[-1]}":
            return Reply.json({"id": "T-1"})
        return Reply(401)


def jwt_notifier(sink: RecordingSink, **extra: object) -> Notifier:
    fields: dict[str, object] = {
        "authType": "JWT",
        "baseURI": sink.url,
        "tokenURL": "/auth",
        "tokenPayload": '{"user": "svc", "secret": "p"}',
        "tokensPath": "data.accessToken",
        "resourceAuthHeaders": [Header(key="X-Auth", value="Token $jwtToken")],
    }
    fields.update(extra)
    return Notifier(**fields)  # type: ignore[arg-type]


def test_jwt_flow_and_cache(send: Send, sink: RecordingSink) -> None:
    endpoint = JwtEndpoint()
    sink.respond_with(endpoint)
    for _ in range(3):
        assert send(outbound(f"{sink.url}/tickets", jwt_notifier(sink))).http_status == 200
    paths = [r.path for r in sink.requests]
    assert paths == ["/auth", "/tickets", "/tickets", "/tickets"]
    token_request = sink.requests[0]
    assert token_request.json() == {"user": "svc", "secret": "p"}
    assert token_request.header("Content-Type") == "application/json"
    assert sink.requests[1].header("X-Auth") == f"Token {endpoint.issued[0]}"


def test_default_header_is_bearer(send: Send, sink: RecordingSink) -> None:
    sink.respond_with(JwtEndpoint())
    notifier = jwt_notifier(sink, resourceAuthHeaders=[])
    response = send(outbound(f"{sink.url}/tickets", notifier))
    assert response.request_headers["authorization"] == "***"


def test_expired_jwt_is_renewed_from_its_exp_claim(send: Send, sink: RecordingSink) -> None:
    endpoint = JwtEndpoint(lifetime=-1)  # already expired: never cached
    sink.respond_with(endpoint)
    send(outbound(f"{sink.url}/t", jwt_notifier(sink)))
    send(outbound(f"{sink.url}/t", jwt_notifier(sink)))
    assert len(endpoint.issued) == 2


def test_401_renews_the_jwt(send: Send, sink: RecordingSink) -> None:
    endpoint = JwtEndpoint()
    sink.respond_with(endpoint)
    send(outbound(f"{sink.url}/t", jwt_notifier(sink)))
    endpoint.issued.append("revoked-all-earlier")  # server now only accepts a newer token
    assert send(outbound(f"{sink.url}/t", jwt_notifier(sink))).http_status == 200
    assert [r.path for r in sink.requests] == ["/auth", "/t", "/t", "/auth", "/t"]


def test_jwt_errors(send: Send, sink: RecordingSink) -> None:
    with pytest.raises(NotifierMisconfigured, match=r"notifier\.tokenURL is required for JWT"):
        send(outbound(sink.url, Notifier(authType="JWT")))
    sink.reply(Reply.json({"data": {}}))
    with pytest.raises(AuthenticationFailed, match=r"without a token at data\.accessToken"):
        send(outbound(sink.url, jwt_notifier(sink)))
    sink.reply(Reply(503))
    with pytest.raises(TokenEndpointUnavailable):
        send(outbound(sink.url, jwt_notifier(sink)))
    sink.reply(Reply(403, body="denied"))
    with pytest.raises(AuthenticationFailed, match="HTTP 403"):
        send(outbound(sink.url, jwt_notifier(sink)))


def test_plain_text_token_without_path(send: Send, sink: RecordingSink) -> None:
    sink.reply(Reply(200, body="opaque-token-123\n"), Reply(200))
    notifier = jwt_notifier(sink, tokensPath=None, tokenPayload="user=svc&pw=x")
    send(outbound(f"{sink.url}/t", notifier))
    auth, resource = sink.requests
    assert auth.header("Content-Type") == "application/x-www-form-urlencoded"
    assert resource.header("X-Auth") == "Token opaque-token-123"


def test_jwt_expiry() -> None:
    assert jwt_expiry(make_jwt(1234.0, 0)) == 1234.0
    assert jwt_expiry("not.a.jwt") is None
    assert jwt_expiry("opaque") is None


def test_opsramps_shapes_payload_object_token_headers_and_tokens_path_array(
    send: Send, sink: RecordingSink
) -> None:
    """As OpsRamp's clients write them: ``tokenPayload`` an object, ``tokenHeaders``, and
    ``tokensPath`` a ``[{key, value}]`` whose key names the token in the headers."""
    endpoint = JwtEndpoint()
    sink.respond_with(endpoint)
    notifier = Notifier.model_validate(
        {
            "authType": "JWT",
            "baseURI": sink.url,
            "tokenURL": "/auth",
            "tokenPayload": {"user": "svc", "secret": "p"},
            "tokenHeaders": [{"key": "X-Tenant", "value": "acme"}],
            "tokensPath": [{"key": "accessToken", "value": "data.accessToken"}],
            "resourceAuthHeaders": [{"key": "X-Auth", "value": "Token $accessToken"}],
        }
    )
    assert notifier.tokenPayload == '{"user":"svc","secret":"p"}'
    assert send(outbound(f"{sink.url}/tickets", notifier)).http_status == 200
    token_request, delivery = sink.requests
    assert token_request.json() == {"user": "svc", "secret": "p"}
    assert token_request.header("X-Tenant") == "acme"
    assert delivery.header("X-Auth") == f"Token {endpoint.issued[0]}"
    with pytest.raises(ValueError, match="between 1 and 10"):
        Notifier.model_validate({"authType": "JWT", "tokensPath": []})
