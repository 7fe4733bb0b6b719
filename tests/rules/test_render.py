"""rules.render: $ placeholders and sandboxed Jinja, escaped for JSON, XML or text."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from jinja2.exceptions import SecurityError

from integrations.enums import Entity
from integrations.models import decode_payload
from rules.errors import RuleError
from rules.render import Rendered, Syntax, detect_syntax, render, validate_template

# Base64 payloads copied verbatim from shared/seed/create-integration-event.txt. The seed's
# first two requests carry the same payload, which misses a comma before "stauts".
SEED_INCIDENT_PAYLOAD = (
    "ew0KInN1YmplY3QiOiIkaW5jaWRlbnQuc3ViamVjdCIsDQoiZGVzY3JpcHRpb24iOiIkaW5jaWRlbnQuaW1wYWN0Iiw"
    "NCiJwcmlvcml0eSI6IiRpbmNpZGVudC5wcmlvcml0eS5uYW1lIg0KInN0YXV0cyI6ImhpZ2giDQp9"
)
SEED_ALERT_PAYLOAD = (
    "ewoJInNlcnZpY2VOYW1lIjoiJGFsZXJ0LnNlcnZpY2VOYW1lIiwKCSJyZXNvdXJjZSI6ewoJCSJpZCI6IiRhbGVydC5y"
    "ZXNvdXJjZUlkIgoJfSwKCSJzdWJqZWN0IjoiJGFsZXJ0LnN1YmplY3QiLAogICAgICAgICJjdXJyZW50U3RhdGUiOiIk"
    "YWxlcnQuY3VycmVudFN0YXRlIiwKCSJhcHAiOiJPUFNSQU1QIgp9"
)
# The first sample's response echoes its template as this valid-JSON eventPayload.
SEED_FIRST_EVENT_PAYLOAD = (
    '{\r\n"subject":"$incident.subject",\r\n"description":"$incident.impact",'
    '\r\n"priority":"$incident.priority.name"\r\n}'
)

INCIDENT: dict[str, Any] = {
    "subject": 'Disk "C:\\" is full\nsecond line\t\x01',
    "impact": "High — ünïcödé 🚨",
    "priority": {"name": "P1", "level": 1},
    "count": 3,
    "ratio": 0.25,
    "open": True,
    "closedAt": None,
    "tags": ["db", "prod"],
    "meta": {"a": [1, "x"]},
}


def render_incident(template: str, **kwargs: Any) -> Rendered:
    return render(template, entity=Entity.INCIDENT, data=INCIDENT, **kwargs)


# --- the seed's samples ---------------------------------------------------------------------


def test_seed_first_sample_renders_valid_json() -> None:
    result = render_incident(SEED_FIRST_EVENT_PAYLOAD)
    assert result.warnings == ()
    assert json.loads(result.body) == {
        "subject": INCIDENT["subject"],
        "description": INCIDENT["impact"],
        "priority": "P1",
    }


def test_seed_second_sample_misses_a_comma_and_still_renders() -> None:
    template = decode_payload(SEED_INCIDENT_PAYLOAD)
    assert '"priority":"$incident.priority.name"\r\n"stauts"' in template  # the missing comma
    result = render_incident(template)
    assert result.warnings == ()
    assert '"priority":"P1"\n"stauts":"high"' in result.body
    # Every value was escaped correctly: adding the missing comma yields the intended JSON.
    fixed = result.body.replace('"P1"\n"stauts"', '"P1",\n"stauts"')
    assert json.loads(fixed) == {
        "subject": INCIDENT["subject"],
        "description": INCIDENT["impact"],
        "priority": "P1",
        "stauts": "high",
    }


def test_seed_third_sample_renders_alert_as_valid_json() -> None:
    alert = {
        "serviceName": 'Web "frontend"',
        "resourceId": "5d6c2c2b-…",
        "subject": "CPU > 90% on web-01\\prod",
        "currentState": "CRITICAL",
    }
    result = render(decode_payload(SEED_ALERT_PAYLOAD), entity=Entity.ALERT, data=alert)
    assert result.warnings == ()
    assert json.loads(result.body) == {
        "serviceName": alert["serviceName"],
        "resource": {"id": alert["resourceId"]},
        "subject": alert["subject"],
        "currentState": "CRITICAL",
        "app": "OPSRAMP",
    }


def test_seed_sample_without_data_renders_empty_strings_with_warnings() -> None:
    result = render(decode_payload(SEED_ALERT_PAYLOAD), entity=Entity.ALERT, data={})
    assert json.loads(result.body)["resource"] == {"id": ""}
    assert result.warnings == (
        "$alert.serviceName has no value",
        "$alert.resourceId has no value",
        "$alert.subject has no value",
        "$alert.currentState has no value",
    )


# --- placeholders ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "body", "warnings"),
    [
        ("$incident.priority.name", "P1", ()),
        ("$Incident.Priority.NAME", "P1", ()),  # case-insensitive all the way
        ("$incident.tags.1", "prod", ()),
        ("$incident.tags", '["db","prod"]', ()),
        ("Cost: $5 or US$ 5 or $", "Cost: $5 or US$ 5 or $", ()),
        ("$$incident.count", "$3", ()),
        ("$incident.count.", "3.", ()),  # a trailing dot ends the sentence, not the path
        ("$incident.impactful", "", ("$incident.impactful has no value",)),
        ("[$incident.closedAt]", "[null]", ("$incident.closedAt has no value",)),
        (
            "$USD and $schema",
            "$USD and $schema",
            (
                "$USD is not a known placeholder; left as written",
                "$schema is not a known placeholder; left as written",
            ),
        ),
        (
            "$alert.subject",
            "$alert.subject",
            ("$alert.subject is not a known placeholder; left as written",),
        ),
        ("$incident.nope $incident.nope", " ", ("$incident.nope has no value",)),  # once
    ],
)
def test_placeholders(template: str, body: str, warnings: tuple[str, ...]) -> None:
    assert render_incident(template) == Rendered(body, warnings)


def test_missing_token_renders_empty_with_warning() -> None:
    result = render_incident('{"description":"$incident.missing","n":$incident.missing}')
    assert result.body == '{"description":"","n":null}'
    assert result.warnings == ("$incident.missing has no value",)
    assert json.loads(result.body) == {"description": "", "n": None}


def test_extra_variables_and_entity_token_precedence() -> None:
    result = render(
        '{"ticket":"$extTicketId","id":$extTicketId,"s":"$incident.subject"}',
        entity=Entity.INCIDENT,
        data={"subject": "from data"},
        extra={"extTicketId": "INC-7", "incident": {"subject": "from extra"}},
    )
    assert json.loads(result.body) == {"ticket": "INC-7", "id": "INC-7", "s": "from data"}


def test_service_request_token() -> None:
    result = render(
        "$servicerequest.subject / {{ servicerequest.subject }}",
        entity=Entity.SERVICEREQUEST,
        data={"subject": "New laptop"},
    )
    assert result.body == "New laptop / New laptop"


def test_same_template_renders_each_message_afresh() -> None:
    template = '{"s":"$incident.subject","u":"{{ incident.subject | upper }}"}'
    first = render(template, entity=Entity.INCIDENT, data={"subject": "one"})
    second = render(template, entity=Entity.INCIDENT, data={"subject": "two"})
    assert json.loads(first.body) == {"s": "one", "u": "ONE"}
    assert json.loads(second.body) == {"s": "two", "u": "TWO"}


# --- JSON context ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        # outside strings: JSON literals
        ("$incident.count", 3),
        ("$incident.ratio", 0.25),
        ("$incident.open", True),
        ("$incident.closedAt", None),
        ("$incident.priority", {"name": "P1", "level": 1}),
        ("$incident.tags", ["db", "prod"]),
        ("$incident.priority.name", "P1"),
        ("{{ incident.count + 1 }}", 4),
        ("{{ incident.priority }}", {"name": "P1", "level": 1}),
        ("{{ {'a': {'b': 1}} }}", {"a": {"b": 1}}),
        ("{{ incident.priority | tojson }}", {"name": "P1", "level": 1}),
        # inside strings: text
        ('"$incident.count"', "3"),
        ('"$incident.open"', "true"),
        ('"$incident.closedAt"', ""),
        ('"$incident.meta"', '{"a":[1,"x"]}'),
        ('"{{ incident.tags }}"', '["db","prod"]'),
        ('"{{ incident.subject | upper }}"', INCIDENT["subject"].upper()),
        ('"{{ "}}" }}"', "}}"),
        ('"say \\"$incident.priority.name\\""', 'say "P1"'),  # escaped quotes stay in string
        ('"C:\\\\$incident.priority.name"', "C:\\P1"),  # escaped backslash stays in string
    ],
)
def test_json_escaping_by_context(template: str, expected: Any) -> None:
    result = render_incident("[" + template + "]")
    assert json.loads(result.body) == [expected]


def test_awkward_values_stay_valid_json() -> None:
    nasty = 'quote " backslash \\ slash / nl \n cr \r tab \t nul \x00 bell \x07 del \x7f é 中 😀'
    result = render(
        '{"a":"$incident.v","b":$incident.v,"c":"{{ incident.v }}","d":{{ incident.v }}}',
        entity=Entity.INCIDENT,
        data={"v": nasty},
    )
    assert json.loads(result.body) == {"a": nasty, "b": nasty, "c": nasty, "d": nasty}
    assert "é 中 😀" in result.body  # unicode kept readable, not \u-escaped


def test_lone_surrogate_is_escaped_in_json() -> None:
    result = render('{"s":"$incident.s"}', entity=Entity.INCIDENT, data={"s": "a\ud800b"})
    assert result.body == '{"s":"a\\ud800b"}'
    result.body.encode("utf-8")  # deliverable


def test_non_finite_numbers_become_null() -> None:
    result = render("[$incident.x]", entity=Entity.INCIDENT, data={"x": float("nan")})
    assert json.loads(result.body) == [None]


def test_jinja_blocks_and_comments_inside_json() -> None:
    template = (
        '{ {# a comment with "quotes" #}"tags":['
        '{% for t in incident.tags %}"{{ t }}"{% if not loop.last %},{% endif %}{% endfor %}],'
        '{% if incident.open %}"state":"open $incident.priority.name"{% else %}"state":"closed"'
        "{% endif %}}"
    )
    result = render(template, entity=Entity.INCIDENT, data={**INCIDENT, "tags": ['a"b', "c\\"]})
    assert json.loads(result.body) == {"tags": ['a"b', "c\\"], "state": "open P1"}


def test_raw_blocks_are_left_alone() -> None:
    result = render_incident(
        '{"t":"{% raw %}$incident.count {{ x }}{% endraw %}","n":$incident.count}'
    )
    assert json.loads(result.body) == {"t": "$incident.count {{ x }}", "n": 3}


def test_whitespace_control() -> None:
    result = render_incident('{"a": "x"   {{- " " -}}   , "n": 1}', syntax=Syntax.TEXT)
    assert result.body == '{"a": "x" , "n": 1}'


def test_trailing_newline_is_kept() -> None:
    assert render_incident("$incident.count\n").body == "3\n"


# --- native Jinja ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "body", "warnings"),
    [
        ("{{ incident.priority.name | upper }}", "P1", ()),
        ("{{ incident.Priority.Name | lower }}", "p1", ()),
        ("{{ incident['SUBJECT'][:4] }}", "Disk", ()),
        ("{{ incident.count * 2 }}", "6", ()),
        ("{{ incident.nope | default('n/a') }}", "n/a", ()),
        ("{{ incident.nope }}", "", ("{{ incident.nope }} has no value",)),
        ("{{ incident.nope.deeper[0] }}", "", ("{{ incident.nope.deeper[0] }} has no value",)),
        ("{{ incident.nope | upper }}", "", ("{{ incident.nope | upper }} has no value",)),
        ("{{ undefined_name }}", "", ("{{ undefined_name }} has no value",)),
        ("{{ incident.closedAt }}", "", ("{{ incident.closedAt }} has no value",)),
        ("{% if incident.nope %}yes{% else %}no{% endif %}", "no", ()),
        ("{% set s = incident.nope ~ '' %}{{ incident.count }}", "3", ()),
        ("{{ incident.tags | join(', ') }}", "db, prod", ()),
        ("{{ incident.open }}", "true", ()),
    ],
)
def test_native_jinja(template: str, body: str, warnings: tuple[str, ...]) -> None:
    assert render_incident(template, syntax=Syntax.TEXT) == Rendered(body, warnings)


def test_data_keys_win_over_dict_methods() -> None:
    data = {"items": "field value", "Keys": 2}
    result = render(
        "{{ incident.items }}/{{ incident.keys }}/$incident.items",
        entity=Entity.INCIDENT,
        data=data,
    )
    assert result.body == "field value/2/field value"


# --- XML and text ---------------------------------------------------------------------------


def test_xml_escaping() -> None:
    subject = "a < b && c > d \"q\" 'a'"
    data: dict[str, Any] = {"subject": subject, "id": 7}
    template = (
        "<?xml version='1.0'?><ticket id=\"$incident.id\" note='$incident.subject'>"
        "<subject>$incident.subject</subject><upper>{{ incident.subject | upper }}</upper>"
        "</ticket>"
    )
    result = render(template, entity=Entity.INCIDENT, data=data)
    assert "&lt; b &amp;&amp; c &gt; d &quot;q&quot; &apos;a&apos;" in result.body
    root = ET.fromstring(result.body)
    assert root.get("id") == "7"
    assert root.get("note") == subject
    assert root.findtext("subject") == subject
    assert root.findtext("upper") == subject.upper()


def test_xml_cdata_and_illegal_characters() -> None:
    data = {"s": "x]]>y <b>&\x01\r\n"}
    result = render(
        "<r><c><![CDATA[$incident.s]]></c><t>$incident.s</t></r>",
        entity=Entity.INCIDENT,
        data=data,
    )
    root = ET.fromstring(result.body)
    assert root.findtext("c") == "x]]>y <b>&\n"  # CDATA cannot protect \r: \r\n reads as \n
    assert root.findtext("t") == "x]]>y <b>&\r\n"
    assert result.warnings == ("$incident.s: dropped 1 character(s) not allowed in XML",)


def test_text_is_not_escaped() -> None:
    result = render(
        "Ticket $incident.subject: {{ incident.tags }} & <b>$incident.open</b>",
        entity=Entity.INCIDENT,
        data={"subject": 'say "hi"\n', "tags": ["a"], "open": False},
        syntax=Syntax.TEXT,
    )
    assert result.body == 'Ticket say "hi"\n: ["a"] & <b>false</b>'


@pytest.mark.parametrize(
    ("template", "content_type", "expected"),
    [
        ('{"a":1}', None, Syntax.JSON),
        ("  \r\n [1]", None, Syntax.JSON),
        ("\ufeff{}", None, Syntax.JSON),
        ("<soap:Envelope/>", None, Syntax.XML),
        ("Subject: $incident.subject", None, Syntax.TEXT),
        ("", None, Syntax.TEXT),
        ("{{ incident.subject }} was opened", None, Syntax.TEXT),
        ('{% if x %}{"a":1}{% endif %}', None, Syntax.JSON),
        ("{# note #}  <a/>", None, Syntax.XML),
        ("{{ incident | tojson }}", None, Syntax.TEXT),
        ("plain", "application/json", Syntax.JSON),
        ("plain", "application/vnd.api+JSON; charset=utf-8", Syntax.JSON),
        ("{}", "application/soap+xml", Syntax.XML),
        ("{}", "text/XML", Syntax.XML),
        ("<a/>", "text/plain", Syntax.XML),
        ("{}", "", Syntax.JSON),
    ],
)
def test_detect_syntax(template: str, content_type: str | None, expected: Syntax) -> None:
    assert detect_syntax(template, content_type) is expected


# --- validation, errors and the sandbox -----------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "",
        '{"a":"$incident.subject"}',
        "{% for t in incident.tags %}{{ t }}{% endfor %}",
        decode_payload(SEED_INCIDENT_PAYLOAD),
    ],
)
def test_valid_templates_pass_validation(template: str) -> None:
    validate_template(template)


@pytest.mark.parametrize(
    ("template", "line"),
    [
        ("{% if incident.open %}never closed", 1),
        ('{\n"a": "{{ incident.subject | nosuchfilter }}"\n}', 2),
        ("{{ incident.subject ", 1),
        ("line\n{{ a b }}", 2),
        ("{% raw %}unterminated", 1),
        ("{{ }}", 1),
    ],
)
def test_invalid_templates_are_rejected_at_save_time(template: str, line: int) -> None:
    with pytest.raises(RuleError) as caught:
        validate_template(template)
    assert caught.value.field == "payload"
    assert f"line {line}" in caught.value.problem
    with pytest.raises(RuleError):
        render_incident(template)


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ incident.__class__ }}",
        '"{{ cycler.__init__.__globals__ }}"',
        "{{ (1).__class__.__subclasses__() }}",
        "{{ incident.update({'subject': 'pwned'}) }}",
        "{{ incident.tags.append('pwned') }}",
    ],
)
def test_sandbox_blocks_internals_and_mutation(template: str) -> None:
    data: dict[str, Any] = {"subject": "s", "tags": ["a"]}
    with pytest.raises(RuleError) as caught:
        render(template, entity=Entity.INCIDENT, data=data)
    assert isinstance(caught.value.__cause__, SecurityError)
    assert data == {"subject": "s", "tags": ["a"]}


def test_runtime_errors_become_invalid_input() -> None:
    with pytest.raises(RuleError) as caught:
        render_incident("{{ 1 / 0 }}")
    assert caught.value.field == "payload"
    assert "ZeroDivisionError" in caught.value.problem


def test_concurrent_renders_keep_their_own_warnings() -> None:
    template = '{"s":"$incident.subject","m":"$incident.missing{{ incident.id }}"}'

    def one(i: int) -> Rendered:
        data: dict[str, Any] = {"subject": f"s{i}"} if i % 2 else {"subject": f"s{i}", "missing": 1}
        data["id"] = i
        return render(template, entity=Entity.INCIDENT, data=data)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(200)))
    for i, result in enumerate(results):
        assert json.loads(result.body)["s"] == f"s{i}"
        assert result.warnings == (("$incident.missing has no value",) if i % 2 else ())
