"""integrations.rulebook: the rule engine's RuleError becomes Herald's InvalidInput."""

from __future__ import annotations

import pytest

from integrations.enums import Entity
from integrations.errors import InvalidInput, PermanentError
from integrations.models import FilterCriteria
from integrations.rulebook import compile_criteria, render, render_url, validate_template
from rules.render import Syntax


def test_invalid_regex_is_invalid_input_naming_the_rule() -> None:
    bad = FilterCriteria.model_validate(
        {"rules": [{"key": "subject", "operator": "Regex", "value": "(unclosed"}]}
    )
    with pytest.raises(InvalidInput) as caught:
        compile_criteria(bad, Entity.INCIDENT)
    assert isinstance(caught.value, PermanentError)
    assert caught.value.field == "filterCriteria.rules[0].value"
    assert caught.value.problem.startswith("invalid regular expression: ")


def test_template_errors_are_invalid_input_on_payload() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_template("{{ incident.subject ")
    assert caught.value.field == "payload"
    with pytest.raises(InvalidInput) as failed:
        render("{{ 1 // 0 }}", entity=Entity.INCIDENT, data={}, syntax=Syntax.TEXT)
    assert failed.value.field == "payload"
    assert "ZeroDivisionError" in failed.value.problem
    assert isinstance(failed.value.__cause__, ZeroDivisionError)


def test_url_without_value_is_invalid_input_on_endpoint() -> None:
    with pytest.raises(InvalidInput) as caught:
        render_url("/t/$extTicketId", entity=Entity.INCIDENT, data={})
    assert caught.value.field == "endPointURI"
    assert render_url("/t/$incident.id", entity=Entity.INCIDENT, data={"id": "a/b"}) == "/t/a%2Fb"


def test_working_calls_pass_through() -> None:
    matcher = compile_criteria(None, Entity.INCIDENT)
    assert matcher.matches({})
    out = render('{"s":"$incident.subject"}', entity=Entity.INCIDENT, data={"subject": 'a"b'})
    assert out.body == '{"s":"a\\"b"}'
