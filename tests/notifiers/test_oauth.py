"""OAUTH2 against a real authlib token server, tokens cached in the real Redis."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import redis

from integrations.config import Settings
from integrations.errors import (
    AuthenticationFailed,
    NotifierMisconfigured,
    PermanentError,
    TokenEndpointUnavailable,
)
from integrations.models import IntegrationEventIn, Notifier
from notifiers.auth import (
    Authenticator,
    CachedToken,
    NotifierAuth,
    OAuth2Config,
    effective_grant,
    token_from_response,
)
from notifiers.safety import GuardedTransport
from notifiers.sender import MAX_RESPONSE_BYTES, Sender
from notifiers.urls import resolve_url
from tests.notifiers.conftest import Send, SendPath, outbound
from tests.support.oauth_server import OAuthServer
from tests.support.sinks import RecordingSink, Reply


class Clock:
    """An epoch clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


ClockedSend = tuple[Send, Clock]


@pytest.fixture
def clocked(settings: Settings, redis_client: redis.Redis, path: SendPath) -> Iterator[ClockedSend]:
    """A ``send`` through a Sender whose token clock the test moves."""
    clock = Clock()
    with Sender(settings, redis_client, now=clock) as sender:
        yield (lambda request: path(sender, request)), clock


def oauth_notifier(server: OAuthServer, grant: str | None, **overrides: Any) -> Notifier:
    fields: dict[str, Any] = {
        "authType": "OAUTH2",
        "grantType": grant,
        "accessTokenURL": server.token_url,
        "apiKey": "herald",
        "apiSecret": "s3cret-client",
    }
    if grant in ("PASSWORD", "REFRESH_TOKEN"):
        fields |= {"userName": "alice", "password": "alice-pw"}
    fields.update(overrides)
    return Notifier(**fields)


@pytest.mark.parametrize(
    ("grant", "wire_grant", "user"),
    [
        ("CLIENT_CREDENTIALS", "client_credentials", None),
        ("PASSWORD", "password", "alice"),
        ("REFRESH_TOKEN", "password", "alice"),  # the first token comes from the password grant
    ],
)
def test_each_grant(
    send: Send, oauth: OAuthServer, grant: str, wire_grant: str, user: str | None
) -> None:
    response = send(outbound(oauth.resource_url, oauth_notifier(oauth, grant)))
    assert response.json_body == {"id": "T-1", "result": {"url": f"{oauth.url}/tickets/T-1"}}
    assert oauth.token_requests == {wire_grant: 1}
    [seen] = oauth.resource_requests
    assert seen["user"] == user
    assert seen["headers"]["Authorization"].startswith("Bearer ")
    assert response.request_headers["authorization"] == "***"


def test_one_token_request_for_many_concurrent_deliveries(
    settings: Settings, redis_client: redis.Redis, oauth: OAuthServer, path: SendPath
) -> None:
    # Four "worker processes" (separate Senders, one Redis) delivering 20 events at once.
    senders = [Sender(settings, redis_client) for _ in range(4)]
    notifier = oauth_notifier(oauth, "CLIENT_CREDENTIALS")
    barrier = threading.Barrier(20)

    def deliver(i: int) -> int:
        barrier.wait()
        return path(senders[i % 4], outbound(oauth.resource_url, notifier)).http_status

    try:
        with ThreadPoolExecutor(max_workers=20) as pool:
            statuses = list(pool.map(deliver, range(20)))
    finally:
        for s in senders:
            s.close()
    assert statuses == [200] * 20
    assert oauth.total_token_requests == 1
    assert len(oauth.resource_requests) == 20


def test_in_process_cache_without_redis(
    settings: Settings, oauth: OAuthServer, path: SendPath
) -> None:
    with Sender(settings) as sender:
        for _ in range(5):
            path(sender, outbound(oauth.resource_url, oauth_notifier(oauth, "PASSWORD")))
    assert oauth.token_requests == {"password": 1}


def test_renewal_before_expiry(clocked: ClockedSend, oauth: OAuthServer) -> None:
    send, clock = clocked
    oauth.expires_in = 100
    notifier = oauth_notifier(oauth, "CLIENT_CREDENTIALS")
    send(outbound(oauth.resource_url, notifier))
    clock.advance(89.0)  # still before the renewal point (expiry minus 10 %)
    send(outbound(oauth.resource_url, notifier))
    assert oauth.total_token_requests == 1
    clock.advance(2.0)  # past it, though the token has not expired yet
    send(outbound(oauth.resource_url, notifier))
    assert oauth.token_requests == {"client_credentials": 2}
    assert len(oauth.resource_requests) == 3  # never a 401 on the way


def test_refresh_token_grant_renews_with_the_refresh_token(
    clocked: ClockedSend, oauth: OAuthServer
) -> None:
    send, clock = clocked
    notifier = oauth_notifier(oauth, "REFRESH_TOKEN")
    send(outbound(oauth.resource_url, notifier))
    clock.advance(3600.0)  # the access token has expired
    send(outbound(oauth.resource_url, notifier))
    assert oauth.token_requests == {"password": 1, "refresh_token": 1}
    assert len(oauth.resource_requests) == 2


def test_rejected_refresh_token_falls_back_to_password_once(send: Send, oauth: OAuthServer) -> None:
    notifier = oauth_notifier(oauth, "REFRESH_TOKEN")
    send(outbound(oauth.resource_url, notifier))
    oauth.revoke()  # the access token: the endpoint answers 401
    oauth.revoke_refresh_tokens()  # and the refresh token: invalid_grant
    send(outbound(oauth.resource_url, notifier))
    assert oauth.token_requests == {"password": 2, "refresh_token": 1}
    assert len(oauth.resource_requests) == 2


def test_recovery_after_401(send: Send, oauth: OAuthServer) -> None:
    notifier = oauth_notifier(oauth, "PASSWORD")
    send(outbound(oauth.resource_url, notifier))
    oauth.revoke()  # server-side: the cached token is now refused with 401
    response = send(outbound(oauth.resource_url, notifier))
    assert response.http_status == 200
    assert oauth.token_requests == {"password": 2}
    first, second = (r["headers"]["Authorization"] for r in oauth.resource_requests)
    assert first != second


def test_persistent_401_fails_after_one_renewal(
    send: Send, oauth: OAuthServer, sink: RecordingSink
) -> None:
    sink.respond_with(Reply(401, [("WWW-Authenticate", 'Bearer error="invalid_token"')]))
    with pytest.raises(PermanentError) as info:
        send(outbound(sink.url, oauth_notifier(oauth, "CLIENT_CREDENTIALS")))
    assert info.value.error_class == "http_401"
    assert "freshly obtained token" in info.value.reason
    assert sink.count == 2
    assert oauth.total_token_requests == 2
    tokens = {r.header("Authorization") for r in sink.requests}
    assert len(tokens) == 2


def test_invalid_client(send: Send, oauth: OAuthServer) -> None:
    notifier = oauth_notifier(oauth, "CLIENT_CREDENTIALS", apiSecret="wrong")
    with pytest.raises(AuthenticationFailed) as info:
        send(outbound(oauth.resource_url, notifier))
    assert "refused the credentials: invalid_client" in info.value.reason
    assert "wrong" not in info.value.reason
    assert not oauth.resource_requests


def test_invalid_user(send: Send, oauth: OAuthServer) -> None:
    notifier = oauth_notifier(oauth, "PASSWORD", password="not-alice")
    with pytest.raises(AuthenticationFailed) as info:
        send(outbound(oauth.resource_url, notifier))
    assert "invalid_request" in info.value.reason or "invalid_grant" in info.value.reason


def test_unauthorized_client(send: Send, oauth: OAuthServer) -> None:
    oauth.add_client("cc-only", "pw-cc", grants=("client_credentials",))
    notifier = oauth_notifier(oauth, "PASSWORD", apiKey="cc-only", apiSecret="pw-cc")
    with pytest.raises(AuthenticationFailed, match="unauthorized_client"):
        send(outbound(oauth.resource_url, notifier))


def test_client_secret_post_only_server(send: Send, oauth: OAuthServer) -> None:
    oauth.add_client("post-only", "pw-post", auth_methods=("client_secret_post",))
    notifier = oauth_notifier(oauth, "CLIENT_CREDENTIALS", apiKey="post-only", apiSecret="pw-post")
    send(outbound(oauth.resource_url, notifier))
    assert oauth.total_token_requests == 2  # basic refused, then post
    oauth.revoke()
    send(outbound(oauth.resource_url, notifier))
    assert oauth.total_token_requests == 3  # the working method is remembered


def test_public_client_password_grant(send: Send, oauth: OAuthServer) -> None:
    oauth.add_client("public", None, auth_methods=("none",))
    notifier = oauth_notifier(oauth, "PASSWORD", apiKey="public", apiSecret=None)
    assert send(outbound(oauth.resource_url, notifier)).http_status == 200


def test_token_endpoint_down(send: Send, oauth: OAuthServer) -> None:
    oauth.down = True
    with pytest.raises(TokenEndpointUnavailable) as info:
        send(outbound(oauth.resource_url, oauth_notifier(oauth, "CLIENT_CREDENTIALS")))
    assert info.value.http_status == 503
    assert info.value.retry_after == 7
    assert not oauth.resource_requests
    oauth.down = False
    assert (
        send(outbound(oauth.resource_url, oauth_notifier(oauth, "CLIENT_CREDENTIALS"))).http_status
        == 200
    )


def test_token_endpoint_unreachable(send: Send, sink: RecordingSink) -> None:
    sink.stop()  # nothing listens there any more
    notifier = Notifier(
        authType="OAUTH2",
        grantType="CLIENT_CREDENTIALS",
        accessTokenURL=f"{sink.url}/token",
        apiKey="a",
        apiSecret="b",
    )
    with pytest.raises(TokenEndpointUnavailable, match="unreachable"):
        send(outbound(sink.url, notifier))


@pytest.mark.parametrize(
    ("reply", "kind", "needle"),
    [
        (Reply(404, body="<html>nope</html>"), AuthenticationFailed, "HTTP 404"),
        (Reply(200, body="<html>login page</html>"), AuthenticationFailed, "without a JSON token"),
        (Reply.json({"token_type": "bearer"}), AuthenticationFailed, "without an access_token"),
        (Reply.redirect("/login"), AuthenticationFailed, "redirect to /login not followed"),
        (Reply(429, [("Retry-After", "3")]), TokenEndpointUnavailable, "HTTP 429"),
        (
            Reply.json(
                {"error": "invalid_grant", "error_description": 'bad "pw"\r\nTrace: 1'}, 400
            ),
            AuthenticationFailed,
            'invalid_grant (bad "pw"',
        ),
    ],
)
def test_odd_token_endpoints(
    send: Send, sink: RecordingSink, reply: Reply, kind: type[Exception], needle: str
) -> None:
    sink.reply(reply)
    notifier = Notifier(
        authType="OAUTH2",
        grantType="PASSWORD",
        accessTokenURL=f"{sink.url}/token",
        apiKey="a",
        userName="u",
        password="p",
    )
    with pytest.raises(kind) as info:
        send(outbound(f"{sink.url}/resource", notifier))
    assert needle in str(info.value)
    assert [r.path for r in sink.requests] == ["/token"]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (
            {"grantType": "CLIENT_CREDENTIALS", "apiKey": "a", "apiSecret": "b"},
            "notifier.accessTokenURL is required for OAUTH2 grant CLIENT_CREDENTIALS",
        ),
        (
            {"grantType": "CLIENT_CREDENTIALS", "accessTokenURL": "https://t.example/token"},
            "notifier.apiKey is required for OAUTH2 grant CLIENT_CREDENTIALS"
            "; also missing: notifier.apiSecret",
        ),
        (
            {"grantType": "PASSWORD", "accessTokenURL": "https://t.example/t", "apiKey": "a"},
            "notifier.userName is required for OAUTH2 grant PASSWORD"
            "; also missing: notifier.password",
        ),
        (
            {"accessTokenURL": "https://t.example/t", "apiKey": "a"},
            "notifier.apiSecret is required for OAUTH2 grant CLIENT_CREDENTIALS"
            " (defaulted: grantType unset)",
        ),
        (
            {
                "grantType": "PASSWORD",
                "accessTokenURL": "/relative",
                "apiKey": "a",
                "userName": "u",
                "password": "p",
            },
            "notifier.accessTokenURL: endPointURI '/relative' is a relative path"
            " and notifier.baseURI is not set",
        ),
    ],
)
def test_misconfigured(fields: dict[str, str], reason: str) -> None:
    with pytest.raises(NotifierMisconfigured) as info:
        OAuth2Config.from_notifier(Notifier(authType="OAUTH2", **fields))
    assert info.value.reason == reason


# The seed's first sample, verbatim (shared/seed/create-integration-event.txt).
SEED_SAMPLE = {
    "name": "Create event",
    "entity": "INCIDENT",
    "eventType": "CREATE",
    "notifier": {
        "type": "SOAP_API",
        "baseURI": "www.google.com",
        "authType": "OAUTH2",
        "userName": "testUser",
        "password": "test",
    },
    "endPointURI": "www.google.com/update",
    "headers": [
        {"key": "accept", "value": "application/json"},
        {"key": "Content-Type", "value": "application/json"},
    ],
    "thirdPartyEventType": "POST",
    "payload": "ew0KInN1YmplY3QiOiIkaW5jaWRlbnQuc3ViamVjdCIsDQoiZGVzY3JpcHRpb24iOiIkaW5jaWRlbnQu"
    "aW1wYWN0IiwNCiJwcmlvcml0eSI6IiRpbmNpZGVudC5wcmlvcml0eS5uYW1lIg0KInN0YXV0cyI6ImhpZ2giDQp9",
}


def test_seed_sample_fails_permanently_without_any_connection(settings: Settings) -> None:
    event = IntegrationEventIn.model_validate(SEED_SAMPLE)
    assert event.notifier is not None
    assert effective_grant(event.notifier).value == "PASSWORD"
    url = resolve_url(event.notifier.baseURI, event.endPointURI)
    assert url == "https://www.google.com/update"
    attempts: list[httpx.Request] = []

    def must_not_be_called(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        raise AssertionError("the seed's notifier must fail before any request")

    request = outbound(
        url,
        event.notifier,
        method=event.thirdPartyEventType,
        body=event.template,
        headers=[(h.key, h.value) for h in event.headers],
    )
    transport = httpx.MockTransport(must_not_be_called)
    with (
        Sender(settings, transport=transport) as sender,
        pytest.raises(NotifierMisconfigured) as info,
    ):
        sender.send(request)
    assert info.value.reason == (
        "notifier.accessTokenURL is required for OAUTH2 grant PASSWORD"
        " (defaulted: grantType unset); also missing: notifier.apiKey"
    )
    assert info.value.error_class == "notifier_misconfigured"
    assert attempts == []


def test_cache_keys_hold_no_secret_and_tokens_are_not_logged(
    send: Send,
    oauth: OAuthServer,
    redis_client: redis.Redis,
    redis_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    send(outbound(oauth.resource_url, oauth_notifier(oauth, "REFRESH_TOKEN")))
    keys = sorted(k.decode() for k in redis_client.scan_iter(match=f"{redis_prefix}:oauth:*"))
    assert len(keys) == 2 and keys[1] == keys[0] + ":refresh"
    for key in keys:
        for secret in ("s3cret-client", "alice-pw", "alice", "herald"):
            assert secret not in key.removeprefix(redis_prefix)
    cached = CachedToken.loads(redis_client.get(keys[0]) or b"")
    assert cached is not None
    assert 0 < redis_client.pttl(keys[0]) <= 3600_000
    [issued, *_] = oauth.tokens
    assert cached.access_token == issued.access_token
    # Everything Herald's side logged (the authlib *server* in this process logs its tokens).
    client_side = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith("authlib")
    )
    assert "obtained OAuth2 token" in client_side
    for secret in (issued.access_token, issued.refresh_token or "-", "s3cret-client", "alice-pw"):
        assert secret not in client_side


def test_different_secrets_never_share_a_token(send: Send, oauth: OAuthServer) -> None:
    send(outbound(oauth.resource_url, oauth_notifier(oauth, "CLIENT_CREDENTIALS")))
    with pytest.raises(AuthenticationFailed):
        send(
            outbound(
                oauth.resource_url, oauth_notifier(oauth, "CLIENT_CREDENTIALS", apiSecret="guess")
            )
        )


def test_token_from_response_is_pure() -> None:
    token = token_from_response({"access_token": "a", "expires_in": "100"}, now=1000.0)
    assert (token.expires_at, token.renew_at) == (1100.0, 1090.0)
    long = token_from_response({"access_token": "a", "expires_in": 7200}, now=0.0)
    assert long.renew_at == 7200 - 30  # the margin is capped at 30 s
    default = token_from_response({"access_token": "a"}, now=0.0)
    assert default.expires_at == 3600
    with pytest.raises(AuthenticationFailed):
        token_from_response({"token_type": "bearer"}, now=0.0)


def test_a_huge_401_body_is_cut_before_the_retry(
    settings: Settings, oauth: OAuthServer, sink: RecordingSink
) -> None:
    # httpx reads a 401's body in full before the flow's retry; the flow caps it first.
    sink.reply(Reply(401, body=b"x" * (3 * MAX_RESPONSE_BYTES)))
    with httpx.Client(transport=GuardedTransport(settings.allowed_networks)) as client:
        auth = NotifierAuth(
            Authenticator(settings, client), oauth_notifier(oauth, "CLIENT_CREDENTIALS")
        )
        response = client.get(sink.url, auth=auth)
    assert response.status_code == 200 and auth.renewed
    [refused] = response.history
    assert MAX_RESPONSE_BYTES <= len(refused.content) < 2 * MAX_RESPONSE_BYTES
    assert sink.count == 2
