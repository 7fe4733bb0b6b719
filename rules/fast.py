"""Rendering templates made only of text and ``$`` placeholders, without Jinja.

Internal to :mod:`rules.render`. Most payloads are JSON with ``$incident.subject``-style
placeholders and no Jinja syntax at all. For those, the translation to Jinja
(:func:`rules.scan.translate`) is literal text between ``{{ __herald_token__(N) }}`` calls, so
the template is split there once into literal pieces and slots; a render is then one path read
and one escape per slot and a ``str.join``. The escaping contexts, the escaping itself and the
warnings are the very ones the sandbox uses (:mod:`rules.escape`), and the literal text gets
what Jinja does to it: newlines (``\\r\\n``, ``\\r``) normalised to ``\\n``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from rules.escape import RenderState, evaluate, format_value
from rules.fields import MISSING, Memo, Reader, compile_path, lookup
from rules.scan import BRACE, TOKEN_FN, Slot

_CALL: Final = re.compile(r"\{\{ " + re.escape(TOKEN_FN) + r"\((\d+)\) \}\}")
# Jinja's lexer rewrites every newline sequence in template data to its newline_sequence.
_NEWLINES: Final = re.compile(r"\r\n|\r|\n")


def is_plain(template: str) -> bool:
    """Whether ``template`` has no Jinja syntax: only text and ``$`` placeholders."""
    return "{{" not in template and "{%" not in template and "{#" not in template


@dataclass(frozen=True, slots=True)
class _Hole:
    slot: Slot
    #: Index of the hole's variable in :attr:`Plain.roots`.
    root: int
    path: Reader | None


@dataclass(frozen=True, slots=True)
class Plain:
    """A placeholder-only template: ``pieces[0] hole[0] pieces[1] ... pieces[-1]``."""

    pieces: tuple[str, ...]
    holes: tuple[_Hole, ...]
    #: The distinct variables the holes read, ``(name, folded name)``: each looked up once.
    roots: tuple[tuple[str, str], ...]

    def render(self, roots: Mapping[str, Any], state: RenderState) -> str:
        """The payload for ``roots`` (variable name -> value), warnings into ``state``."""
        memo: Memo = {}
        values = [lookup(memo, roots, name, folded) for name, folded in self.roots]
        pieces = self.pieces
        out = [pieces[0]]
        for number, hole in enumerate(self.holes, 1):
            if hole.slot.call is not None:
                value = evaluate(state, hole.slot)
                out.append(format_value(state, hole.slot, value, undefined_printed=False))
                out.append(pieces[number])
                continue
            root = values[hole.root]
            if root is MISSING:
                state.warn(f"{hole.slot.label} is not a known placeholder; left as written")
                out.append(hole.slot.label)
            else:
                value = root if hole.path is None else hole.path(memo, root)
                out.append(format_value(state, hole.slot, value, undefined_printed=False))
            out.append(pieces[number])
        return "".join(out)


def compile_plain(source: str, slots: tuple[Slot, ...]) -> Plain:
    """Split the translation ``source`` of a plain template at its placeholder calls."""
    parts = _CALL.split(source)
    # split() alternates literal text and the captured slot numbers, which run 0, 1, 2...
    # A plain template has no "{{" of its own, so every BRACE is one translate() wrote.
    pieces = tuple(_NEWLINES.sub("\n", text.replace(BRACE, "{")) for text in parts[0::2])
    order = [int(number) for number in parts[1::2]]
    if order != list(range(len(slots))):  # translate() numbers slots in order of appearance
        raise AssertionError("placeholder calls out of order in a plain template")
    # A call's hole reads its roots through rules.functions; it takes no root of its own.
    names = list(dict.fromkeys(slot.root for slot in slots if slot.call is None))
    holes = tuple(
        _Hole(
            slot,
            names.index(slot.root) if slot.call is None else -1,
            compile_path(slot.path) if slot.path and slot.call is None else None,
        )
        for slot in slots
    )
    return Plain(pieces, holes, tuple((name, name.casefold()) for name in names))
