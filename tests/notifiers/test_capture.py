from __future__ import annotations

from typing import Any

import pytest

from integrations.models import Header
from notifiers.capture import MISSING, capture, capture_value, resolve_path, split_path
from tests.notifiers.conftest import Send, outbound
from tests.support.sinks import RecordingSink, Reply

BODY: dict[str, Any] = {
    "id": "T-1",
    "Result": {"URL": "https://tickets.example/T-1", "number": 42, "open": True, "none": None},
    "items": [{"id": "a"}, {"id": "b", "tags": ["x", "y"]}],
    "id_exact": 1,
    "ID_EXACT": 2,
}
HEADERS = {"location": "https://tickets.example/T-1", "x-request-id": "r-9"}


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("$id", "T-1"),
        ("$result.url", "https://tickets.example/T-1"),
        ("$RESULT.Url", "https://tickets.example/T-1"),
        ("$result.number", "42"),
        ("$result.open", "true"),
        ("$result.none", None),
        ("$result.missing", None),
        ("$items[1].id", "b"),
        ("$items.0.id", "a"),
        ("$items[1].tags", '["x","y"]'),
        ("$items[5].id", None),
        ("$items.x", None),
        ("$id.deeper", None),
        ("$ID_EXACT", "2"),
        ("$id_exact", "1"),
        ("$header.Location", "https://tickets.example/T-1"),
        ("$headers.X-Request-ID", "r-9"),
        ("$header.Missing", None),
        ("literal value", "literal value"),
        ("$", "$"),
    ],
)
def test_capture_value(reference: str, expected: str | None) -> None:
    assert capture_value(reference, BODY, HEADERS) == expected


def test_capture_omits_missing_and_accepts_dicts_or_headers() -> None:
    mappings = [
        Header(key="extTicketId", value="$id"),
        {"key": "extTicketURL", "value": "$result.url"},
        Header(key="gone", value="$nope"),
        Header(key="source", value="herald"),
    ]
    assert capture(mappings, BODY, HEADERS) == {
        "extTicketId": "T-1",
        "extTicketURL": "https://tickets.example/T-1",
        "source": "herald",
    }


def test_non_json_body() -> None:
    assert capture([Header(key="a", value="$id")], None, {}) == {}
    assert resolve_path("text", "id") is MISSING
    assert split_path("a[0].b..c") == ["a", "0", "b", "c"]


def test_round_trip_against_a_sink(send: Send, sink: RecordingSink) -> None:
    sink.reply(
        Reply.json(
            {"id": "T-1", "result": {"url": "https://t.example/T-1"}},
            status=201,
            Location="/tickets/T-1",
        )
    )
    response = send(outbound(f"{sink.url}/tickets"))
    assert response.http_status == 201
    assert response.capture(
        [
            Header(key="extTicketId", value="$id"),
            Header(key="extTicketURL", value="$result.url"),
            Header(key="where", value="$header.location"),
        ]
    ) == {"extTicketId": "T-1", "extTicketURL": "https://t.example/T-1", "where": "/tickets/T-1"}


@pytest.mark.parametrize(
    "body",
    ["<a>" * 5000 + "</a>" * 5000, "[" * 100_000 + "]" * 100_000],
    ids=["xml", "json"],
)
def test_a_hostile_2xx_body_is_still_a_success(send: Send, sink: RecordingSink, body: str) -> None:
    """The endpoint accepted the request; a body nested too deep to decode means nothing to
    capture, never a failed (and then repeated) delivery."""
    sink.reply(Reply(status=200, body=body))
    response = send(outbound(f"{sink.url}/tickets"))
    assert response.http_status == 200 and response.json_body is None
    assert response.capture([Header(key="id", value="$a.id")]) == {}
