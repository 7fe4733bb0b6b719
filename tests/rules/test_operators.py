"""rules.operators: one table row per (operator, field value, rule value) case."""

from __future__ import annotations

import time
from typing import Any

import pytest

from integrations.enums import Operator
from rules.errors import RuleError
from rules.fields import MISSING
from rules.operators import MAX_REGEX_INPUT, OPERATORS, Criterion, evaluate, prepare, texts


def test_every_operator_has_exactly_one_predicate() -> None:
    assert set(OPERATORS) == set(Operator)
    assert len(set(OPERATORS.values())) == len(Operator)


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("Contains", Operator.CONTAINS),
        ("CONTAINS", Operator.CONTAINS),
        ("contains", Operator.CONTAINS),
        ("Not Contains", Operator.NOT_CONTAINS),
        ("NOT CONTAINS", Operator.NOT_CONTAINS),
        ("not_contains", Operator.NOT_CONTAINS),
        ("DoesNotContain", Operator.NOT_CONTAINS),
        ("Equals", Operator.EQUALS),
        ("EQUAL", Operator.EQUALS),
        ("Not Equals", Operator.NOT_EQUALS),
        ("NOT_EQUALS", Operator.NOT_EQUALS),
        ("Starts with", Operator.STARTS_WITH),
        ("STARTS_WITH", Operator.STARTS_WITH),
        ("starts_with", Operator.STARTS_WITH),
        ("StartsWith", Operator.STARTS_WITH),
        ("Ends with", Operator.ENDS_WITH),
        ("ENDS-WITH", Operator.ENDS_WITH),
        ("Regex", Operator.REGEX),
        ("REGEXP", Operator.REGEX),
        ("matches", Operator.REGEX),
    ],
)
def test_operator_spellings_reach_the_same_predicate(spelling: str, expected: Operator) -> None:
    assert OPERATORS[Operator.parse(spelling)] is OPERATORS[expected]


CASES: list[tuple[str, Any, str, bool]] = [
    # --- Contains: case-insensitive substring
    ("Contains", "Windows Server down", "windows", True),
    ("CONTAINS", "Windows Server down", "SERVER", True),
    ("contains", "Windows Server down", "linux", False),
    ("Contains", "STRASSE", "ß", True),  # casefold, not lower()
    ("Contains", "Windows", "", True),
    ("Contains", " padded ", " padded ", True),
    ("Contains", "padded", " padded", False),  # whitespace is significant
    # --- Not Contains
    ("Not Contains", "Windows Server", "windows", False),
    ("NOT CONTAINS", "Linux box", "windows", True),
    ("not_contains", "Linux box", "LINUX", False),
    # --- Equals
    ("Equals", "High", "high", True),
    ("EQUALS", "High", "HIGH", True),
    ("Equals", "High ", "high", False),
    ("Equals", "Highest", "high", False),
    # --- Not Equals
    ("Not Equals", "High", "high", False),
    ("NOT_EQUALS", "Low", "high", True),
    # --- Starts with / Ends with
    ("Starts with", "Windows Server", "WIN", True),
    ("STARTS_WITH", "Windows Server", "server", False),
    ("starts_with", "Windows Server", "windows server", True),
    ("Ends with", "Windows Server", "SERVER", True),
    ("ENDS_WITH", "Windows Server", "windows", False),
    # --- Regex: case-sensitive search, (?i) to fold
    ("Regex", "Windows Server", "Serv", True),
    ("REGEX", "Windows Server", "serv", False),
    ("regex", "Windows Server", "(?i)serv", True),
    ("Regex", "Windows Server", "^Server", False),
    ("Regex", "Windows Server", "^Win.*r$", True),
    ("Regex", "disk-42-full", r"\d+", True),
    ("Regex", "café", "^caf.$", True),  # UTF-8 aware: é is one character
    # --- Missing field behaves as "" (the classic trap)
    ("Contains", MISSING, "Windows", False),
    ("Not Contains", MISSING, "Windows", True),
    ("Equals", MISSING, "", True),
    ("Equals", MISSING, "x", False),
    ("Not Equals", MISSING, "x", True),
    ("Not Equals", MISSING, "", False),
    ("Starts with", MISSING, "a", False),
    ("Ends with", MISSING, "a", False),
    ("Regex", MISSING, "^$", True),
    ("Regex", MISSING, ".", False),
    # --- None counts as missing
    ("Contains", None, "Windows", False),
    ("Not Contains", None, "Windows", True),
    ("Equals", None, "", True),
    ("Equals", None, "None", False),
    ("Not Equals", None, "x", True),
    # --- Numbers via str()
    ("Equals", 5, "5", True),
    ("Equals", 5.0, "5", False),
    ("Equals", 5.5, "5.5", True),
    ("Contains", 12345, "234", True),
    ("Starts with", -3, "-", True),
    ("Regex", 42, r"^\d+$", True),
    ("Not Equals", 0, "0", False),
    # --- Booleans as JSON spells them
    ("Equals", True, "true", True),
    ("Equals", True, "TRUE", True),
    ("Equals", True, "True", True),
    ("Equals", False, "false", True),
    ("Equals", False, "0", False),
    ("Regex", True, "^true$", True),
    # --- Objects as compact JSON
    ("Contains", {"name": "P1"}, '"name":"p1"', True),
    ("Equals", {"a": 1}, '{"a":1}', True),
    # --- Lists: positive = any element, negative = no element
    ("Contains", ["db", "prod"], "PROD", True),
    ("Contains", ["db", "prod"], "web", False),
    ("Not Contains", ["db", "prod"], "prod", False),
    ("Not Contains", ["db", "prod"], "web", True),
    ("Equals", ["db", "prod"], "db", True),
    ("Not Equals", ["db", "prod"], "db", False),
    ("Not Equals", ["db", "prod"], "web", True),
    ("Starts with", ["alpha", "beta"], "BE", True),
    ("Ends with", ["alpha", "beta"], "pha", True),
    ("Regex", ["alpha", "beta"], "^b", True),
    ("Regex", ["alpha", "beta"], "^c", False),
    ("Equals", [1, True, None], "true", True),
    ("Equals", [1, True, None], "", True),  # a None element is ""
    # --- Empty list behaves like a missing field
    ("Contains", [], "x", False),
    ("Not Contains", [], "x", True),
    ("Equals", [], "", True),
    ("Not Equals", [], "x", True),
]


@pytest.mark.parametrize(("operator", "value", "expected_value", "expected"), CASES)
def test_operator_table(operator: str, value: Any, expected_value: str, expected: bool) -> None:
    assert evaluate(operator, value, expected_value) is expected


@pytest.mark.parametrize("positive", [Operator.CONTAINS, Operator.EQUALS])
@pytest.mark.parametrize(
    "value", [MISSING, None, "", "abc", "ABC", ["abc", "x"], [], 7, True, {"k": "abc"}]
)
@pytest.mark.parametrize("rule_value", ["", "abc", "x", "7"])
def test_negative_operators_are_exact_complements(
    positive: Operator, value: Any, rule_value: str
) -> None:
    negative = Operator.NOT_CONTAINS if positive is Operator.CONTAINS else Operator.NOT_EQUALS
    assert evaluate(negative, value, rule_value) is not evaluate(positive, value, rule_value)


def test_catastrophic_backtracking_pattern_completes() -> None:
    # (a+)+$ takes exponential time on a backtracking engine; RE2 is linear.
    assert evaluate("Regex", "a" * 15_000 + "b", "(a+)+$") is False
    assert evaluate("Regex", "a" * 15_000, "(a+)+$") is True


def test_a_regex_reads_the_first_16_kib_of_a_field_on_both_paths() -> None:
    # Issue 8: (.*a){1000} took 16-26 s on a 300 kB field. Both the RE2 path and the
    # literal fast path read the same prefix, so they answer alike.
    head, tail = "x" * MAX_REGEX_INPUT, "needle"
    assert evaluate("Regex", head + tail, "needle") is False
    assert evaluate("Regex", head + tail, "need(le|ful)") is False
    assert evaluate("Regex", head[:-6] + tail, "needle") is True
    assert evaluate("Regex", head[:-6] + tail, "need(le|ful)") is True


def test_a_pattern_too_complex_is_refused_at_save_naming_its_size() -> None:
    with pytest.raises(RuleError) as caught:
        prepare(Operator.REGEX, "(.*a){1000}", field="filterCriteria.rules[0].value")
    assert caught.value.field == "filterCriteria.rules[0].value"
    assert "11,004 instructions (at most 2,000)" in caught.value.problem
    prepare(Operator.REGEX, "(.*a){180}")  # a bounded repetition still compiles
    start = time.perf_counter()
    assert evaluate("Regex", "xa" * 150_000, "(.*a){180}") is True
    assert time.perf_counter() - start < 2.0
    # Found in review at a limit of 500: 40 host names (1,094 instructions) were refused.
    hosts = "|".join(f"host-{i:03d}.example.com" for i in range(40))
    assert evaluate("Regex", "down: host-017.example.com", hosts) is True
    # An alternation of literals takes the literal path: its RE2 size is not held against it.
    long_names = "|".join(f"{i:02d}-" + "n" * 200 for i in range(16))
    assert prepare(Operator.REGEX, long_names).pattern.programsize > 2000  # type: ignore[union-attr]
    assert evaluate("Regex", "x 07-" + "n" * 200, long_names) is True


@pytest.mark.parametrize(
    "pattern",
    ["(", "[a-", "a{2,1}", "(?<=a)b", r"(a)\1", "*"],
)
def test_invalid_or_unsupported_patterns_are_rejected(pattern: str) -> None:
    with pytest.raises(RuleError) as caught:
        prepare(Operator.REGEX, pattern, field="filterCriteria.rules[3].value")
    assert caught.value.field == "filterCriteria.rules[3].value"
    assert caught.value.problem.startswith("invalid regular expression: ")


def test_prepare_precomputes_folded_value_and_pattern() -> None:
    criterion = prepare(Operator.CONTAINS, "WinDows")
    assert criterion == Criterion(value="WinDows", folded="windows", pattern=None)
    assert prepare(Operator.REGEX, "a+").pattern is not None


def test_lone_surrogates_do_not_break_regex() -> None:
    assert evaluate("Regex", "bad \ud800 text", "text$") is True


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (MISSING, ("",)),
        (None, ("",)),
        ([], ("",)),
        ("a", ("a",)),
        ([1, False, None, [2]], ("1", "false", "", "[2]")),
        ({"é": 1.5}, ('{"é":1.5}',)),
    ],
)
def test_texts(value: Any, expected: tuple[str, ...]) -> None:
    assert texts(value) == expected
