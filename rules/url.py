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
from rules.values import to_text

_TOKEN = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)")


def render_url(
    url: str, *, entity: str, data: Mapping[str, Any], extra: Mapping[str, Any] | None = None
) -> str:
    """Substitute ``$`` tokens in ``url``; raise :class:`RuleError` for one with no value."""
    if "$" not in url:
        return url
    scope: dict[str, Any] = {**(extra or {}), str(entity).lower(): data}
    memo: Memo = {}

    def substitute(match: re.Match[str]) -> str:
        value = compile_path(match.group(1))(memo, scope)
        if value is MISSING or value is None or value == "":
            raise RuleError("endPointURI", f"${match.group(1)} has no value for this entity")
        return quote(to_text(value), safe="")

    return _TOKEN.sub(substitute, url)


@functools.lru_cache(maxsize=1024)
def referenced_names(url: str, entity: str) -> frozenset[str]:
    """The top-level names ``url``'s tokens read besides the entity's (``{"extTicketId"}``).

    As :func:`rules.render.referenced_names`: names as written, only the exact entity token
    left out.
    """
    names = {match.group(1).split(".", 1)[0] for match in _TOKEN.finditer(url)}
    names.discard(str(entity).lower())
    return frozenset(names)
