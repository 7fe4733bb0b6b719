"""Herald's pure rule engine: filter matching and payload rendering.

Nothing here performs I/O: no network, Redis or database. Modules:

* :mod:`rules.fields` -- reading a (dotted, case-insensitive) field out of entity data;
* :mod:`rules.values` -- how field values become text and JSON;
* :mod:`rules.operators` -- one predicate per filter operator;
* :mod:`rules.matcher` -- ``filterCriteria`` compiled into a :class:`~rules.matcher.Matcher`;
* :mod:`rules.literals` -- regexes that are only literal strings, tested without a regex;
* :mod:`rules.matcher` and :mod:`rules.names` -- criteria spellings and their compiled form;
* :mod:`rules.render` -- ``$placeholder`` and Jinja payload rendering with context escaping
  (with :mod:`rules.scan`, :mod:`rules.escape`, :mod:`rules.fast`, :mod:`rules.sandbox`);
* :mod:`rules.url` -- ``$`` tokens in endpoint URLs;
* :mod:`rules.errors` -- :class:`~rules.errors.RuleError`, the one error raised on purpose.

It depends on nothing but the standard library, ``re2`` and ``jinja2``: values come in as
plain JSON-shaped data and strings (or objects with the same attributes).
"""

from rules.errors import RuleError
from rules.fields import MISSING, FieldView, resolve
from rules.matcher import Matcher, compile_criteria
from rules.operators import OPERATORS
from rules.render import Rendered, Syntax, detect_syntax, render, validate_template

__all__ = [
    "MISSING",
    "OPERATORS",
    "FieldView",
    "Matcher",
    "Rendered",
    "RuleError",
    "Syntax",
    "compile_criteria",
    "detect_syntax",
    "render",
    "resolve",
    "validate_template",
]
