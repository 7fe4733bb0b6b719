"""Regex patterns that are really a few literal strings, tested without a regex engine.

Most tenant patterns are words and alternatives (``disk (full|failure)``, ``P1|P2``). Such a
pattern denotes a *finite* set of strings, and a regex search for it succeeds exactly when one
of those strings occurs in the text: so ``any(s in text for s in strings)`` gives the same
answer as RE2, at the cost of a substring search instead of a trip through RE2's bindings
(about 7 us per search on this machine, against tens of nanoseconds).

The subset is small on purpose, so that equivalence with RE2 is evident and nothing can
backtrack (no regex engine runs at all; ``str.__contains__`` is a linear-time search):

* literal characters (anything but ``\\ . ^ $ * + ? { } [ ] | ( )``);
* a backslash before one of those metacharacters or ``-``/``/``, meaning that character;
* groups ``( )`` and ``(?: )`` holding alternatives of the above, and ``|``;
* ``^`` as the very first character of a pattern without a top-level ``|`` (then the test is
  ``startswith``; ``^a|b`` anchors only its first branch, so it stays on RE2).

No quantifier, class, flag, ``.`` or ``$`` is accepted (``$`` does not even mean the same in
RE2 and Python); such a pattern returns ``None`` and stays on RE2. The set of strings is capped
at :data:`LIMIT`, since ``(a|b)(c|d)...`` multiplies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

#: The most strings a pattern may stand for and still be tested literally.
LIMIT: Final = 16

_META: Final = frozenset("\\.^$*+?{}[]|()")
_ESCAPABLE: Final = _META | frozenset("-/")


class _NotLiteral(Exception):
    """The pattern is outside the literal subset."""


def literal_strings(pattern: str) -> tuple[bool, tuple[str, ...]] | None:
    """``(anchored, strings)`` when ``pattern`` is in the literal subset, else ``None``.

    ``anchored`` means the pattern began with ``^``: a match must start the text. The pattern
    must already be valid RE2 (this does not report syntax errors, it only declines).
    """
    anchored = pattern.startswith("^")
    parser = _Parser(pattern, 1 if anchored else 0)
    try:
        strings = parser.alternatives()
        if parser.pos != len(pattern):  # an unbalanced ")"
            return None
        if anchored and parser.top_level_bars:
            return None  # "^a|b" anchors only its first branch: (^a)|b
    except _NotLiteral:
        return None
    # Shorter strings first: "a|ab" needs only "a"; duplicates go.
    unique = sorted(set(strings), key=lambda s: (len(s), s))
    return anchored, tuple(unique)


class _Parser:
    __slots__ = ("depth", "pattern", "pos", "top_level_bars")

    def __init__(self, pattern: str, pos: int) -> None:
        self.pattern = pattern
        self.pos = pos
        self.depth = 0
        self.top_level_bars = False

    def alternatives(self) -> list[str]:
        """``seq ('|' seq)*`` up to a ``)`` or the end."""
        strings = self.sequence()
        while self.pos < len(self.pattern) and self.pattern[self.pos] == "|":
            if self.depth == 0:
                self.top_level_bars = True
            self.pos += 1
            strings = strings + self.sequence()
            if len(strings) > LIMIT:
                raise _NotLiteral
        return strings

    def sequence(self) -> list[str]:
        """Concatenated atoms up to ``|``, ``)`` or the end: every combination of them."""
        pattern = self.pattern
        strings = [""]
        while self.pos < len(pattern):
            char = pattern[self.pos]
            if char in "|)":
                break
            if char == "(":
                self.pos += 1
                if pattern.startswith("?:", self.pos):
                    self.pos += 2
                elif pattern.startswith("?", self.pos):  # flags, names, look-around
                    raise _NotLiteral
                self.depth += 1
                inner = self.alternatives()
                self.depth -= 1
                if self.pos >= len(pattern) or pattern[self.pos] != ")":
                    raise _NotLiteral
                self.pos += 1
                strings = [head + tail for head in strings for tail in inner]
                if len(strings) > LIMIT:
                    raise _NotLiteral
                continue
            if char == "\\":
                escaped = pattern[self.pos + 1 : self.pos + 2]
                if not escaped or escaped not in _ESCAPABLE:
                    raise _NotLiteral
                char = escaped
                self.pos += 1
            elif char in _META:
                raise _NotLiteral
            self.pos += 1
            strings = [head + char for head in strings]
        return strings


def literal_search(anchored: bool, strings: tuple[str, ...]) -> Callable[[str], bool]:
    """A ``test(text) -> bool`` equal to an RE2 search for the pattern these strings came from."""
    if anchored:
        starts = strings  # str.startswith takes a tuple: one call for every alternative

        def test_start(text: str) -> bool:
            return text.startswith(starts)

        return test_start
    if len(strings) == 1:
        (needle,) = strings

        def test_one(text: str) -> bool:
            return needle in text

        return test_one

    def test_any(text: str) -> bool:
        for needle in strings:  # noqa: SIM110 -- a loop beats any() over a generator here
            if needle in text:
                return True
        return False

    return test_any
