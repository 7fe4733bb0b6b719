"""rules.matcher: filterCriteria compiled once, evaluated per message."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.enums import Entity, MatchType, Operator
from integrations.models import FilterCriteria, Rule
from rules.errors import RuleError
from rules.fields import FieldView
from rules.matcher import Matcher, compile_criteria

INCIDENT: dict[str, Any] = {
    "subject": "Windows server down",
    "Description": "testing the disk alarm",
    "priority": {"name": "P1"},
    "resource": {"Name": "web-01", "type": "SERVER", "tags": ["prod", "eu"]},
    "impact": None,
    "count": 3,
    "acknowledged": False,
}


def criteria(match_type: str, *rules: dict[str, Any]) -> FilterCriteria:
    """Build criteria through the real model, as the API would."""
    return FilterCriteria.model_validate({"matchType": match_type, "rules": list(rules)})


def rule(key: str, operator: str, value: str, resource_type: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"key": key, "operator": operator, "value": value}
    if resource_type is not None:
        body["resourceType"] = resource_type
    return body


def test_seed_criteria_any() -> None:
    # The seed's "Create Event with Filter Criteria" rules.
    seed = criteria(
        "ANY",
        rule("Subject", "Contains", "test", "INCIDENT"),
        rule("Description", "Contains", "testing", "INCIDENT"),
    )
    matcher = compile_criteria(seed, Entity.INCIDENT)
    assert matcher.matches(INCIDENT)  # description contains "testing"
    assert matcher.explain(INCIDENT) == (False, True)
    assert not matcher.matches({"subject": "prod", "description": "outage"})


@pytest.mark.parametrize(
    ("match_type", "rules", "expected"),
    [
        ("ANY", [rule("subject", "Contains", "windows"), rule("subject", "Contains", "x")], True),
        ("ALL", [rule("subject", "Contains", "windows"), rule("subject", "Contains", "x")], False),
        ("ALL", [rule("subject", "Contains", "windows"), rule("count", "Equals", "3")], True),
        ("ANY", [rule("subject", "Equals", "nope"), rule("count", "Equals", "4")], False),
        ("any", [rule("SUBJECT", "starts_with", "WIN")], True),
        ("all", [rule("priority.name", "EQUALS", "p1")], True),
        ("ALL", [rule("Priority.Name", "Not Equals", "P1")], False),
        ("ALL", [rule("acknowledged", "Equals", "false")], True),
        # missing and None fields read as ""
        ("ALL", [rule("impact", "Not Contains", "High")], True),
        ("ALL", [rule("impact", "Contains", "High")], False),
        ("ALL", [rule("nosuchfield", "Equals", "")], True),
        ("ALL", [rule("nosuchfield", "Not Equals", "x")], True),
        # resourceType equal to the entity: key read from the data itself
        ("ALL", [rule("subject", "Contains", "server", "INCIDENT")], True),
        ("ALL", [rule("subject", "Contains", "server", "Incident")], True),
        # resourceType different: key read under data["resource"], case-insensitively
        ("ALL", [rule("name", "Equals", "WEB-01", "RESOURCE")], True),
        ("ALL", [rule("NAME", "Starts with", "web", "Resource")], True),
        ("ALL", [rule("tags", "Equals", "eu", "RESOURCE")], True),
        ("ALL", [rule("tags.0", "Equals", "prod", "RESOURCE")], True),
        ("ALL", [rule("subject", "Contains", "server", "RESOURCE")], False),
        ("ALL", [rule("subject", "Not Contains", "server", "RESOURCE")], True),
        # the nested object is absent: the field is missing
        ("ALL", [rule("name", "Equals", "", "ALERT")], True),
        ("ALL", [rule("name", "Contains", "a", "ALERT")], False),
        (
            "ANY",
            [rule("name", "Regex", "^web-\\d+$", "RESOURCE"), rule("x", "Contains", "y")],
            True,
        ),
    ],
)
def test_criteria_table(match_type: str, rules: list[dict[str, Any]], expected: bool) -> None:
    matcher = compile_criteria(criteria(match_type, *rules), Entity.INCIDENT)
    assert matcher.matches(INCIDENT) is expected
    # The same criteria as plain JSON, with the spellings a client sent, and a plain entity.
    plain = compile_criteria({"matchType": match_type, "rules": rules}, "INCIDENT")
    assert plain.matches(INCIDENT) is expected
    assert plain.matches(FieldView(INCIDENT)) is expected
    assert plain.explain(INCIDENT) == matcher.explain(FieldView(INCIDENT))


def test_one_view_serves_many_matchers_and_folds_each_mapping_once() -> None:
    data = {"SUBJECT": "Windows down", "subject": "second spelling", "priority": {"Name": "P1"}}
    view = FieldView(data)
    first = compile_criteria(criteria("ALL", rule("Subject", "Equals", "windows down")), "INCIDENT")
    second = compile_criteria(criteria("ALL", rule("priority.NAME", "Equals", "p1")), "INCIDENT")
    # No exact "Subject": the first key in order that folds to it wins, as without a view.
    assert first.matches(view) and first.matches(data)
    assert second.matches(view) and second.matches(data)
    assert first.rules[0].value_in(view) == "Windows down"


def test_nested_resource_list_uses_list_semantics() -> None:
    data = {"resource": [{"name": "db-01"}, {"name": "web-01"}, "not an object"]}
    any_web = compile_criteria(
        criteria("ALL", rule("name", "Starts with", "web", "RESOURCE")), Entity.INCIDENT
    )
    no_web = compile_criteria(
        criteria("ALL", rule("name", "Not Contains", "web", "RESOURCE")), Entity.INCIDENT
    )
    assert any_web.matches(data)
    assert not no_web.matches(data)
    assert no_web.matches({"resource": [{"other": 1}]})  # no element has the key: missing


def test_resource_entity_reads_its_own_fields() -> None:
    matcher = compile_criteria(
        criteria("ALL", rule("name", "Equals", "web-01", "RESOURCE")), Entity.RESOURCE
    )
    assert matcher.matches({"name": "web-01"})
    assert matcher.rules[0].scope is None


@pytest.mark.parametrize("empty", [None, FilterCriteria(), criteria("ALL"), criteria("ANY")])
def test_no_rules_match_everything(empty: FilterCriteria | None) -> None:
    matcher = compile_criteria(empty, Entity.ALERT)
    assert matcher.matches({})
    assert matcher.matches({"anything": 1})
    assert matcher.explain({}) == ()


def test_invalid_regex_names_the_rule_index() -> None:
    bad = criteria("ANY", rule("subject", "Contains", "("), rule("subject", "Regex", "(unclosed"))
    with pytest.raises(RuleError) as caught:
        compile_criteria(bad, Entity.INCIDENT)
    assert caught.value.field == "filterCriteria.rules[1].value"
    assert "invalid regular expression" in caught.value.reason
    assert str(caught.value).startswith("filterCriteria.rules[1].value: invalid regular expression")


@pytest.mark.parametrize("key", ["", "   "])
def test_empty_keys_are_rejected(key: str) -> None:
    # Rule validation forbids "", but a model built without validation must not slip through.
    unchecked = FilterCriteria.model_construct(
        matchType=MatchType.ALL,
        rules=[
            Rule(key="subject", operator=Operator.CONTAINS, value="a"),
            Rule.model_construct(key=key, operator=Operator.EQUALS, value="x", resourceType=None),
        ],
    )
    with pytest.raises(RuleError) as caught:
        compile_criteria(unchecked, Entity.INCIDENT)
    assert caught.value.field == "filterCriteria.rules[1].key"


def test_unvalidated_operator_spelling_is_parsed_or_rejected() -> None:
    def build(operator: str) -> FilterCriteria:
        return FilterCriteria.model_construct(
            matchType="all",
            rules=[Rule.model_construct(key="s", operator=operator, value="x", resourceType=None)],
        )

    assert compile_criteria(build("NOT CONTAINS"), Entity.INCIDENT).matches({"s": "y"})
    with pytest.raises(RuleError) as caught:
        compile_criteria(build("Sounds like"), Entity.INCIDENT)
    assert caught.value.field == "filterCriteria.rules[0].operator"


RULE0 = "filterCriteria.rules[0]"


@pytest.mark.parametrize(
    ("plain", "field"),
    [
        ({"matchType": "SOME", "rules": []}, "filterCriteria.matchType"),
        ({"rules": [{"operator": "Contains", "value": "x"}]}, "filterCriteria.rules[0].key"),
        (
            {"rules": [{"key": "s", "operator": "Contains", "value": 5}]},
            "filterCriteria.rules[0].value",
        ),
        (
            {"rules": [{"key": "s", "operator": "Equals", "resourceType": 3}]},
            "filterCriteria.rules[0].resourceType",
        ),
    ],
)
def test_plain_criteria_are_checked_like_models(plain: dict[str, Any], field: str) -> None:
    with pytest.raises(RuleError) as caught:
        compile_criteria(plain, "INCIDENT")
    assert caught.value.field == field


def test_matcher_precomputes_rule_values() -> None:
    matcher = compile_criteria(
        criteria("ALL", rule("subject", "Contains", "WINDOWS"), rule("subject", "Regex", "^W")),
        Entity.INCIDENT,
    )
    first, second = matcher.rules
    assert first.criterion.folded == "windows"
    assert second.criterion.pattern is not None
    assert matcher.match_type is MatchType.ALL  # integrations.enums re-exports rules.names'
    assert repr(matcher) == "Matcher(ALL, 2 rules)"


def test_matcher_is_reusable_across_messages() -> None:
    matcher = compile_criteria(criteria("ALL", rule("subject", "Contains", "db")), Entity.INCIDENT)
    messages = [{"subject": f"host-{i} {'db' if i % 2 else 'web'}"} for i in range(100)]
    assert [matcher.matches(m) for m in messages] == [bool(i % 2) for i in range(100)]


def test_matcher_direct_construction_defaults_to_any() -> None:
    assert Matcher(()).match_type is MatchType.ANY
