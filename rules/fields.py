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

Speed: a path is split and case-folded once (:func:`compile_path`, cached), and the exact
spelling costs one ``dict.get``. Only a miss needs the case-insensitive answer. It comes from a
folded index of the mapping's keys, computed once per distinct key set (the changes of one
producer share a few shapes) and remembered, for one change, by a :class:`FieldView`: every
rule of every event matched against that change shares it instead of scanning the keys again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
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


def _exact(data: Mapping[str, Any], key: str) -> Any:
    # get() rather than [] and KeyError: a miss is the common case for UI spellings, and
    # raising costs more than the whole rest of a rule.
    try:
        return data.get(key, MISSING)
    except TypeError:  # a mapping that cannot hold str keys
        return MISSING


def _scan(data: Mapping[str, Any], folded: str) -> Any:
    """The first value whose key folds to ``folded``, in mapping order."""
    for candidate, value in data.items():
        if isinstance(candidate, str) and candidate.casefold() == folded:
            return value
    return MISSING


def get_key(data: Mapping[str, Any], key: str) -> Any:
    """One mapping lookup: exact key first, then case-insensitive; :data:`MISSING` if absent."""
    value = _exact(data, key)
    return value if value is not MISSING else _scan(data, key.casefold())


#: ``{id(mapping): (mapping, {folded key: key})}``: the folded indexes one change has used.
#: The mapping is held so that its id cannot be reused by another object meanwhile.
Memo = dict[int, tuple[Mapping[str, Any], dict[str, Any]]]


def lookup(memo: Memo, mapping: Mapping[str, Any], key: str, folded: str) -> Any:
    """``get_key(mapping, key)`` with ``folded == key.casefold()``, folding through ``memo``."""
    value = _exact(mapping, key)
    return value if value is not MISSING else folded_lookup(memo, mapping, folded)


def folded_lookup(memo: Memo, mapping: Mapping[str, Any], folded: str) -> Any:
    """The first value of ``mapping`` whose key folds to ``folded`` (the miss path)."""
    entry = memo.get(id(mapping))
    if entry is None or entry[0] is not mapping:
        entry = (mapping, _folded_keys(tuple(mapping)))
        memo[id(mapping)] = entry
    original = entry[1].get(folded, MISSING)
    return MISSING if original is MISSING else mapping[original]


class FieldView:
    """One change's data, with each mapping's folded index looked up at most once.

    Build one per entity change and pass it to every matcher (``Matcher.matches`` accepts a
    view or a plain mapping, which gets a memory of its own for that one call). The data
    must not be mutated while the view is in use: the folded index of a mapping is taken
    from its keys the first time a lookup misses in it.
    """

    __slots__ = ("data", "memo")

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.memo: Memo = {}

    def get(self, mapping: Mapping[str, Any], key: str) -> Any:
        """``get_key(mapping, key)`` for a mapping inside this change's data."""
        return lookup(self.memo, mapping, key, key.casefold())


@functools.lru_cache(maxsize=2048)
def _folded_keys(keys: tuple[Any, ...]) -> dict[str, Any]:
    """``{folded key: key}`` for one key set, the first key in order winning a collision.

    Keyed by the whole key tuple, in order: entity changes of one producer share a handful of
    shapes, so each shape is folded once per process, not once per change. The answer is a
    pure function of the tuple, so the cache can never be stale.
    """
    index: dict[str, Any] = {}
    for key in keys:
        if isinstance(key, str):
            index.setdefault(key.casefold(), key)
    return index


#: ``reader(memo, start) -> value``: a compiled path read from ``start`` (a mapping or list).
Reader = Callable[[Memo, Any], Any]


def _read_key(key: str) -> Reader:
    folded = key.casefold()
    index = _index_of(key)

    def read(memo: Memo, start: Any) -> Any:
        # dict first: decoded JSON is always one, and isinstance against an ABC costs more.
        if start.__class__ is dict:
            value = start.get(key, MISSING)
            return value if value is not MISSING else folded_lookup(memo, start, folded)
        if isinstance(start, Mapping):
            return lookup(memo, start, key, folded)
        return _item(start, index)

    return read


def _index_of(segment: str) -> int | None:
    return int(segment) if segment.isdigit() else None


@functools.lru_cache(maxsize=4096)
def compile_path(path: str) -> Reader:
    """A reader for dotted ``path`` (see the module docstring); ``""`` reads as missing."""
    if not path:
        return lambda memo, start: MISSING
    if "." not in path:
        return _read_key(path)
    # Each level: the remaining path as one literal key, then the segment to step through.
    steps: list[tuple[str, str, str, str, int | None]] = []
    remaining = path
    while "." in remaining:
        segment, _, rest = remaining.partition(".")
        steps.append(
            (remaining, remaining.casefold(), segment, segment.casefold(), _index_of(segment))
        )
        remaining = rest
    last_key, last_folded, last_index = remaining, remaining.casefold(), _index_of(remaining)
    frozen = tuple(steps)

    def read(memo: Memo, start: Any) -> Any:
        current = start
        for whole, whole_folded, segment, folded, index in frozen:
            if current.__class__ is dict:  # lookup() inlined: this loop is the hot path
                # A literal dotted key beats walking: {"a.b": 1} answers "a.b".
                found = current.get(whole, MISSING)
                if found is MISSING:
                    found = folded_lookup(memo, current, whole_folded)
                if found is not MISSING:
                    return found
                found = current.get(segment, MISSING)
                current = found if found is not MISSING else folded_lookup(memo, current, folded)
            elif isinstance(current, Mapping):
                found = lookup(memo, current, whole, whole_folded)
                if found is not MISSING:
                    return found
                current = lookup(memo, current, segment, folded)
            else:
                current = _item(current, index)
            if current is MISSING:
                return MISSING
        if current.__class__ is dict or isinstance(current, Mapping):
            return lookup(memo, current, last_key, last_folded)
        return _item(current, last_index)

    return read


def _item(current: Any, index: int | None) -> Any:
    """``current[index]`` for a list and a numeric segment, else :data:`MISSING`."""
    # str is a Sequence too, but ``subject.0`` meaning "first character" would only surprise.
    if index is not None and isinstance(current, Sequence) and not isinstance(current, str | bytes):
        return current[index] if index < len(current) else MISSING
    return MISSING


def resolve(data: Mapping[str, Any], path: str, view: FieldView | None = None) -> Any:
    """The value at dotted ``path`` in ``data``, or :data:`MISSING` when absent.

    See the module docstring for case folding, dotted keys and list indexes. ``None`` values
    are returned as ``None``; use :func:`is_missing` to treat them as absent. Pass the change's
    ``view`` to share its folded indexes.
    """
    return compile_path(path)(view.memo if view is not None else {}, data)
