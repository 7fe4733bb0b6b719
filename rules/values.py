"""How entity field values become text, for matching and for rendering.

Entity data arrives as decoded JSON, so values are ``str``, ``bool``, ``int``, ``float``,
``None``, dicts and lists. Filter operators and the renderer both need "the value as text";
this module is the single place that decides what that text is, so a rule that matches
``"true"`` and a payload that prints ``true`` always agree:

* ``str`` as is;
* ``bool`` as ``"true"`` / ``"false"`` (JSON spelling, not Python's ``True``);
* ``int`` / ``float`` via ``str()``;
* dicts and lists as compact JSON (``{"a":1}``), non-ASCII kept readable;
* ``None`` as ``""``;
* dates and times in ISO 8601; anything else via ``str()``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any


def json_default(value: Any) -> Any:
    """``json.dumps`` fallback: mappings, sets and tuples as JSON, dates ISO, else ``str``."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def to_json(value: Any) -> str:
    """Compact JSON for ``value``; non-finite floats (NaN, infinity) become ``null``.

    ``allow_nan=False`` because ``NaN`` is not JSON: a payload carrying it would be rejected
    by the receiving side, and ``null`` is the closest honest value.
    """
    try:
        return json.dumps(
            value, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=json_default
        )
    except ValueError:
        return json.dumps(
            _finite(value), ensure_ascii=False, separators=(",", ":"), default=json_default
        )


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by ``None`` (only used on the slow path)."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_finite(item) for item in value]
    return value


def to_text(value: Any) -> str:
    """The text form of a field value (see the module docstring for the rules)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    # bool before int: ``True`` is an ``int`` too, and must print as JSON's ``true``.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        return to_json(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)
