"""Compiling an event's ``filterCriteria`` into a fast, reusable :class:`Matcher`.

Compile once per event configuration (when it is saved or loaded), then call
:meth:`Matcher.matches` for every entity-change message: all regexes are compiled and all rule
values case-folded up front, so evaluation is a few dictionary lookups and string tests.

* ``matchType`` ``ANY`` matches when at least one rule does, ``ALL`` when every rule does.
* No criteria, or criteria without rules, match everything (the seed: "No rules matches
  everything").
* A rule's ``resourceType`` names *where* its key lives. Equal to the event's entity (or
  absent), the key is read from the entity data itself. Different from it, the key is read
  from the nested object named for that resource type: on an ``INCIDENT`` event the rule
  ``{resourceType: RESOURCE, key: name}`` reads ``data["resource"]["name"]`` (keys
  case-insensitive). If that nested value is a list of objects, the key is read from each
  and the rule's operator applies its list semantics (any / none).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from integrations.enums import Entity, MatchType, Operator
from integrations.errors import InvalidInput
from integrations.models import FilterCriteria
from rules.fields import MISSING, get_key, resolve
from rules.operators import OPERATORS, Criterion, Predicate, prepare


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

    def value_in(self, data: Mapping[str, Any]) -> Any:
        """The field this rule tests, read from ``data`` (may be ``MISSING``)."""
        if self.scope is None:
            return resolve(data, self.key)
        nested = get_key(data, self.scope)
        if isinstance(nested, Mapping):
            return resolve(nested, self.key)
        if isinstance(nested, list | tuple):
            found = [resolve(item, self.key) for item in nested if isinstance(item, Mapping)]
            return [value for value in found if value is not MISSING] or MISSING
        return MISSING

    def test(self, data: Mapping[str, Any]) -> bool:
        """Whether ``data`` satisfies this rule."""
        return self.predicate(self.value_in(data), self.criterion)


class Matcher:
    """A compiled ``filterCriteria``; immutable and safe to share between threads."""

    __slots__ = ("_match_all", "_rules")

    def __init__(self, rules: Sequence[CompiledRule], match_type: MatchType = MatchType.ANY):
        self._rules = tuple(rules)
        self._match_all = match_type is MatchType.ALL

    @property
    def rules(self) -> tuple[CompiledRule, ...]:
        """The compiled rules, in configuration order."""
        return self._rules

    @property
    def match_type(self) -> MatchType:
        """``ANY`` or ``ALL``."""
        return MatchType.ALL if self._match_all else MatchType.ANY

    def matches(self, data: Mapping[str, Any]) -> bool:
        """Whether the entity ``data`` passes the criteria (always true without rules)."""
        if not self._rules:
            return True
        if self._match_all:
            return all(rule.test(data) for rule in self._rules)
        return any(rule.test(data) for rule in self._rules)

    def explain(self, data: Mapping[str, Any]) -> tuple[bool, ...]:
        """Each rule's outcome on ``data``, in order: for "why did (not) my event fire" logs."""
        return tuple(rule.test(data) for rule in self._rules)

    def __repr__(self) -> str:
        return f"Matcher({self.match_type.value}, {len(self._rules)} rules)"


def compile_criteria(criteria: FilterCriteria | None, entity: Entity) -> Matcher:
    """Compile ``criteria`` for events on ``entity``.

    Raises :class:`~integrations.errors.InvalidInput` naming the offending rule, e.g.
    ``filterCriteria.rules[1].value: invalid regular expression: missing ): (``, for an invalid
    regex, an empty key, or (for models built without validation) an unknown operator.
    """
    if criteria is None:
        return Matcher(())
    compiled: list[CompiledRule] = []
    for index, rule in enumerate(criteria.rules):
        where = f"filterCriteria.rules[{index}]"
        key = rule.key.strip()
        if not key:
            raise InvalidInput(f"{where}.key", "must not be empty")
        # Models built with ``model_construct`` skip validation, so parse defensively.
        try:
            operator = Operator.parse(rule.operator)
        except ValueError as exc:
            raise InvalidInput(f"{where}.operator", str(exc)) from None
        try:
            resource = None if rule.resourceType is None else Entity.parse(rule.resourceType)
        except ValueError as exc:
            raise InvalidInput(f"{where}.resourceType", str(exc)) from None
        scope = None if resource is None or resource is entity else resource.token
        compiled.append(
            CompiledRule(
                index=index,
                scope=scope,
                # Stripped: outer whitespace in a key is a form-entry slip ("Subject "),
                # never part of a real field name.
                key=key,
                operator=operator,
                criterion=prepare(operator, rule.value, field=f"{where}.value"),
                predicate=OPERATORS[operator],
            )
        )
    return Matcher(compiled, MatchType.parse(criteria.matchType))
