"""OpsRamp's template functions: ``$utils.fn(...)`` and ``$esc.fn(...)``.

A call is written as OpsRamp writes it, in template text or in an endpoint URL::

    $utils.extEntityId($incident.id, $installedAppId, $entity)
    $utils.convertDate($incident.createdDate, "yyyy-MM-dd HH:mm:ss", "Europe/Paris")
    $esc.java($incident.description)

Arguments are ``$`` placeholders (nested calls included), quoted strings (``'...'`` or
``"..."``, backslash escapes), numbers, ``true``, ``false`` and ``null``. A call is parsed
when the template is read, so a misspelled function, a missing parenthesis or a wrong number
of arguments is an error at save time, naming the call and listing what exists.

What each function means (where OpsRamp leaves it open, Herald's choice is stated):

* ``$utils.extEntityId(id, installedAppId, entity)``: the third party's id for this entity,
  the value an event of the same installed integration captured from an earlier response
  (``responseHeaders``) under ``extEntityId``, else ``extTicketId``. The arguments are
  OpsRamp's; captured values are those of the change's own entity.
* ``$utils.convertDate(date, pattern[, zone])``: ``date`` (ISO 8601, or epoch milliseconds)
  formatted with a Java ``SimpleDateFormat`` pattern (``yyyy MM dd HH mm ss SSS``,
  ``EEE``/``MMM`` names, ``a``, ``Z``/``X`` offsets, ``'quoted'`` text) in ``zone`` (an IANA
  name; UTC by default).
* ``$utils.ticketAccessURL()``: the entity's own link, its ``ticketAccessURL``, ``accessURL``
  or ``url`` field (Herald has no UI of its own to link to).
* ``$utils.attachmentData(i)``, ``attachmentFileName(i)``, ``attachmentFileType(i)``: of the
  entity's ``attachments[i]`` (``i`` 0 by default): ``data`` or ``content`` (as sent,
  base64), ``fileName`` or ``name``, ``fileType``, ``contentType`` or ``mimeType``.
* ``$esc.java``, ``$esc.json``, ``$esc.xml``, ``$esc.url``: explicit escaping. The result is
  never escaped a second time the same way: ``$esc.json`` or ``$esc.java`` inside a JSON
  string goes in as written (both produce valid JSON string text), ``$esc.xml`` in XML too;
  elsewhere the context's own escaping still applies on top (``$esc.xml`` inside a JSON
  string is XML-escaped, then made a valid JSON string), so the payload stays well formed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any, Final
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rules.errors import RuleError
from rules.fields import MISSING, get_key, is_missing, resolve
from rules.values import to_text

#: The roots that hold functions rather than values.
FUNCTION_ROOTS: Final = ("utils", "esc")


@dataclass(frozen=True, slots=True)
class Escaped:
    """Text a ``$esc`` function escaped, and how (``json``, ``xml`` or ``url``)."""

    text: str
    flavor: str


@dataclass(frozen=True, slots=True)
class Ref:
    """A ``$root.path`` argument."""

    root: str
    path: str


@dataclass(frozen=True, slots=True)
class Call:
    """``$utils.name(args)`` or ``$esc.name(args)``."""

    root: str
    name: str
    args: tuple[Any, ...]
    label: str


@dataclass(frozen=True, slots=True)
class Scope:
    """What a function can read: every root, and the entity's own token."""

    roots: Mapping[str, Any]
    entity: str

    def value(self, arg: Any) -> Any:
        """An argument's value (a reference resolved, a nested call made)."""
        if isinstance(arg, Call):
            return call(arg, self)
        if isinstance(arg, Ref):
            root = get_key(self.roots, arg.root)
            if root is MISSING or not arg.path:
                return root
            return resolve(root, arg.path)
        return arg

    def data(self) -> Any:
        return get_key(self.roots, self.entity)


# -- the functions ---------------------------------------------------------------------------


def _ext_entity_id(scope: Scope, *_: Any) -> Any:
    for name in ("extEntityId", "extTicketId"):
        value = get_key(scope.roots, name)
        if not is_missing(value):
            return value
    return MISSING


_JAVA_TOKENS = re.compile(r"'[^']*'|'|([A-Za-z])\1*|[^A-Za-z']+")
_JAVA_FIELDS: Final[dict[str, Callable[[datetime, int], str]]] = {
    "y": lambda d, n: f"{d.year % 100:02d}" if n == 2 else f"{d.year:0{n}d}",
    "M": lambda d, n: d.strftime("%B" if n >= 4 else "%b") if n >= 3 else f"{d.month:0{n}d}",
    "d": lambda d, n: f"{d.day:0{n}d}",
    "H": lambda d, n: f"{d.hour:0{n}d}",
    "h": lambda d, n: f"{(d.hour % 12) or 12:0{n}d}",
    "m": lambda d, n: f"{d.minute:0{n}d}",
    "s": lambda d, n: f"{d.second:0{n}d}",
    "S": lambda d, n: f"{d.microsecond // 1000:03d}"[:n] if n <= 3 else f"{d.microsecond:06d}",
    "E": lambda d, n: d.strftime("%A" if n >= 4 else "%a"),
    "a": lambda d, n: d.strftime("%p"),
    "Z": lambda d, n: d.strftime("%z"),
    "X": lambda d, n: "Z" if d.utcoffset() == UTC.utcoffset(None) else _colon(d.strftime("%z")),
    "z": lambda d, n: d.strftime("%Z"),
}


def _colon(offset: str) -> str:
    return f"{offset[:3]}:{offset[3:]}" if len(offset) == 5 else offset


def java_date(moment: datetime, pattern: str) -> str:
    """``moment`` formatted with a Java ``SimpleDateFormat`` pattern (pure)."""
    out = []
    for match in _JAVA_TOKENS.finditer(pattern):
        token = match.group()
        if token == "'":
            out.append("'")
        elif token.startswith("'"):
            out.append(token[1:-1] or "'")
        elif match.group(1):
            field = _JAVA_FIELDS.get(token[0])
            if field is None:
                raise ValueError(f"unsupported pattern letter {token[0]!r}")
            out.append(field(moment, len(token)))
        else:
            out.append(token)
    return "".join(out)


def _moment(value: Any) -> datetime | None:
    if isinstance(value, bool) or is_missing(value) or value is None or value == "":
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        return datetime.fromtimestamp(float(value) / 1000, UTC)
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _convert_date(scope: Scope, value: Any, pattern: Any, zone: Any = "UTC") -> Any:
    moment = _moment(value)
    if moment is None:
        return MISSING
    try:
        tz = ZoneInfo(str(zone))
    except (ZoneInfoNotFoundError, ValueError):
        raise RuleError("payload", f"$utils.convertDate: unknown time zone {zone!r}") from None
    try:
        return java_date(moment.astimezone(tz), str(pattern))
    except ValueError as exc:
        raise RuleError("payload", f"$utils.convertDate: {exc}") from None


def _ticket_url(scope: Scope, *_: Any) -> Any:
    data = scope.data()
    for name in ("ticketAccessURL", "accessURL", "url"):
        value = get_key(data, name) if isinstance(data, Mapping) else MISSING
        if not is_missing(value):
            return value
    return MISSING


def _attachment(*names: str) -> Callable[..., Any]:
    def read(scope: Scope, index: Any = 0) -> Any:
        data = scope.data()
        items = get_key(data, "attachments") if isinstance(data, Mapping) else MISSING
        try:
            item = items[int(index)] if isinstance(items, Sequence) else MISSING
        except (IndexError, ValueError, TypeError):
            return MISSING
        for name in names:
            value = get_key(item, name) if isinstance(item, Mapping) else MISSING
            if not is_missing(value):
                return value
        return MISSING

    return read


def _java(text: str) -> str:
    out = []
    for char in text:
        code = ord(char)
        if char in _JAVA_SIMPLE:
            out.append(_JAVA_SIMPLE[char])
        elif code < 0x20 or code > 0x7E:
            if code > 0xFFFF:  # as Java strings hold it: a surrogate pair
                code -= 0x10000
                out.append(f"\\u{0xD800 + (code >> 10):04X}\\u{0xDC00 + (code & 0x3FF):04X}")
            else:
                out.append(f"\\u{code:04X}")
        else:
            out.append(char)
    return "".join(out)


_JAVA_SIMPLE: Final = {
    "\\": "\\\\",
    '"': '\\"',
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}
_XML: Final = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;"})


def _escape(flavor: str, how: Callable[[str], str]) -> Callable[..., Any]:
    def escape(scope: Scope, value: Any) -> Any:
        if is_missing(value) or value is None:
            return MISSING
        return Escaped(how(to_text(value)), flavor)

    return escape


def _json_body(text: str) -> str:
    return encode_basestring(text)[1:-1]


#: Every function: ``(root, name) -> (implementation, fewest args, most args)``.
FUNCTIONS: Final[dict[tuple[str, str], tuple[Callable[..., Any], int, int]]] = {
    ("utils", "extEntityId"): (_ext_entity_id, 0, 3),
    ("utils", "convertDate"): (_convert_date, 2, 3),
    ("utils", "ticketAccessURL"): (_ticket_url, 0, 3),
    ("utils", "attachmentData"): (_attachment("data", "content"), 0, 1),
    ("utils", "attachmentFileName"): (_attachment("fileName", "name"), 0, 1),
    ("utils", "attachmentFileType"): (_attachment("fileType", "contentType", "mimeType"), 0, 1),
    ("esc", "java"): (_escape("json", _java), 1, 1),
    ("esc", "json"): (_escape("json", _json_body), 1, 1),
    ("esc", "xml"): (_escape("xml", lambda t: t.translate(_XML)), 1, 1),
    ("esc", "url"): (_escape("url", lambda t: quote(t, safe="")), 1, 1),
}


#: How each function is written, with ``{entity}`` for the entity's token, and what it gives.
USAGE: Final[dict[tuple[str, str], tuple[str, str]]] = {
    ("utils", "extEntityId"): (
        "$utils.extEntityId(${entity}.id, $installedAppId, $entity)",
        "the third party's id for this entity, as an event of this integration captured it "
        "(extEntityId, else extTicketId)",
    ),
    ("utils", "convertDate"): (
        '$utils.convertDate(${entity}.createdDate, "yyyy-MM-dd HH:mm:ss", "UTC")',
        "a date formatted with a Java SimpleDateFormat pattern, in a time zone (UTC by default)",
    ),
    ("utils", "ticketAccessURL"): (
        "$utils.ticketAccessURL()",
        "the entity's own link (its ticketAccessURL, accessURL or url field)",
    ),
    ("utils", "attachmentData"): (
        "$utils.attachmentData(0)",
        "the content of the entity's attachment (base64, as sent)",
    ),
    ("utils", "attachmentFileName"): (
        "$utils.attachmentFileName(0)",
        "the file name of the entity's attachment",
    ),
    ("utils", "attachmentFileType"): (
        "$utils.attachmentFileType(0)",
        "the type of the entity's attachment",
    ),
    ("esc", "java"): ("$esc.java(${entity}.description)", "Java string escaping"),
    ("esc", "json"): ("$esc.json(${entity}.description)", "JSON string escaping"),
    ("esc", "xml"): ("$esc.xml(${entity}.description)", "XML escaping"),
    ("esc", "url"): ("$esc.url(${entity}.subject)", "percent-encoding, as for a URL segment"),
}


def available(root: str) -> list[str]:
    """The functions under ``$root``, as a template writes them."""
    return [f"${r}.{name}" for r, name in FUNCTIONS if r == root]


def names_read(c: Call, *, implied: bool = True) -> set[str]:
    """The roots a call reads: its arguments', and (``implied``) the captured values it
    looks up itself, which may well not exist (the call then has no value)."""
    names: set[str] = set()
    if implied and (c.root, c.name) == ("utils", "extEntityId"):
        names |= {"extEntityId", "extTicketId"}
    for arg in c.args:
        if isinstance(arg, Ref):
            names.add(arg.root)
        elif isinstance(arg, Call):
            names |= names_read(arg, implied=implied)
    return names


def call(c: Call, scope: Scope) -> Any:
    """Make the call ``c`` (its arguments evaluated first)."""
    function = FUNCTIONS[(c.root, c.name)][0]
    return function(scope, *(scope.value(a) for a in c.args))


# -- parsing ---------------------------------------------------------------------------------

_NAME = re.compile(r"\$([^\W\d]\w*)((?:\.\w+)*)")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_WORDS: Final = {"true": True, "false": False, "null": None}
_WORD = re.compile(r"[a-z]+")


def parse_call(text: str, start: int, field: str = "payload") -> tuple[Call, int]:
    """The call written at ``text[start:]`` (a ``$utils``/``$esc`` token) and where it ends;
    :class:`RuleError` naming ``field`` and the call if it is not a valid one."""
    token = _NAME.match(text, start)
    assert token is not None
    root, path = token.group(1), token.group(2)[1:]
    label = token.group()
    if (root, path) not in FUNCTIONS:
        raise RuleError(
            field, f"{label} is not a function; there are: {', '.join(available(root))}"
        )
    pos = token.end()
    if text[pos : pos + 1] != "(":
        raise RuleError(field, f"{label} is a function: call it as {label}(...)")
    args, pos = _arguments(text, pos + 1, label, field)
    _, fewest, most = FUNCTIONS[(root, path)]
    if not fewest <= len(args) <= most:
        wanted = str(fewest) if fewest == most else f"{fewest} to {most}"
        raise RuleError(field, f"{label} takes {wanted} arguments, not {len(args)}")
    return Call(root, path, tuple(args), text[start:pos]), pos


def _arguments(text: str, pos: int, label: str, field: str) -> tuple[list[Any], int]:
    args: list[Any] = []
    while True:
        pos = _skip(text, pos)
        if text[pos : pos + 1] == ")" and not args:
            return args, pos + 1
        arg, pos = _argument(text, pos, label, field)
        args.append(arg)
        pos = _skip(text, pos)
        following = text[pos : pos + 1]
        if following == ")":
            return args, pos + 1
        if following != ",":
            raise RuleError(field, f"{label}(...): expected ',' or ')' at character {pos + 1}")
        pos += 1


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _argument(text: str, pos: int, label: str, field: str) -> tuple[Any, int]:
    char = text[pos : pos + 1]
    if char == "$":
        token = _NAME.match(text, pos)
        if token is None:
            raise RuleError(field, f"{label}(...): '$' without a name at character {pos + 1}")
        if token.group(1) in FUNCTION_ROOTS:
            return parse_call(text, pos, field)
        return Ref(token.group(1), token.group(2)[1:]), token.end()
    if char in ("'", '"'):
        out, i = [], pos + 1
        while i < len(text) and text[i] != char:
            if text[i] == "\\" and i + 1 < len(text):
                i += 1
            out.append(text[i])
            i += 1
        if i >= len(text):
            raise RuleError(field, f"{label}(...): unterminated string")
        return "".join(out), i + 1
    if number := _NUMBER.match(text, pos):
        value = number.group()
        return (float(value) if "." in value else int(value)), number.end()
    if (word := _WORD.match(text, pos)) and word.group() in _WORDS:
        return _WORDS[word.group()], word.end()
    raise RuleError(
        field,
        f"{label}(...): expected a $placeholder, a quoted string or a number "
        f"at character {pos + 1}",
    )
