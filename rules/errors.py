"""The one error the rule engine raises on purpose: input it cannot compile or render.

It names the offending field with a dotted path (``filterCriteria.rules[1].value``,
``payload``, ``endPointURI``), so that an API can answer 400 naming it. It subclasses
``ValueError`` because that is what it is; Herald's own error tree adapts it
(:class:`integrations.errors.InvalidInput` wraps it), since this package depends on nothing
outside the standard library, ``re2`` and ``jinja2``.
"""

from __future__ import annotations


class RuleError(ValueError):
    """Criteria, a template or a URL that cannot be compiled or rendered.

    ``field`` is a dotted path; ``problem`` says what is wrong with it; ``reason`` is both,
    the way the error prints (``filterCriteria.rules[1].value: invalid regular expression...``).
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        self.reason = f"{field}: {problem}" if field else problem
        super().__init__(self.reason)

    def __str__(self) -> str:
        return self.reason
