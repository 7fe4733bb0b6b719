"""Placeholders in endpoint URLs."""

from __future__ import annotations

import pytest

from integrations.enums import Entity
from rules.errors import RuleError
from rules.url import render_url


@pytest.mark.parametrize(
    ("url", "extra", "expected"),
    [
        ("https://t.example/api/tickets", {}, "https://t.example/api/tickets"),
        ("/tickets/$extTicketId", {"extTicketId": "T-42"}, "/tickets/T-42"),
        ("/tickets/$extTicketId", {"extTicketId": "a/../b c"}, "/tickets/a%2F..%2Fb%20c"),
        ("/incidents/$incident.id/notes", {}, "/incidents/INC-1/notes"),
        ("/q?p=$incident.priority.name", {}, "/q?p=P%201"),
    ],
)
def test_render_url(url: str, extra: dict[str, str], expected: str) -> None:
    data = {"id": "INC-1", "priority": {"name": "P 1"}}
    assert render_url(url, entity=Entity.INCIDENT, data=data, extra=extra) == expected


def test_a_token_without_value_is_an_error_naming_it() -> None:
    with pytest.raises(RuleError, match=r"\$extTicketId has no value"):
        render_url("/tickets/$extTicketId", entity=Entity.INCIDENT, data={})
