"""Response capture: pick values out of a third-party answer (``responseHeaders``).

An event's ``responseHeaders`` maps names to references into the response, e.g.
``[{"key": "extTicketId", "value": "$id"}, {"key": "extTicketURL", "value": "$result.url"}]``:

* ``$a.b.c`` -- a dotted path into the JSON body; keys match case-insensitively (an exact match
  wins), list items by index: ``$items.0.id`` or ``$items[0].id``. An XML or SOAP body is
  reached the same way, as the data :func:`notifiers.xmldoc.to_data` makes of it:
  ``$ticket.id`` in ``<ticket><id>7</id></ticket>``, ``$insertResponse.sys_id`` in a SOAP
  envelope whose Body holds ``<insertResponse><sys_id>…``;
* ``$header.Name`` or ``$headers.Name`` -- a response header (case-insensitive). These prefixes
  always mean headers, even if the body has a ``header`` key;
* anything not starting with ``$`` -- a literal value.

A reference that resolves to nothing (or to JSON ``null``) is omitted from the result. Values
are returned as text: strings as is, other JSON values in compact JSON (``true``, ``42``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from integrations.models import Header
from notifiers.outcome import header

_INDEX = re.compile(r"\[(\d+)\]")
_HEADER_PREFIXES = ("header.", "headers.")


class _Missing:
    """Sentinel: the path does not exist (distinct from a JSON ``null``)."""


MISSING: Any = _Missing()


def split_path(path: str) -> list[str]:
    """``"items[0].id"`` -> ``["items", "0", "id"]``."""
    return [part for part in _INDEX.sub(r".\1", path).split(".") if part != ""]


def resolve_path(data: Any, path: str) -> Any:
    """The value at dotted ``path`` in decoded JSON, or :data:`MISSING`."""
    current = data
    for part in split_path(path):
        if isinstance(current, Mapping):
            if part in current:
                current = current[part]
                continue
            folded = part.casefold()
            for key, value in current.items():
                if isinstance(key, str) and key.casefold() == folded:
                    current = value
                    break
            else:
                return MISSING
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return MISSING
    return current


def as_text(value: Any) -> str:
    """A captured value as text: strings as is, other JSON values as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def capture_value(reference: str, body: Any, headers: Mapping[str, str]) -> str | None:
    """Resolve one reference (``$path``, ``$header.Name`` or a literal); ``None`` if missing."""
    if not reference.startswith("$") or reference == "$":
        return reference
    path = reference[1:]
    if path.lower().startswith(_HEADER_PREFIXES):
        return header(headers, path.split(".", 1)[1])
    value = resolve_path(body, path)
    if value is MISSING or value is None:
        return None
    return as_text(value)


def capture(
    mappings: Iterable[Header | Mapping[str, str]],
    body: Any,
    headers: Mapping[str, str],
) -> dict[str, str]:
    """Extract ``{key: value}`` for each mapping whose reference resolves in ``body`` (decoded
    JSON, or XML as data) or ``headers``."""
    captured: dict[str, str] = {}
    for mapping in mappings:
        if isinstance(mapping, Header):
            key, reference = mapping.key, mapping.value
        else:
            key, reference = mapping["key"], mapping["value"]
        value = capture_value(reference, body, headers)
        if value is not None:
            captured[key] = value
    return captured
