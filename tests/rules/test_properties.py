"""Property tests: escaping round-trips and operator algebra hold for arbitrary text."""

from __future__ import annotations

import json
from typing import Any

from defusedxml import ElementTree as SafeET
from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.enums import Entity, Operator
from rules.operators import evaluate
from rules.render import Syntax, render

# st.text() already mixes quotes, backslashes, newlines, control characters and astral
# Unicode; surrogates are excluded because no UTF-8 payload can carry them.
ANY_TEXT = st.text()
# XML 1.0 Char: tab, LF, CR, and everything from U+0020 except surrogates and U+FFFE/U+FFFF.
XML_TEXT = st.text(
    st.characters(
        codec="utf-8",
        categories=None,
        exclude_characters="".join(map(chr, [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)]))
        + "\ufffe\uffff",
    )
)
NUMBERS = st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | NUMBERS | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)

JSON_TEMPLATE = '{"subject":"$incident.subject","n":$incident.count}'

# Per-test settings rather than a global profile: other packages' suites share the session.
# No example database: these properties are cheap to re-explore and leave no files behind.
FAST = settings(max_examples=120, deadline=None, database=None)


@FAST
@given(subject=ANY_TEXT, count=NUMBERS)
def test_json_rendering_round_trips_any_text(subject: str, count: float) -> None:
    result = render(
        JSON_TEMPLATE, entity=Entity.INCIDENT, data={"subject": subject, "count": count}
    )
    assert json.loads(result.body) == {"subject": subject, "n": count}


@FAST
@given(value=JSON_VALUES)
def test_json_value_context_round_trips_any_json_value(value: Any) -> None:
    result = render(
        '{"v":$incident.v,"w":{{ incident.v }}}', entity=Entity.INCIDENT, data={"v": value}
    )
    assert json.loads(result.body) == {"v": value, "w": value}


@FAST
@given(subject=ANY_TEXT)
def test_native_expression_in_json_string_round_trips(subject: str) -> None:
    result = render(
        '{"s":"{{ incident.subject }}"}', entity=Entity.INCIDENT, data={"subject": subject}
    )
    assert json.loads(result.body) == {"s": subject}


@FAST
@given(text=XML_TEXT)
def test_xml_rendering_round_trips_legal_text(text: str) -> None:
    result = render(
        '<ticket note="$incident.s"><subject>$incident.s</subject></ticket>',
        entity=Entity.INCIDENT,
        data={"s": text},
    )
    root = SafeET.fromstring(result.body)
    assert root.findtext("subject") == text
    assert result.warnings == ()


@FAST
@given(text=ANY_TEXT)
def test_xml_rendering_always_parses(text: str) -> None:
    result = render("<a>$incident.s</a>", entity=Entity.INCIDENT, data={"s": text})
    SafeET.fromstring(result.body)


@FAST
@given(text=ANY_TEXT)
def test_text_rendering_inserts_verbatim(text: str) -> None:
    result = render("[$incident.s]", entity=Entity.INCIDENT, data={"s": text}, syntax=Syntax.TEXT)
    assert result.body == f"[{text}]"


@FAST
@given(field=ANY_TEXT, rule_value=ANY_TEXT)
def test_contains_and_not_contains_are_complements(field: str, rule_value: str) -> None:
    assert evaluate(Operator.CONTAINS, field, rule_value) is not evaluate(
        Operator.NOT_CONTAINS, field, rule_value
    )


@FAST
@given(field=ANY_TEXT, rule_value=ANY_TEXT)
def test_equals_and_not_equals_are_complements(field: str, rule_value: str) -> None:
    assert evaluate(Operator.EQUALS, field, rule_value) is not evaluate(
        Operator.NOT_EQUALS, field, rule_value
    )


@FAST
@given(value=ANY_TEXT)
def test_equals_is_reflexive_and_case_blind(value: str) -> None:
    assert evaluate(Operator.EQUALS, value, value)
    assert evaluate(Operator.EQUALS, value.upper(), value.lower()) is (
        value.upper().casefold() == value.lower().casefold()
    )
    assert evaluate(Operator.CONTAINS, value, value)
    assert evaluate(Operator.STARTS_WITH, value, value)
    assert evaluate(Operator.ENDS_WITH, value, value)


@FAST
@given(prefix=ANY_TEXT, middle=ANY_TEXT, suffix=ANY_TEXT)
def test_substrings_are_found(prefix: str, middle: str, suffix: str) -> None:
    whole = prefix + middle + suffix
    assert evaluate(Operator.CONTAINS, whole, middle)
    assert evaluate(Operator.STARTS_WITH, whole, prefix)
    assert evaluate(Operator.ENDS_WITH, whole, suffix)
