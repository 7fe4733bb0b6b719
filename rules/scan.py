"""Reading a template: its escaping syntax, the context of each output, its Jinja translation.

Internal to :mod:`rules.render` (see its docstring for the template language). Everything
here is decided from the template text alone, once per template.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Final

from rules.functions import FUNCTION_ROOTS, Call, parse_call


class Syntax(StrEnum):
    """How rendered values are escaped."""

    JSON = "json"
    XML = "xml"
    TEXT = "text"


# ---------------------------------------------------------------------------------------------
# Syntax detection
# ---------------------------------------------------------------------------------------------

_CLOSERS: Final = {"{{": "}}", "{%": "%}", "{#": "#}"}


def _find_close(text: str, start: int, closer: str) -> int:
    """Index of ``closer`` ending a Jinja tag whose body starts at ``start``, or -1.

    Skips quoted string literals and balanced braces, as Jinja's lexer does, so
    ``{{ {'a': {'b': 1}} }}`` and ``{{ "}}" }}`` close at the right place.
    """
    if closer == "#}":
        return text.find(closer, start)
    depth = 0
    quote = ""
    i = start
    end = len(text)
    while i < end:
        char = text[i]
        if quote:
            if char == "\\":
                i += 2
                continue
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif depth == 0 and text.startswith(closer, i):
            return i
        elif char == "{":
            depth += 1
        elif char == "}" and depth:
            depth -= 1
        i += 1
    return -1


def _first_significant_char(template: str) -> str:
    """First character that is not whitespace, a BOM, or part of a leading Jinja construct."""
    i = 0
    end = len(template)
    while i < end:
        char = template[i]
        if char.isspace() or char == "\ufeff":
            i += 1
            continue
        closer = _CLOSERS.get(template[i : i + 2])
        if closer is None:
            return char
        close = _find_close(template, i + 2, closer)
        if close < 0:
            return ""
        i = close + len(closer)
    return ""


def detect_syntax(template: str, content_type: str | None = None) -> Syntax:
    """The escaping syntax for ``template``.

    A ``content_type`` mentioning ``json`` or ``xml`` decides (``application/soap+xml`` is XML).
    Otherwise the first significant character does: ``{`` or ``[`` is JSON, ``<`` is XML,
    anything else TEXT. Leading Jinja tags, comments and expressions are skipped for this, so
    ``{{ incident.subject }} was opened`` is TEXT and ``{% if x %}{"a": 1}...`` is JSON.
    """
    if content_type:
        folded = content_type.casefold()
        if "json" in folded:
            return Syntax.JSON
        if "xml" in folded:
            return Syntax.XML
    first = _first_significant_char(template)
    if first in ("{", "["):
        return Syntax.JSON
    if first == "<":
        return Syntax.XML
    return Syntax.TEXT


# ---------------------------------------------------------------------------------------------
# Translation: $ tokens and {{ }} expressions become calls that escape for their context
# ---------------------------------------------------------------------------------------------


class Kind(Enum):
    """Where in the output a value lands, which decides its escaping."""

    JSON_STRING = "json-string"
    JSON_VALUE = "json-value"
    XML = "xml"
    XML_CDATA = "xml-cdata"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class Slot:
    """One output position: a ``$`` token (``root`` set) or a ``{{ }}`` expression."""

    kind: Kind
    #: How the template wrote it, for warnings: ``$incident.impact``, ``{{ x | upper }}``.
    label: str
    root: str = ""
    path: str = ""
    #: A ``$utils``/``$esc`` function call (:mod:`rules.functions`) in place of a value.
    call: Call | None = None


class _JsonScanner:
    """Tracks whether the text fed so far ends inside a JSON double-quoted string."""

    __slots__ = ("_escaped", "_in_string")

    _SPECIAL = re.compile(r'["\\]')

    def __init__(self) -> None:
        self._in_string = False
        self._escaped = False  # the previous chunk ended with a backslash inside a string

    def feed(self, text: str) -> None:
        i = 0
        if self._escaped and text:
            self._escaped = False
            i = 1
        while True:
            found = self._SPECIAL.search(text, i)
            if found is None:
                return
            j = found.start()
            if text[j] == '"':
                self._in_string = not self._in_string
                i = j + 1
            elif self._in_string:  # a backslash escapes the next character, whatever it is
                if j + 1 >= len(text):
                    self._escaped = True
                    return
                i = j + 2
            else:
                i = j + 1

    def value_inserted(self) -> None:
        # A value right after a backslash consumes the pending escape like any character.
        self._escaped = False

    @property
    def kind(self) -> Kind:
        return Kind.JSON_STRING if self._in_string else Kind.JSON_VALUE


class _XmlScanner:
    """Tracks whether the text fed so far ends inside a CDATA section (or a comment)."""

    __slots__ = ("_state",)

    _ENDS: Final = {"cdata": "]]>", "comment": "-->"}
    _OPEN = re.compile(r"<!\[CDATA\[|<!--")

    def __init__(self) -> None:
        self._state = "text"

    def feed(self, text: str) -> None:
        i = 0
        while True:
            if self._state == "text":
                found = self._OPEN.search(text, i)
                if found is None:
                    return
                self._state = "cdata" if found.group() == "<![CDATA[" else "comment"
                i = found.end()
            else:
                end_marker = self._ENDS[self._state]
                close = text.find(end_marker, i)
                if close < 0:
                    return
                self._state = "text"
                i = close + len(end_marker)

    def value_inserted(self) -> None:
        pass

    @property
    def kind(self) -> Kind:
        return Kind.XML_CDATA if self._state == "cdata" else Kind.XML


class _TextScanner:
    """Plain text has no escaping context."""

    __slots__ = ()

    def feed(self, text: str) -> None:
        pass

    def value_inserted(self) -> None:
        pass

    @property
    def kind(self) -> Kind:
        return Kind.TEXT


SPECIAL = re.compile(r"\{[{%#]|\$")
# ``$`` + identifier + dotted segments; segments may be list indexes (``tags.0``).
TOKEN = re.compile(r"\$([^\W\d]\w*)((?:\.\w+)*)")
_RAW_START = re.compile(r"\{%[-+]?\s*raw\s*[-+]?%\}")
_RAW_END = re.compile(r"\{%[-+]?\s*endraw\s*[-+]?%\}")

# Names of the two sandbox globals the translation calls. Dunder-style so they cannot clash
# with entity tokens or ``extra`` names a caller would choose.
TOKEN_FN: Final = "__herald_token__"
EXPR_FN: Final = "__herald_expr__"
#: A literal "{" written as a Jinja expression, where the text would otherwise run into a call.
BRACE: Final = '{{ "{" }}'


def translate(template: str, syntax: Syntax) -> tuple[str, tuple[Slot, ...]]:
    """Rewrite ``template`` as Jinja source in which every output goes through an escaper.

    ``$incident.subject`` becomes ``{{ __herald_token__(N) }}`` and ``{{ expr }}`` becomes
    ``{{ __herald_expr__(N)((expr)) }}``; slot ``N`` records the escaping context and label.
    Line structure is preserved, so Jinja's error line numbers match the user's template.
    """
    scanner: _JsonScanner | _XmlScanner | _TextScanner
    if syntax is Syntax.JSON:
        scanner = _JsonScanner()
    elif syntax is Syntax.XML:
        scanner = _XmlScanner()
    else:
        scanner = _TextScanner()
    out: list[str] = []
    slots: list[Slot] = []
    pos = 0
    end = len(template)

    def literal(text: str) -> None:
        if text:
            out.append(text)
            scanner.feed(text)

    while pos < end:
        found = SPECIAL.search(template, pos)
        if found is None:
            literal(template[pos:])
            break
        start = found.start()
        literal(template[pos:start])
        opener = found.group()

        if opener == "$":
            token = TOKEN.match(template, start)
            if token is None:  # "$5", "US$ ": a dollar sign, not a placeholder
                literal("$")
                pos = start + 1
                continue
            if token.group(1) in FUNCTION_ROOTS:
                call, stop = parse_call(template, start)
                slots.append(Slot(scanner.kind, call.label, "", "", call))
            else:
                slots.append(Slot(scanner.kind, token.group(), token.group(1), token.group(2)[1:]))
                stop = token.end()
            scanner.value_inserted()
            if out and out[-1].endswith("{"):
                # "{$x" would read "{{{ call }}" to Jinja: print that brace as an expression.
                out[-1] = out[-1][:-1] + BRACE
            out.append(f"{{{{ {TOKEN_FN}({len(slots) - 1}) }}}}")
            pos = stop
            continue

        if opener == "{%":
            raw = _RAW_START.match(template, start)
            if raw is not None:
                raw_end = _RAW_END.search(template, raw.end())
                if raw_end is None:  # Jinja reports the missing endraw at compile time
                    out.append(template[start:])
                    break
                out.append(template[start : raw_end.end()])
                scanner.feed(template[raw.end() : raw_end.start()])  # raw text is output
                pos = raw_end.end()
                continue

        closer = _CLOSERS[opener]
        close = _find_close(template, start + 2, closer)
        if close < 0:  # unterminated: leave it for Jinja to report
            out.append(template[start:])
            break
        stop = close + len(closer)
        if opener != "{{":  # statements and comments print nothing of their own
            out.append(template[start:stop])
            pos = stop
            continue

        inner = template[start + 2 : close]
        lead = inner[0] if inner[:1] in ("-", "+") else ""
        trail = "-" if inner.endswith("-") and len(inner) > len(lead) else ""
        expression = inner[len(lead) : len(inner) - len(trail)]
        if not expression.strip():  # "{{ }}": let Jinja report it
            out.append(template[start:stop])
            pos = stop
            continue
        slots.append(Slot(scanner.kind, "{{ " + " ".join(expression.split()) + " }}"))
        scanner.value_inserted()
        # The expression goes in parentheses so filters and conditionals bind inside it.
        out.append(f"{{{{{lead} {EXPR_FN}({len(slots) - 1})(({expression})) {trail}}}}}")
        pos = stop
    return "".join(out), tuple(slots)
