"""OpsRamp's ``queryString``: ``field:value`` pairs joined by ``+``, parsed strictly.

A ``+`` in a query string arrives as a space once decoded, and a value may hold spaces
(``displayName:My Ticketing``): a word without a known ``field:`` prefix continues the
previous value. Anything else is a 400 naming ``queryString`` and listing the fields.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from integrations.errors import InvalidInput


def parse_query(text: str, fields: Sequence[str]) -> list[tuple[str, str]]:
    """``[(field, value)]`` of ``text`` (pure); :class:`InvalidInput` if it is not that."""
    pairs: list[tuple[str, str]] = []
    for word in (w for w in re.split(r"[+\s]", text) if w):
        name, colon, value = word.partition(":")
        if colon and name in fields:
            pairs.append((name, value))
        elif colon and (not pairs or re.fullmatch(r"[A-Za-z]\w*", name)):
            raise InvalidInput(
                "queryString", f"unknown field {name!r}; the fields are: {', '.join(fields)}"
            )
        elif pairs:
            last, so_far = pairs[-1]
            pairs[-1] = (last, f"{so_far} {word}")
        else:
            raise InvalidInput(
                "queryString",
                f"expected field:value, got {word!r}; the fields are: {', '.join(fields)}",
            )
    return [(name, value.strip()) for name, value in pairs]
