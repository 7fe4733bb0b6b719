"""Placeholders in an endpoint URL: ``/tickets/$extTicketId`` addresses a remote ticket.

Unlike payloads, a URL gets no Jinja: only OpsRamp ``$`` tokens, each value percent-encoded as
one path segment, so a captured id such as ``a/../b`` can never change which resource the URL
names. A token with no value is an error: a URL with a hole in it would address the wrong
resource, which is worse than not sending.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from rules.errors import RuleError
from rules.fields import MISSING, Memo, compile_path
from rules.functions import FUNCTION_ROOTS, Call, Escaped, Scope, call, names_read, parse_call
from rules.values import to_text

_TOKEN = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)")


def _pieces(url: str) -> list[str | Call]:
    """``url`` as literal text, ``$`` tokens (``str`` starting with ``$``) and calls."""
    out: list[str | Call] = []
    pos = 0
    for match in _TOKEN.finditer(url):
        if match.start() < pos:  # inside a call already taken
            continue
        out.append(url[pos : match.start()])
        if match.group(1).split(".", 1)[0] in FUNCTION_ROOTS:
            found, pos = parse_call(url, match.start(), "endPointURI")
            out.append(found)
        else:
            out.append(match.group())
            pos = match.end()
    out.append(url[pos:])
    return out


@functools.lru_cache(maxsize=1024)
def _parsed(url: str) -> tuple[str | Call, ...]:
    return tuple(_pieces(url))


def render_url(
    url: str, *, entity: str, data: Mapping[str, Any], extra: Mapping[str, Any] | None = None
) -> str:
    """Substitute ``$`` tokens and calls in ``url``; :class:`RuleError` for one with no
    value (a call included)."""
    if "$" not in url:
        return url
    token = str(entity).lower()
    roots: dict[str, Any] = {**(extra or {}), token: data}
    memo: Memo = {}
    out = []
    for i, piece in enumerate(_parsed(url)):
        if i % 2 == 0:
            assert isinstance(piece, str)
            out.append(piece)
            continue
        if isinstance(piece, Call):
            value = call(piece, Scope(roots, token))
            label = piece.label
        else:
            value = compile_path(piece[1:])(memo, roots)
            label = piece
        if value is MISSING or value is None or value == "":
            raise RuleError("endPointURI", f"{label} has no value for this entity")
        if isinstance(value, Escaped):
            # $esc.url is the segment's own escaping: not twice. Any other is text to encode.
            out.append(value.text if value.flavor == "url" else quote(value.text, safe=""))
        else:
            out.append(quote(to_text(value), safe=""))
    return "".join(out)


def validate_url(url: str) -> None:
    """:class:`RuleError` naming ``endPointURI`` if a call in ``url`` is not a valid one."""
    _parsed(url)


@functools.lru_cache(maxsize=1024)
def referenced_names(url: str, entity: str, *, implied: bool = True) -> frozenset[str]:
    """The top-level names ``url``'s tokens read besides the entity's (``{"extTicketId"}``).

    As :func:`rules.render.referenced_names`: names as written, only the exact entity token
    left out.
    """
    names: set[str] = set()
    for piece in _parsed(url)[1::2]:
        if isinstance(piece, Call):
            names |= names_read(piece, implied=implied)
        else:
            assert isinstance(piece, str)
            names.add(piece[1:].split(".", 1)[0])
    names.discard(str(entity).lower())
    return frozenset(names)
