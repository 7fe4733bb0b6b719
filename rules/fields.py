"""Reading a field out of entity data by a rule key or placeholder path.

OpsRamp users write keys the way the UI labels them (``Subject``) while the entity JSON
spells them ``subject``; both must work. So:

* A key is looked up exactly first, then case-insensitively (``str.casefold``). When several
  keys fold to the same text, the first in the mapping's order wins.
* A dotted path (``priority.name``) walks nested mappings. A mapping key that itself contains
  a dot (``{"priority.name": ...}``) is found when it spells the whole rest of the path: at
  each level the remaining path is tried as one key before it is split (no backtracking over
  other split points, which would cost a key scan per combination on every message).
* A purely numeric segment indexes a list (``tags.0``); negative indexes are not supported.
* :data:`MISSING` is returned when any step is absent. An explicit ``None`` (JSON ``null``)
  is returned as ``None``: the *callers* decide that it counts as missing (the operators treat
  both as the empty string, the renderer prints both as ``""``/``null`` and warns).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final


class _Missing:
    """Type of :data:`MISSING`: falsy, and a singleton so ``is`` comparisons work."""

    __slots__ = ()
    _instance: ClassVar[_Missing | None] = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "MISSING"


#: Returned by :func:`resolve` when the path does not exist in the data.
MISSING: Final = _Missing()


def is_missing(value: Any) -> bool:
    """True for :data:`MISSING` and for ``None``: both mean "no value" to rules and templates."""
    return value is None or value is MISSING


def get_key(data: Mapping[str, Any], key: str) -> Any:
    """One mapping lookup: exact key first, then case-insensitive; :data:`MISSING` if absent."""
    try:
        return data[key]
    except (KeyError, TypeError):
        pass
    folded = key.casefold()
    for candidate, value in data.items():
        if isinstance(candidate, str) and candidate.casefold() == folded:
            return value
    return MISSING


def _step(current: Any, segment: str) -> Any:
    """Move one path segment down from ``current`` (a mapping or a list)."""
    if isinstance(current, Mapping):
        return get_key(current, segment)
    # str is a Sequence too, but ``subject.0`` meaning "first character" would only surprise.
    if isinstance(current, Sequence) and not isinstance(current, str | bytes) and segment.isdigit():
        index = int(segment)
        return current[index] if index < len(current) else MISSING
    return MISSING


def resolve(data: Mapping[str, Any], path: str) -> Any:
    """The value at dotted ``path`` in ``data``, or :data:`MISSING` when absent.

    See the module docstring for case folding, dotted keys and list indexes. ``None`` values
    are returned as ``None``; use :func:`is_missing` to treat them as absent.
    """
    if not path:
        return MISSING
    current: Any = data
    remaining = path
    while True:
        if "." in remaining and isinstance(current, Mapping):
            # A literal dotted key beats walking: {"a.b": 1} answers "a.b".
            whole = get_key(current, remaining)
            if whole is not MISSING:
                return whole
        segment, dot, rest = remaining.partition(".")
        current = _step(current, segment)
        if current is MISSING or not dot:
            return current
        remaining = rest
