"""Escaping a value for where it lands in the payload, and the warnings a render collects.

Internal to :mod:`rules.render`; shared by the Jinja sandbox and the placeholder-only fast
path, so that both escape, and warn, in exactly one way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from json.encoder import encode_basestring
from typing import Any, Final

from jinja2 import Undefined
from markupsafe import Markup

from rules.fields import is_missing
from rules.functions import Escaped, Scope, call
from rules.scan import Kind, Slot
from rules.values import to_json, to_text


class RenderState:
    """Everything one render call owns: its slots, variables and warnings."""

    __slots__ = ("_seen", "entity", "roots", "slots", "undefined_printed", "warnings")

    def __init__(self, slots: tuple[Slot, ...], roots: Mapping[str, Any], entity: str = "") -> None:
        self.slots = slots
        self.roots = roots
        #: The entity's token (``incident``): what ``$utils`` functions read.
        self.entity = entity
        self.warnings: list[str] = []
        self._seen: set[str] = set()
        #: Set when an undefined value is turned into text (say, by ``| upper``).
        self.undefined_printed = False

    def warn(self, message: str) -> None:
        """Record ``message`` once, in order of first appearance."""
        if message not in self._seen:
            self._seen.add(message)
            self.warnings.append(message)


_SURROGATE = re.compile("[\ud800-\udfff]")
_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_XML_ESCAPES: Final = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;", "\r": "&#13;"}
)


def _json_string_body(text: str) -> str:
    """``text`` escaped for the inside of a JSON string (without the surrounding quotes)."""
    # encode_basestring is exactly what json.dumps(text, ensure_ascii=False) runs for a str,
    # without the encoder set-up around it; ASCII text cannot hold a surrogate.
    body = encode_basestring(text)[1:-1]
    if not body.isascii() and _SURROGATE.search(body):
        # A lone surrogate cannot be encoded as UTF-8; its \\u escape is valid JSON.
        body = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", body)
    return body


def _xml_safe(state: RenderState, slot: Slot, text: str) -> str:
    """``text`` without the characters XML 1.0 cannot carry, warning when any were dropped."""
    cleaned, dropped = _XML_ILLEGAL.subn("", text)
    if dropped:
        state.warn(f"{slot.label}: dropped {dropped} character(s) not allowed in XML")
    return cleaned


def format_value(state: RenderState, slot: Slot, value: Any, undefined_printed: bool) -> str:
    """``value`` escaped for ``slot``'s context; records a warning when it has no value."""
    if value.__class__ is str and not undefined_printed:  # most values: skip the checks below
        kind = slot.kind
        if kind is Kind.JSON_STRING:
            return _json_string_body(value)
        if kind is Kind.JSON_VALUE:
            return encode_basestring(value)  # = to_json(value) for a str
        if kind is Kind.TEXT:
            return value
    elif value.__class__ is int and not undefined_printed:
        # Digits and a sign need no escaping anywhere, and str() is both to_text and to_json.
        return str(value)
    if value.__class__ is Escaped:
        return _escaped(state, slot, value)
    missing = is_missing(value) or isinstance(value, Undefined)
    if missing or undefined_printed:
        state.warn(f"{slot.label} has no value")
    if isinstance(value, Markup):
        return str(value)
    kind = slot.kind
    if missing:
        return "null" if kind is Kind.JSON_VALUE else ""
    if kind is Kind.JSON_VALUE:
        return to_json(value)
    text = to_text(value)
    if kind is Kind.JSON_STRING:
        return _json_string_body(text)
    if kind is Kind.XML:
        return _xml_safe(state, slot, text).translate(_XML_ESCAPES)
    if kind is Kind.XML_CDATA:
        return _xml_safe(state, slot, text).replace("]]>", "]]]]><![CDATA[>")
    return text


def _escaped(state: RenderState, slot: Slot, value: Escaped) -> str:
    """A ``$esc`` result where it lands: as written where its escaping is the context's
    own (never escaped twice), with the context's escaping on top elsewhere."""
    kind, text = slot.kind, value.text
    if kind is Kind.JSON_STRING:
        return text if value.flavor == "json" else _json_string_body(text)
    if kind is Kind.JSON_VALUE:
        return f'"{text}"' if value.flavor == "json" else encode_basestring(text)
    if kind is Kind.XML:
        return (
            text if value.flavor == "xml" else _xml_safe(state, slot, text).translate(_XML_ESCAPES)
        )
    if kind is Kind.XML_CDATA:
        return text.replace("]]>", "]]]]><![CDATA[>")
    return text


def evaluate(state: RenderState, slot: Slot) -> Any:
    """The value of a call slot (:mod:`rules.functions`)."""
    assert slot.call is not None
    return call(slot.call, Scope(state.roots, state.entity))
