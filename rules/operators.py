"""Filter-rule operators: one predicate per :class:`~rules.names.Operator`.

Modelled on StackStorm's ``st2common/operators.py``: each operator is a small function
``predicate(value, criterion) -> bool`` registered in :data:`OPERATORS`. ``value`` is the raw
field value read from the entity (possibly :data:`~rules.fields.MISSING`); ``criterion`` is the
rule's value prepared once by :func:`prepare` (case-folded text, compiled regex), because
predicates run for every message against every event.

Decisions
---------

**Case.** ``Contains``, ``Not Contains``, ``Equals``, ``Not Equals``, ``Starts with`` and
``Ends with`` compare case-insensitively (``str.casefold``, so ``"STRASSE"`` contains ``"ß"``):
they are human-facing operators typed into a UI, where ``windows`` should find ``Windows``.
Whitespace is significant: neither side is trimmed, so ``Equals " high"`` does not match
``"high"``.

**Regex** is case-sensitive as written; add ``(?i)`` to fold case. It uses *search* semantics
(the pattern may match anywhere; anchor with ``^...$`` for a whole-value match). Patterns run
on RE2 (``google-re2``), which matches in linear time: no tenant pattern such as ``(a+)+$`` can
hang a worker. The price is RE2's syntax: no backreferences and no look-around; such patterns
are rejected when the rule is saved. Use ``\\z`` rather than Python's ``\\Z``. A pattern that
only spells a few literal strings (``disk (full|failure)``) is tested as substring searches
instead, with the same answer and no regex engine at all (:mod:`rules.literals`).

**Missing fields (the classic trap).** A field that is absent, ``null`` or an empty list is
treated as the empty string ``""``. Consequently, on an incident with no subject:

* ``Contains "Windows"`` does **not** match, ``Starts with``/``Ends with`` a non-empty value
  do not match;
* ``Not Contains "Windows"`` **matches**, and so does ``Not Equals "x"``;
* ``Equals ""`` matches, and ``Regex "^$"`` matches.

This keeps every negative operator the exact complement of its positive one. A rule meant as
"subject is set and does not contain Windows" needs a second rule (``Regex "."``) under
``matchType: ALL``.

**Non-string values** are compared through their text form (:func:`rules.values.to_text`):
``true``/``false`` for booleans, ``str()`` for numbers (so ``Equals "5"`` matches ``5`` but not
``5.0``), compact JSON for objects.

**Lists.** A positive operator (``Contains``, ``Equals``, ``Starts with``, ``Ends with``,
``Regex``) matches when *any* element matches. A negative operator is the negation of its
positive counterpart over the whole list: ``Not Contains "x"`` matches only when *no* element
contains ``"x"``. An empty list behaves like a missing field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import re2

from rules.errors import RuleError
from rules.fields import MISSING, is_missing
from rules.literals import literal_search, literal_strings
from rules.names import Operator
from rules.values import to_text


class Pattern(Protocol):
    """The part of a compiled RE2 pattern the ``Regex`` operator uses."""

    def search(self, text: str | bytes) -> object | None:
        """The first match anywhere in ``text``, or ``None``."""
        ...

    @property
    def programsize(self) -> int:
        """How many instructions RE2 compiled the pattern to."""
        ...


@dataclass(frozen=True, slots=True)
class Criterion:
    """A rule's value prepared for fast, repeated evaluation."""

    #: The value exactly as configured.
    value: str
    #: ``value.casefold()``, for the case-insensitive operators.
    folded: str
    #: The compiled pattern, for ``Regex`` only.
    pattern: Pattern | None = None
    #: ``search(text) -> bool`` for ``Regex``: literal substring tests when the pattern is only
    #: literals (see :mod:`rules.literals`), else the RE2 pattern.
    search: Callable[[str], bool] | None = field(default=None, compare=False, repr=False)


#: ``predicate(field_value, criterion) -> bool``.
Predicate = Callable[[Any, Criterion], bool]


#: The largest RE2 program a ``Regex`` rule may compile to, when RE2 runs it (literal
#: alternations take a path of their own). RE2 is linear in its input, but the constant is
#: the program's size: ``(.*a){1000}`` (11,004 instructions) took 16-26 s on a 300 kB field.
#: Ordinary patterns are tens of instructions (``disk (full|failure)``: 21;
#: ``\w{1,64}@\w{1,64}\.com``: 519). At the limit a test of 16 KiB takes about 0.15 s.
MAX_PROGRAM_SIZE: Final = 2000
#: How much of a field a ``Regex`` rule reads: its first 16 KiB (characters). Together with
#: :data:`MAX_PROGRAM_SIZE` this bounds one regex test to tens of milliseconds.
MAX_REGEX_INPUT: Final = 16 * 1024


def _regex_options() -> Any:
    options = re2.Options()
    # RE2 logs every rejected pattern to stderr by default; a tenant's typo is not our error.
    options.log_errors = False
    return options


def compile_pattern(pattern: str, *, max_size: int | None = MAX_PROGRAM_SIZE) -> Pattern:
    """Compile ``pattern`` with RE2, raising ``ValueError`` with RE2's reason if it is invalid
    or compiles to more than ``max_size`` instructions."""
    try:
        compiled: Pattern = re2.compile(pattern, _regex_options())
    except re2.error as exc:
        detail = exc.args[0] if exc.args else "rejected"
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise ValueError(str(detail)) from None
    except UnicodeEncodeError:
        raise ValueError("pattern contains characters that are not valid Unicode") from None
    size = compiled.programsize
    if max_size is not None and size > max_size:
        raise ValueError(
            f"pattern too complex: it compiles to {size:,} instructions "
            f"(at most {max_size:,}); simplify its repetitions"
        )
    return compiled


def prepare(operator: Operator, value: str, *, field: str = "value") -> Criterion:
    """Prepare a rule value for ``operator``; an invalid regex raises ``RuleError(field)``."""
    if operator is not Operator.REGEX:
        return Criterion(value=value, folded=value.casefold())
    literal = literal_strings(value)
    try:
        # Compiled even when the literal path will answer: RE2 stays the judge of validity.
        # Its size is bounded only when RE2 will run it: a long alternation of host names
        # is a big program, but the literal path tests it without RE2.
        pattern = compile_pattern(value, max_size=None if literal else MAX_PROGRAM_SIZE)
    except ValueError as exc:
        raise RuleError(field, f"invalid regular expression: {exc}") from None
    search = _literal_search(*literal) if literal is not None else _re2_search(pattern)
    return Criterion(value=value, folded=value.casefold(), pattern=pattern, search=search)


def _re2_search(pattern: Pattern) -> Callable[[str], bool]:
    def search(text: str) -> bool:
        return _search(pattern, text[:MAX_REGEX_INPUT])

    return search


def _literal_search(anchored: bool, strings: tuple[str, ...]) -> Callable[[str], bool]:
    # The literal fast path reads what RE2 would read, so both answer alike.
    found = literal_search(anchored, strings)

    def search(text: str) -> bool:
        return found(text[:MAX_REGEX_INPUT])

    return search


def texts(value: Any) -> tuple[str, ...]:
    """The texts an operator tests: one per list element, ``("",)`` for a missing value."""
    if is_missing(value):
        return ("",)
    if isinstance(value, list | tuple):
        if not value:
            return ("",)
        return tuple(to_text(item) for item in value)
    return (to_text(value),)


def contains(value: Any, criterion: Criterion) -> bool:
    """Case-insensitive substring test; any list element may match."""
    needle = criterion.folded
    return any(needle in text.casefold() for text in texts(value))


def not_contains(value: Any, criterion: Criterion) -> bool:
    """Exactly ``not contains``: true for a missing field unless the criterion is empty."""
    return not contains(value, criterion)


def equals(value: Any, criterion: Criterion) -> bool:
    """Case-insensitive equality of the text form; any list element may match."""
    expected = criterion.folded
    return any(text.casefold() == expected for text in texts(value))


def not_equals(value: Any, criterion: Criterion) -> bool:
    """Exactly ``not equals``: true for a missing field unless the criterion is empty."""
    return not equals(value, criterion)


def starts_with(value: Any, criterion: Criterion) -> bool:
    """Case-insensitive prefix test; any list element may match."""
    prefix = criterion.folded
    return any(text.casefold().startswith(prefix) for text in texts(value))


def ends_with(value: Any, criterion: Criterion) -> bool:
    """Case-insensitive suffix test; any list element may match."""
    suffix = criterion.folded
    return any(text.casefold().endswith(suffix) for text in texts(value))


def _search(pattern: Pattern, text: str) -> bool:
    try:
        return pattern.search(text) is not None
    except UnicodeEncodeError:
        # Lone surrogates cannot be UTF-8 encoded for RE2; search the raw bytes instead of
        # failing the whole delivery over one malformed character.
        return pattern.search(text.encode("utf-8", "surrogatepass")) is not None


def regex(value: Any, criterion: Criterion) -> bool:
    """Case-sensitive RE2 *search*; any list element may match."""
    search = criterion.search
    if search is None:  # prepared for another operator: compile now rather than mis-answer
        search = _re2_search(criterion.pattern or compile_pattern(criterion.value))
    return any(search(text) for text in texts(value))


#: The operator registry: every :class:`Operator` member has exactly one predicate.
OPERATORS: Final[dict[Operator, Predicate]] = {
    Operator.CONTAINS: contains,
    Operator.NOT_CONTAINS: not_contains,
    Operator.EQUALS: equals,
    Operator.NOT_EQUALS: not_equals,
    Operator.STARTS_WITH: starts_with,
    Operator.ENDS_WITH: ends_with,
    Operator.REGEX: regex,
}


#: ``test(field_value) -> bool``: one rule's operator and value, compiled together.
Test = Callable[[Any], bool]


def _general(operator: Operator, criterion: Criterion) -> tuple[Predicate, bool]:
    predicate = OPERATORS[operator]
    return predicate, predicate(MISSING, criterion)


def compile_test(operator: Operator, criterion: Criterion) -> Test:
    """``OPERATORS[operator](value, criterion)`` as one closure, fast for the common cases.

    A string field (nearly every field) is tested inline, a missing one answers from a
    precomputed outcome, and anything else (numbers, lists, objects) takes the general
    predicate, so the answers are exactly the predicates' own. One closure per operator,
    written out, because a call per comparison would cost as much as the comparison.
    """
    predicate, on_missing = _general(operator, criterion)
    expected = criterion.folded
    test: Test
    if operator is Operator.CONTAINS:

        def test(value: Any) -> bool:
            if value.__class__ is str:
                return expected in value.casefold()
            return on_missing if value is None or value is MISSING else predicate(value, criterion)

    elif operator is Operator.NOT_CONTAINS:

        def test(value: Any) -> bool:
            if value.__class__ is str:
                return expected not in value.casefold()
            return on_missing if value is None or value is MISSING else predicate(value, criterion)

    elif operator is Operator.EQUALS:

        def test(value: Any) -> bool:
            if value.__class__ is str:
                return value.casefold() == expected
            return on_missing if value is None or value is MISSING else predicate(value, criterion)

    elif operator is Operator.NOT_EQUALS:

        def test(value: Any) -> bool:
            if value.__class__ is str:
                return value.casefold() != expected
            return on_missing if value is None or value is MISSING else predicate(value, criterion)

    elif operator is Operator.STARTS_WITH:

        def test(value: Any) -> bool:
            if value.__class__ is str:
                return value.casefold().startswith(expected)
            return on_missing if value is None or value is MISSING else predicate(value, criterion)

    elif operator is Operator.ENDS_WITH:

        def test(value: Any) -> bool:
            if value.__class__ is str:
                return value.casefold().endswith(expected)
            return on_missing if value is None or value is MISSING else predicate(value, criterion)

    else:
        search = criterion.search
        if search is None:
            search = _re2_search(criterion.pattern or compile_pattern(criterion.value))
        found = search

        def test(value: Any) -> bool:
            if value.__class__ is str:
                return found(value)
            return on_missing if value is None or value is MISSING else predicate(value, criterion)

    return test


def evaluate(operator: Operator | str, value: Any, expected: str) -> bool:
    """One-off evaluation (tests, previews): parse ``operator``, prepare ``expected``, apply.

    Hot paths should :func:`prepare` once and call ``OPERATORS[op]`` directly instead.
    """
    op = Operator.parse(operator)
    return OPERATORS[op](value, prepare(op, expected))
