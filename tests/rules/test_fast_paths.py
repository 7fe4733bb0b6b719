"""Property tests: every fast path answers exactly what the general path answers.

* placeholder-only templates rendered without Jinja, against the sandbox (body and warnings);
* literal-only regexes tested by substring search, against RE2;
* compiled, case-folding field paths (with and without a shared view), against the reference
  walk that ``rules.fields`` implemented before paths were compiled.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.escape import RenderState, format_value
from rules.fields import MISSING, FieldView, resolve
from rules.literals import LIMIT, literal_search, literal_strings
from rules.operators import compile_pattern
from rules.render import Syntax, _render_in_sandbox, referenced_names, render
from rules.scan import Kind, Slot
from rules.url import referenced_names as url_names
from rules.values import to_json, to_text

# Per-test settings rather than a global profile: other packages' suites share the session.
FAST = settings(max_examples=200, deadline=None, database=None)

# --- Rendering ------------------------------------------------------------------------------

LITERALS = st.sampled_from(
    [
        "",
        "{",
        "}",
        '"',
        '\\"',
        "\\",
        ":",
        ",",
        " ",
        "\n",
        "\r\n",
        "\r",
        "<a>",
        "<![CDATA[",
        "]]>",
        "<!--",
        "-->",
        "$",
        "$5",
        "US$ ",
        "text",
        "é",
        "%}",
        "}}",
        "#}",
    ]
)
PLACEHOLDERS = st.sampled_from(
    [
        "$incident.subject",
        "$incident.Subject",
        "$Incident.subject",
        "$incident.priority.name",
        "$incident.tags.0",
        "$incident.tags.9",
        "$incident.count",
        "$incident.nothing",
        "$incident.impact",
        "$incident",
        "$extTicketId",
        "$extTicketId.deeper",
        "$unknown.field",
        "$incident.a.b",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["\ud800 lone", "a]]>b", "\x01ctl", 'q"uote', "<&>"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
DATA = st.fixed_dictionaries(
    {},
    optional={
        "subject": VALUES,
        "SUBJECT": VALUES,
        "priority": st.fixed_dictionaries({}, optional={"name": VALUES, "Name": VALUES}),
        "tags": st.lists(VALUES, max_size=3),
        "count": VALUES,
        "impact": st.none(),
        "a.b": VALUES,
        "a": st.fixed_dictionaries({}, optional={"b": VALUES}),
    },
)
TEMPLATES = st.lists(st.one_of(LITERALS, PLACEHOLDERS), max_size=12).map("".join)


@FAST
@given(
    template=TEMPLATES,
    data=DATA,
    extra=st.fixed_dictionaries({}, optional={"extTicketId": VALUES, "incident": VALUES}),
    syntax=st.sampled_from(list(Syntax)),
)
def test_plain_templates_render_exactly_as_in_the_sandbox(
    template: str, data: dict[str, Any], extra: dict[str, Any], syntax: Syntax
) -> None:
    if "{{" in template or "{%" in template or "{#" in template:
        return  # not a plain template: the sandbox is the only path
    fast = render(template, entity="INCIDENT", data=data, extra=extra, syntax=syntax)
    slow = _render_in_sandbox(template, entity="INCIDENT", data=data, extra=extra, syntax=syntax)
    assert fast.body == slow.body
    assert fast.warnings == slow.warnings


def test_a_brace_right_before_a_placeholder_is_text_on_both_paths() -> None:
    # Translated naively, "{$x" became "{{{ call }}": a Jinja syntax error on either path.
    template = "{$incident.x} {{ incident.x }}{$incident.x"
    out = render(template, entity="INCIDENT", data={"x": "1"}, syntax=Syntax.TEXT)
    assert out.body == "{1} 1{1"
    plain = render("{$incident.x}", entity="INCIDENT", data={"x": "1"}, syntax=Syntax.TEXT)
    assert plain.body == "{1}"


def test_newlines_in_plain_text_are_normalised_as_jinja_does() -> None:
    out = render("a\r\nb\rc\n$incident.x", entity="INCIDENT", data={"x": "1\r\n"})
    assert out.body == "a\nb\nc\n1\r\n"  # values are inserted as they are


@pytest.mark.parametrize(
    ("template", "names"),
    [
        ('{"s":"$incident.subject"}', set()),
        ('{"id":"$extTicketId","s":"$incident.subject"}', {"extTicketId"}),
        ("$Incident.subject", {"Incident"}),  # found case-insensitively: reported to be safe
        ("{{ incident.subject }} {{ extTicketId | upper }}", {"extTicketId"}),
        ("{% for t in tags %}{{ t }}{% endfor %} $incident.x", {"tags"}),
        ("{% set x = 1 %}{{ x }}", set()),
    ],
)
def test_referenced_names(template: str, names: set[str]) -> None:
    assert referenced_names(template, "INCIDENT") == names


def test_url_referenced_names() -> None:
    assert url_names("/t/$extTicketId/$incident.id", "INCIDENT") == {"extTicketId"}
    assert url_names("/tickets", "INCIDENT") == frozenset()


# --- Literal regexes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("disk (full|failure)", (False, ("disk full", "disk failure"))),
        ("P1|P2", (False, ("P1", "P2"))),
        ("^WIN", (True, ("WIN",))),
        ("^(WIN|LIN)", (True, ("WIN", "LIN"))),
        ("a\\.b\\(c", (False, ("a.b(c",))),
        ("(?:x|y)z", (False, ("xz", "yz"))),
        ("", (False, ("",))),
        ("a|", (False, ("", "a"))),
    ],
)
def test_literal_patterns(pattern: str, expected: tuple[bool, tuple[str, ...]]) -> None:
    anchored, strings = expected
    assert literal_strings(pattern) == (anchored, tuple(sorted(strings, key=lambda s: (len(s), s))))


@pytest.mark.parametrize(
    "pattern",
    [
        "a+",
        "a*",
        "a?",
        "a{2}",
        "a.b",
        "a$",
        "[ab]",
        "\\d",
        "\\bword",
        "(?i)a",
        "(?P<n>a)",
        "a^b",
        "(^a|b)",
        "^:|a",  # the anchor binds to the first branch only
        "(a|b)(c|d)(e|f)(g|h)(i|j)",  # 32 strings: more than LIMIT
    ],
)
def test_patterns_outside_the_subset_stay_on_re2(pattern: str) -> None:
    assert LIMIT < 32
    assert literal_strings(pattern) is None


PATTERN_TEXT = st.text(alphabet="ab.|()^\\?:x", max_size=12)
HAYSTACK = st.text(alphabet="ab.|()^\\x\n", max_size=16)


@FAST
@given(pattern=PATTERN_TEXT, texts=st.lists(HAYSTACK, min_size=1, max_size=5))
def test_literal_search_agrees_with_re2(pattern: str, texts: list[str]) -> None:
    try:
        compiled = compile_pattern(pattern)
    except ValueError:
        return  # RE2 rejects it: never reaches the literal path
    literal = literal_strings(pattern)
    if literal is None:
        return
    search = literal_search(*literal)
    for text in [*texts, *literal[1]]:
        assert search(text) is (compiled.search(text) is not None), (pattern, text)


# --- Field paths ------------------------------------------------------------------------------


def _reference_get(data: Mapping[str, Any], key: str) -> Any:
    try:
        return data[key]
    except (KeyError, TypeError):
        pass
    folded = key.casefold()
    for candidate, value in data.items():
        if isinstance(candidate, str) and candidate.casefold() == folded:
            return value
    return MISSING


def _reference_resolve(data: Mapping[str, Any], path: str) -> Any:
    """The path walk as rules.fields did it, one scan per lookup."""
    if not path:
        return MISSING
    current: Any = data
    remaining = path
    while True:
        if "." in remaining and isinstance(current, Mapping):
            whole = _reference_get(current, remaining)
            if whole is not MISSING:
                return whole
        segment, dot, rest = remaining.partition(".")
        if isinstance(current, Mapping):
            current = _reference_get(current, segment)
        elif (
            isinstance(current, Sequence)
            and not isinstance(current, str | bytes)
            and segment.isdigit()
        ):
            index = int(segment)
            current = current[index] if index < len(current) else MISSING
        else:
            current = MISSING
        if current is MISSING or not dot:
            return current
        remaining = rest


KEYS = st.sampled_from(["a", "A", "b", "B", "a.b", "A.B", "0", "1", "ß", "SS", "ss"])
TREES = st.recursive(
    st.integers(0, 9) | st.none(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)
PATHS = st.lists(KEYS, min_size=1, max_size=4).map(".".join) | st.just("")


@FAST
@given(tree=st.dictionaries(KEYS, TREES, max_size=5), paths=st.lists(PATHS, min_size=1, max_size=6))
def test_compiled_paths_agree_with_the_reference_walk(
    tree: dict[str, Any], paths: list[str]
) -> None:
    view = FieldView(tree)
    for path in paths:
        expected = _reference_resolve(tree, path)
        assert resolve(tree, path) == expected
        assert resolve(tree, path, view) == expected  # the view's memory changes nothing
        if expected is MISSING:
            assert resolve(tree, path) is MISSING


@FAST
@given(value=st.one_of(st.text(), st.integers(), st.booleans()), kind=st.sampled_from(list(Kind)))
def test_shortcuts_in_format_value_match_the_general_rules(value: Any, kind: Kind) -> None:
    # What format_value did for every value before it had shortcuts for str and int.
    text = to_text(value)
    expected = {
        Kind.JSON_VALUE: to_json(value),
        Kind.JSON_STRING: json.dumps(text, ensure_ascii=False)[1:-1],
        Kind.XML: text.translate(
            str.maketrans(
                {
                    "&": "&amp;",
                    "<": "&lt;",
                    ">": "&gt;",
                    '"': "&quot;",
                    "'": "&apos;",
                    "\r": "&#13;",
                }
            )
        ),
        Kind.XML_CDATA: text.replace("]]>", "]]]]><![CDATA[>"),
        Kind.TEXT: text,
    }[kind]
    if kind in (Kind.XML, Kind.XML_CDATA) and not all(
        c in "\t\n\r" or " " <= c <= "\ud7ff" or "\ue000" <= c <= "\ufffd" or c >= "\U00010000"
        for c in text
    ):
        return  # dropped characters: covered by the XML tests
    state = RenderState((), {})
    assert format_value(state, Slot(kind, "$x"), value, undefined_printed=False) == expected
