"""OpsRamp's template functions, ``$utils`` and ``$esc``, in payloads and URLs."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest

from rules.errors import RuleError
from rules.functions import java_date
from rules.render import _render_in_sandbox, referenced_names, render, validate_template
from rules.scan import Syntax
from rules.url import referenced_names as url_names
from rules.url import render_url

DATA = {
    "id": "INC-7",
    "subject": 'Disk "C:\\" full',
    "description": "line one\nline two <b> & ü",
    "createdDate": "2026-12-01T09:05:03.250Z",
    "attachments": [{"fileName": "log.txt", "contentType": "text/plain", "data": "aGk="}],
    "url": "https://ops.example.invalid/tickets/INC-7",
}
EXTRA = {"extTicketId": "T-42", "installedAppId": "INTG-1", "entity": "INCIDENT"}


def _json(template: str) -> dict[str, object]:
    out = render(template, entity="INCIDENT", data=DATA, extra=EXTRA)
    parsed: dict[str, object] = json.loads(out.body)
    return parsed


def test_utils_functions_as_opsramp_templates_call_them() -> None:
    body = _json(
        '{"ticket": "$utils.extEntityId($incident.id, $installedAppId, $entity)",'
        ' "when": "$utils.convertDate($incident.createdDate, \'yyyy-MM-dd HH:mm:ss\')",'
        ' "paris": "$utils.convertDate($incident.createdDate, "dd/MM/yy HH:mm z", '
        '"Europe/Paris")",'
        ' "link": "$utils.ticketAccessURL()",'
        ' "file": "$utils.attachmentFileName(0)", "type": "$utils.attachmentFileType()",'
        ' "data": "$utils.attachmentData(0)"}'
    )
    assert body == {
        "ticket": "T-42",
        "when": "2026-12-01 09:05:03",
        "paris": "01/12/26 10:05 CET",
        "link": "https://ops.example.invalid/tickets/INC-7",
        "file": "log.txt",
        "type": "text/plain",
        "data": "aGk=",
    }


def test_java_date_patterns() -> None:
    moment = datetime(2026, 3, 4, 15, 6, 7, 890000, tzinfo=UTC)
    assert java_date(moment, "yyyy-MM-dd'T'HH:mm:ss.SSSXXX") == "2026-03-04T15:06:07.890Z"
    assert java_date(moment, "EEE, d MMM yyyy hh:mm a") == "Wed, 4 Mar 2026 03:06 PM"
    assert java_date(moment, "EEEE MMMM ''yy") == "Wednesday March '26"
    with pytest.raises(ValueError, match="'Q'"):
        java_date(moment, "Q")
    # Epoch milliseconds convert too; something that is no date has no value.
    out = render(
        '{"a": "$utils.convertDate($incident.at, "yyyy")", "b": "$utils.convertDate($x, "y")"}',
        entity="INCIDENT",
        data={"at": 1796140870680},
        extra={"x": "not a date"},
    )
    assert json.loads(out.body) == {"a": "2026", "b": ""}
    assert any("has no value" in w for w in out.warnings)


def test_esc_is_never_applied_twice_and_the_payload_stays_well_formed() -> None:
    body = _json(
        '{"java": "$esc.java($incident.subject)", "json": "$esc.json($incident.description)",'
        ' "xml": "$esc.xml($incident.description)", "url": "$esc.url($incident.subject)",'
        ' "bare": $esc.json($incident.subject)}'
    )
    # Inside a JSON string, java and json escaping are the string's own: once.
    assert body["java"] == DATA["subject"]
    assert body["json"] == DATA["description"]
    assert body["bare"] == DATA["subject"]
    # XML escaping inside JSON: the XML-escaped text, as a valid JSON string.
    assert body["xml"] == "line one\nline two &lt;b&gt; &amp; ü"
    assert body["url"] == "Disk%20%22C%3A%5C%22%20full"
    # Java escapes non-ASCII as \\u: still valid JSON, the same text once parsed.
    raw = render('{"d": "$esc.java($incident.description)"}', entity="INCIDENT", data=DATA).body
    assert "\\u00FC" in raw and json.loads(raw)["d"] == DATA["description"]
    # In XML, $esc.xml is XML's own escaping: once.
    xml = render(
        "<t><d>$esc.xml($incident.description)</d><s>$incident.description</s></t>",
        entity="INCIDENT",
        data=DATA,
    ).body
    root = ET.fromstring(xml)
    assert root.findtext("d") == root.findtext("s") == DATA["description"]


def test_the_sandbox_renders_calls_like_the_fast_path() -> None:
    template = '{"t": "$utils.extEntityId($incident.id, $installedAppId, $entity)"}'
    fast = render(template, entity="INCIDENT", data=DATA, extra=EXTRA)
    slow = _render_in_sandbox(
        template, entity="INCIDENT", data=DATA, extra=EXTRA, syntax=Syntax.JSON
    )
    assert fast == slow
    mixed = render(
        '{% if incident.id %}{"t": "$esc.json($incident.subject)"}{% endif %}',
        entity="INCIDENT",
        data=DATA,
    )
    assert json.loads(mixed.body) == {"t": DATA["subject"]}


def test_calls_in_an_endpoint_url() -> None:
    url = "/tickets/$utils.extEntityId($incident.id, $installedAppId, $entity)/$esc.url($x)"
    out = render_url(url, entity="INCIDENT", data=DATA, extra={**EXTRA, "x": "a/b c"})
    assert out == "/tickets/T-42/a%2Fb%20c"  # $esc.url is the segment's escaping: once
    with pytest.raises(RuleError, match="extEntityId"):
        render_url(url, entity="INCIDENT", data=DATA, extra={"x": "y"})
    assert {"extEntityId", "extTicketId", "installedAppId", "entity", "x"} <= url_names(
        url, "INCIDENT"
    )


def test_a_call_reads_the_values_its_arguments_and_the_lookup_need() -> None:
    names = referenced_names(
        "$utils.extEntityId($incident.id, $installedAppId, $entity)", "INCIDENT"
    )
    assert names == {"extEntityId", "extTicketId", "installedAppId", "entity"}
    assert "utils" not in referenced_names("$utils.convertDate($incident.createdDate, 'y')", "X")


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (
            "$utils.nope($incident.id)",
            "$utils.nope is not a function; there are: $utils.extEntityId",
        ),
        ("$esc.html($incident.id)", "there are: $esc.java, $esc.json, $esc.xml, $esc.url"),
        ("$utils.convertDate", "is a function: call it as $utils.convertDate(...)"),
        ("$utils.convertDate($incident.createdDate)", "takes 2 to 3 arguments, not 1"),
        ("$esc.java($a, $b)", "takes 1 arguments, not 2"),
        ("$esc.java('open)", "unterminated string"),
        ("$esc.java($a $b)", "expected ',' or ')'"),
        ("$esc.java(%)", "expected a $placeholder, a quoted string or a number"),
    ],
)
def test_a_bad_call_is_an_error_at_save_naming_it(template: str, message: str) -> None:
    with pytest.raises(RuleError, match="payload") as caught:
        validate_template(template)
    assert message in str(caught.value)
