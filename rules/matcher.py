"""Compiling an event's ``filterCriteria`` into a fast, reusable :class:`Matcher`.

Compile once per event configuration (when it is saved or loaded), then call
:meth:`Matcher.matches` for every entity-change message: every rule becomes one closure with its
path split and case-folded, its value case-folded and its regex compiled (or reduced to literal
substring tests) up front, so evaluation is a few dictionary lookups and string tests. Pass the
same :class:`~rules.fields.FieldView` of a change to every matcher, and a key spelled
differently from the data (``Subject`` for ``subject``) is case-folded once per change.

* ``matchType`` ``ANY`` matches when at least one rule does, ``ALL`` when every rule does.
* No criteria, or criteria without rules, match everything (the seed: "No rules matches
  everything").
* A rule's ``resourceType`` names *where* its key lives. Equal to the event's entity (or
  absent), the key is read from the entity data itself. Different from it, the key is read
  from the nested object named for that resource type: on an ``INCIDENT`` event the rule
  ``{resourceType: RESOURCE, key: name}`` reads ``data["resource"]["name"]`` (keys
  case-insensitive). If that nested value is a list of objects, the key is read from each
  and the rule's operator applies its list semantics (any / none). Resource types compare
  folded (case, spaces, ``_`` and ``-`` ignored); the nested object is the folded name in
  lower case. Aliases (``CHANGEREQUEST`` for ``CHANGE``) are the caller's to resolve: Herald's
  API models hand over canonical names.

Criteria are JSON-shaped: a mapping ``{"matchType": ..., "rules": [{"key", "operator",
"value", "resourceType"}]}`` or any object with those attributes (a pydantic model).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rules.errors import RuleError
from rules.fields import MISSING, FieldView, Memo, Reader, compile_path, folded_lookup, lookup
from rules.names import MatchType, Operator, fold
from rules.operators import OPERATORS, Criterion, Predicate, Test, compile_test, prepare


class RuleLike(Protocol):
    """A filter rule as an object (e.g. ``integrations.models.Rule``)."""

    @property
    def key(self) -> str: ...
    @property
    def operator(self) -> str: ...
    @property
    def value(self) -> str: ...
    @property
    def resourceType(self) -> str | None: ...


class CriteriaLike(Protocol):
    """A ``filterCriteria`` as an object (e.g. ``integrations.models.FilterCriteria``)."""

    @property
    def matchType(self) -> str: ...
    @property
    def rules(self) -> Sequence[RuleLike]: ...


Criteria = CriteriaLike | Mapping[str, Any]
#: ``check(memo, data) -> bool``: one compiled rule.
Check = Callable[[Memo, Mapping[str, Any]], bool]


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """One filter rule, ready to evaluate."""

    #: Position in ``filterCriteria.rules`` (for error messages and :meth:`Matcher.explain`).
    index: int
    #: Name of the nested object holding the key (``"resource"``), or ``None`` for the entity.
    scope: str | None
    key: str
    operator: Operator
    criterion: Criterion
    predicate: Predicate
    #: ``check(memo, data) -> bool``: the whole rule as one closure.
    check: Check = field(compare=False, repr=False)

    def value_in(self, data: Mapping[str, Any] | FieldView) -> Any:
        """The field this rule tests, read from ``data`` (may be ``MISSING``)."""
        memo, mapping = _split(data)
        return _reader(self.scope, self.key)(memo, mapping)

    def test(self, data: Mapping[str, Any] | FieldView) -> bool:
        """Whether ``data`` satisfies this rule."""
        return self.check(*_split(data))


def _split(data: Mapping[str, Any] | FieldView) -> tuple[Memo, Mapping[str, Any]]:
    """The folding memory and the entity data: a view's own, or a fresh one for one call."""
    if isinstance(data, FieldView):
        return data.memo, data.data
    return {}, data


def _reader(scope: str | None, key: str) -> Reader:
    """``read(memo, data)``: the rule's field, from the entity or from its ``scope`` object."""
    path: Reader = compile_path(key)
    if scope is None:
        return path
    folded_scope = scope.casefold()

    def read_scoped(memo: Memo, data: Any) -> Any:
        nested = lookup(memo, data, scope, folded_scope)
        if isinstance(nested, Mapping):
            return path(memo, nested)
        if isinstance(nested, list | tuple):
            found = [path(memo, item) for item in nested if isinstance(item, Mapping)]
            return [value for value in found if value is not MISSING] or MISSING
        return MISSING

    return read_scoped


def _checker(scope: str | None, key: str, test: Test) -> Check:
    read = _reader(scope, key)
    if scope is not None or "." in key:
        return lambda memo, data: test(read(memo, data))
    folded = key.casefold()

    def check(memo: Memo, data: Mapping[str, Any]) -> bool:
        # The most common rule, a top-level key, with its read inlined (one call less).
        if data.__class__ is dict:
            value = data.get(key, MISSING)
            if value is MISSING:
                value = folded_lookup(memo, data, folded)
            return test(value)
        return test(read(memo, data))

    return check


class Matcher:
    """A compiled ``filterCriteria``; immutable and safe to share between threads."""

    __slots__ = ("_checks", "_match_all", "_rules")

    def __init__(self, rules: Sequence[CompiledRule], match_type: MatchType = MatchType.ANY):
        self._rules = tuple(rules)
        self._checks = tuple(rule.check for rule in self._rules)
        self._match_all = match_type is MatchType.ALL

    @property
    def rules(self) -> tuple[CompiledRule, ...]:
        """The compiled rules, in configuration order."""
        return self._rules

    @property
    def match_type(self) -> MatchType:
        """``ANY`` or ``ALL``."""
        return MatchType.ALL if self._match_all else MatchType.ANY

    def matches(self, data: Mapping[str, Any] | FieldView) -> bool:
        """Whether the entity ``data`` passes the criteria (always true without rules).

        ``data`` may be a :class:`~rules.fields.FieldView`, shared by every matcher that
        evaluates the same change.
        """
        checks = self._checks
        if not checks:
            return True
        if isinstance(data, FieldView):
            memo = data.memo
            data = data.data
        else:
            memo = {}
        # Plain loops: all()/any() over a generator cost more than three rules do.
        if self._match_all:
            for check in checks:  # noqa: SIM110
                if not check(memo, data):
                    return False
            return True
        for check in checks:  # noqa: SIM110
            if check(memo, data):
                return True
        return False

    def explain(self, data: Mapping[str, Any] | FieldView) -> tuple[bool, ...]:
        """Each rule's outcome on ``data``, in order: for "why did (not) my event fire" logs."""
        memo, mapping = _split(data)
        return tuple(check(memo, mapping) for check in self._checks)

    def __repr__(self) -> str:
        return f"Matcher({self.match_type.value}, {len(self._rules)} rules)"


def _get(item: Any, name: str, default: Any = None) -> Any:
    if isinstance(item, Mapping):
        return item.get(name, default)
    return getattr(item, name, default)


def compile_criteria(criteria: Criteria | None, entity: str) -> Matcher:
    """Compile ``criteria`` for events on ``entity`` (``"INCIDENT"``, or an enum of that value).

    Raises :class:`~rules.errors.RuleError` naming the offending rule, e.g.
    ``filterCriteria.rules[1].value: invalid regular expression: missing ): (``, for an invalid
    regex, an empty key, an unknown operator or match type.
    """
    if criteria is None:
        return Matcher(())
    try:
        match_type = MatchType.parse(_get(criteria, "matchType", MatchType.ANY))
    except ValueError as exc:
        raise RuleError("filterCriteria.matchType", str(exc)) from None
    folded_entity = fold(str(entity))
    compiled: list[CompiledRule] = []
    for index, rule in enumerate(_get(criteria, "rules", None) or ()):
        where = f"filterCriteria.rules[{index}]"
        key = _get(rule, "key", "")
        if not isinstance(key, str) or not key.strip():
            raise RuleError(f"{where}.key", "must not be empty")
        # Stripped: outer whitespace in a key is a form-entry slip ("Subject "), never part
        # of a real field name.
        key = key.strip()
        # Models built with ``model_construct`` skip validation, so parse defensively.
        try:
            operator = Operator.parse(_get(rule, "operator"))
        except ValueError as exc:
            raise RuleError(f"{where}.operator", str(exc)) from None
        resource = _get(rule, "resourceType")
        if resource is not None and not isinstance(resource, str):
            raise RuleError(f"{where}.resourceType", "must be a string")
        folded = fold(resource) if resource else ""
        scope = None if not folded or folded == folded_entity else folded.lower()
        value = _get(rule, "value", "")
        if not isinstance(value, str):
            raise RuleError(f"{where}.value", "must be a string")
        criterion = prepare(operator, value, field=f"{where}.value")
        compiled.append(
            CompiledRule(
                index=index,
                scope=scope,
                key=key,
                operator=operator,
                criterion=criterion,
                predicate=OPERATORS[operator],
                check=_checker(scope, key, compile_test(operator, criterion)),
            )
        )
    return Matcher(compiled, match_type)
