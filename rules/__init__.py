"""Herald's pure rule engine: filter matching and payload rendering.

Nothing here performs I/O: no network, Redis or database. Modules:

* :mod:`rules.fields` -- reading a (dotted, case-insensitive) field out of entity data;
* :mod:`rules.values` -- how field values become text and JSON;
* :mod:`rules.operators` -- one predicate per filter operator;
* :mod:`rules.matcher` -- ``filterCriteria`` compiled into a :class:`~rules.matcher.Matcher`;
* :mod:`rules.render` -- ``$placeholder`` and Jinja payload rendering with context escaping.
"""

from rules.fields import MISSING, resolve
from rules.matcher import Matcher, compile_criteria
from rules.operators import OPERATORS
from rules.render import Rendered, Syntax, detect_syntax, render, validate_template

__all__ = [
    "MISSING",
    "OPERATORS",
    "Matcher",
    "Rendered",
    "Syntax",
    "compile_criteria",
    "detect_syntax",
    "render",
    "resolve",
    "validate_template",
]
