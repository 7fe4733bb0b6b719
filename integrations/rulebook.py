"""The rule engine as Herald's API and worker call it: Herald's models in, Herald's errors out.

:mod:`rules` depends on nothing of Herald's, so it raises its own
:class:`~rules.errors.RuleError`; these wrappers re-raise it as
:class:`~integrations.errors.InvalidInput` (same field, same message), which the API answers
with a 400 naming the field and the worker records as a permanent failure. Everything else is
passed through unchanged: a :class:`~integrations.models.FilterCriteria` and an
:class:`~integrations.enums.Entity` are already the shapes :mod:`rules` accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from integrations.enums import Entity
from integrations.errors import InvalidInput
from integrations.models import FilterCriteria
from rules.errors import RuleError
from rules.matcher import Matcher
from rules.matcher import compile_criteria as _compile_criteria
from rules.render import Rendered, Syntax
from rules.render import referenced_names as _template_names
from rules.render import render as _render
from rules.render import validate_template as _validate_template
from rules.url import referenced_names as _url_names
from rules.url import render_url as _render_url
from rules.url import validate_url as _validate_url


def compile_criteria(criteria: FilterCriteria | None, entity: Entity) -> Matcher:
    """:func:`rules.matcher.compile_criteria`, raising ``InvalidInput`` naming the rule."""
    try:
        return _compile_criteria(criteria, entity)
    except RuleError as exc:
        raise InvalidInput.from_rule_error(exc) from None


def validate_template(template: str) -> None:
    """:func:`rules.render.validate_template`, raising ``InvalidInput("payload", ...)``."""
    try:
        _validate_template(template)
    except RuleError as exc:
        raise InvalidInput.from_rule_error(exc) from None


def render(
    template: str,
    *,
    entity: Entity,
    data: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
    syntax: Syntax | None = None,
    reraise: tuple[type[BaseException], ...] = (),
) -> Rendered:
    """:func:`rules.render.render`, raising ``InvalidInput("payload", ...)``."""
    try:
        return _render(
            template, entity=entity, data=data, extra=extra, syntax=syntax, reraise=reraise
        )
    except RuleError as exc:
        raise InvalidInput.from_rule_error(exc) from exc.__cause__


def render_url(
    url: str, *, entity: Entity, data: Mapping[str, Any], extra: Mapping[str, Any] | None = None
) -> str:
    """:func:`rules.url.render_url`, raising ``InvalidInput("endPointURI", ...)``."""
    try:
        return _render_url(url, entity=entity, data=data, extra=extra)
    except RuleError as exc:
        raise InvalidInput.from_rule_error(exc) from None


def validate_url_template(url: str) -> None:
    """:func:`rules.url.validate_url`, raising ``InvalidInput("endPointURI", ...)``."""
    try:
        _validate_url(url)
    except RuleError as exc:
        raise InvalidInput.from_rule_error(exc) from None


def template_names(template: str, entity: Entity) -> frozenset[str]:
    """The top-level names a payload template writes besides its entity's token."""
    try:
        return _template_names(template, entity, implied=False)
    except RuleError as exc:
        raise InvalidInput.from_rule_error(exc) from None


def url_names(url: str, entity: Entity) -> frozenset[str]:
    """The same for an endpoint URL."""
    try:
        return _url_names(url, entity, implied=False)
    except RuleError as exc:
        raise InvalidInput.from_rule_error(exc) from None
