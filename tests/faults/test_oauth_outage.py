"""The OAuth2 token server of a notifier being down, then back."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from tests.faults.harness import Responder, Rig, Sink, report
from tests.support.oauth_server import OAuthServer
from tests.support.processes import wait_for

#: The test token server answers 503 with ``Retry-After: 7`` while down.
TOKEN_RETRY_AFTER = 7.0


@pytest.fixture
def oauth() -> Iterator[OAuthServer]:
    with OAuthServer() as server:
        server.add_client("herald", "s3cret-client")
        yield server


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_token_server_outage_is_retried_and_delivered_once_it_is_back(
    make_rig: Callable[..., Rig], sink: Sink, responder: Responder, oauth: OAuthServer
) -> None:
    """Deliveries through an OAUTH2 CLIENT_CREDENTIALS notifier while the token endpoint
    answers 503: nothing is sent without a token, each attempt is recorded as
    ``token_unavailable`` and retried no sooner than the token server's ``Retry-After``, and
    every delivery arrives with a token issued after the server came back."""
    rig = make_rig()
    notifier = {
        "type": "REST_API",
        "baseURI": sink.url,
        "authType": "OAUTH2",
        "grantType": "CLIENT_CREDENTIALS",
        "accessTokenURL": oauth.token_url,
        "apiKey": "herald",
        "apiSecret": "s3cret-client",
    }
    event = rig.rest_event(sink.url, notifier=notifier)
    rig.start_worker("w1", concurrency=2)
    oauth.down = True
    expected = rig.delivery_ids(rig.publish(f"oauth-{i:03d}" for i in range(8)), event)

    def all_failed_for_a_token() -> bool:
        rows = rig.deliveries(expected).values()
        return all(
            r is not None and r.attempt_log and r.attempt_log[0].error_class == "token_unavailable"
            for r in rows
        )

    wait_for(all_failed_for_a_token, 30, what="every delivery refused a token")
    sent_while_down = len(responder.answers)
    oauth.down = False
    up_at = time.monotonic()
    rig.wait_delivered(responder, expected, timeout=60)
    recovery = time.monotonic() - up_at

    issued = {t.access_token for t in oauth.tokens}
    rows = [r for r in rig.deliveries(expected).values() if r is not None]
    gaps = [
        (r.attempt_log[1].started_at - r.attempt_log[0].started_at).total_seconds() for r in rows
    ]
    report(
        "oauth token server down",
        messages=len(expected),
        token_requests=oauth.total_token_requests,
        min_gap_s=min(gaps),
        duplicates=responder.duplicates(),
        recovery_s=recovery,
    )
    assert sent_while_down == 0, "nothing may be sent without a token"
    assert responder.duplicates() == 0
    assert issued, "a token was issued once the server was back"
    bearers = [a.request.header("authorization") for a in responder.answers]
    assert bearers and all(b and b.removeprefix("Bearer ") in issued for b in bearers)
    for row in rows:
        *failed, last = row.attempt_log
        assert all(a.error_class == "token_unavailable" for a in failed)
        assert last.outcome == "success"
    # The token endpoint's Retry-After (7 s) wins over the schedule's first delay (0.5 s).
    assert min(gaps) >= TOKEN_RETRY_AFTER - 0.05
