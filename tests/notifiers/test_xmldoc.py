"""XML responses as data: the shapes response capture reaches with dotted paths."""

from __future__ import annotations

from typing import Any

import pytest

from notifiers.capture import capture_value
from notifiers.xmldoc import MAX_DEPTH, to_data

ENVELOPE = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
    "<soap:Header><h:trace xmlns:h='urn:t'>t-1</h:trace></soap:Header>"
    "<soap:Body><ns:insertResponse xmlns:ns='urn:itsm'>"
    "<ns:sys_id>9d3c</ns:sys_id><ns:number>INC0010001</ns:number>"
    "</ns:insertResponse></soap:Body></soap:Envelope>"
)


@pytest.mark.parametrize(
    ("xml", "data"),
    [
        ("<ticket><id>7</id></ticket>", {"ticket": {"id": "7"}}),
        ("<id> 7 </id>", {"id": "7"}),
        ("<t><empty/></t>", {"t": {"empty": ""}}),
        ('<t id="7" state="new"/>', {"t": {"@id": "7", "@state": "new"}}),
        ('<t id="7">text</t>', {"t": {"@id": "7", "#text": "text"}}),
        (
            "<list><item><id>a</id></item><item><id>b</id></item><item><id>c</id></item></list>",
            {"list": {"item": [{"id": "a"}, {"id": "b"}, {"id": "c"}]}},
        ),
        (
            "<x:r xmlns:x='urn:x' xmlns:y='urn:y'><y:v>1</y:v></x:r>",
            {"r": {"v": "1"}},
        ),
        (
            ENVELOPE,
            {
                "insertResponse": {"sys_id": "9d3c", "number": "INC0010001"},
                "Envelope": {
                    "Header": {"trace": "t-1"},
                    "Body": {"insertResponse": {"sys_id": "9d3c", "number": "INC0010001"}},
                },
            },
        ),
    ],
)
def test_to_data(xml: str, data: dict[str, Any]) -> None:
    assert to_data(xml) == data
    assert to_data(xml.encode()) == data


@pytest.mark.parametrize(
    "body",
    [
        "",
        "plain text",
        '{"id": 1}',
        "<unclosed>",
        # Entity expansion is refused by defusedxml: no data rather than a billion laughs.
        '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><r>&b;</r>',
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
    ],
)
def test_not_xml_or_unsafe_is_none(body: str) -> None:
    assert to_data(body) is None


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("$insertResponse.sys_id", "9d3c"),
        ("$Envelope.Body.insertResponse.number", "INC0010001"),
        ("$envelope.header.trace", "t-1"),
        ("$insertResponse.missing", None),
    ],
)
def test_capture_from_a_soap_envelope(reference: str, expected: str | None) -> None:
    assert capture_value(reference, to_data(ENVELOPE), {}) == expected


def test_repeated_elements_are_indexed_like_json_lists() -> None:
    data = to_data("<r><item id='a'/><item id='b'/></r>")
    assert capture_value("$r.item.1.@id", data, {}) == "b"
    assert capture_value("$r.item[0].@id", data, {}) == "a"


def test_hostile_nesting_is_not_data_and_does_not_raise() -> None:
    """A few KB nested far deeper than any real answer (the stack would run out)."""
    deep = "<a>" * 5000 + "x" + "</a>" * 5000
    assert to_data(deep) is None
    assert to_data("<a>" * MAX_DEPTH + "x" + "</a>" * MAX_DEPTH) is not None
