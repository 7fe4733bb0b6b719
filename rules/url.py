"""Placeholders in an endpoint URL: ``/tickets/$extTicketId`` addresses a remote ticket.

Unlike payloads, a URL gets no Jinja: only OpsRamp ``$`` tokens, each value percent-encoded as
one path segment, so a captured id such as ``a/../b`` can never change which resource the URL
names. A token with no value is an error: a URL with a hole in it would address the wrong
resource, which is worse than not sending.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from integrations.enums import Entity
from integrations.errors import InvalidInput
from rules.fields import MISSING, resolve
from rules.values import to_text

_TOKEN = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)")


def render_url(
    url: str, *, entity: Entity, data: Mapping[str, Any], extra: Mapping[str, Any] | None = None
) -> str:
    """Substitute ``$`` tokens in ``url``; raise :class:`InvalidInput` for one with no value."""
    if "$" not in url:
        return url
    scope: dict[str, Any] = {**(extra or {}), entity.token: data}

    def substitute(match: re.Match[str]) -> str:
        value = resolve(scope, match.group(1))
        if value is MISSING or value is None or value == "":
            raise InvalidInput("endPointURI", f"${match.group(1)} has no value for this entity")
        return quote(to_text(value), safe="")

    return _TOKEN.sub(substitute, url)
