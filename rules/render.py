"""Rendering payload templates: OpsRamp ``$`` placeholders plus sandboxed Jinja.

Templates
---------
A payload template is text with OpsRamp placeholders such as ``$incident.subject``,
``$incident.priority.name`` or ``$extTicketId``: ``$``, an identifier, then an optional dotted
path. The first segment names a variable: the event's entity token (``incident``, ``alert``,
``servicerequest``...) is bound to the entity data, and ``extra`` adds further names (a
captured ``extTicketId``, helpers). Path segments resolve like filter keys
(:func:`rules.fields.resolve`: case-insensitive, nested, ``tags.0`` indexes a list).

* A ``$`` not followed by an identifier stays literal (``$5``, ``US$``).
* A placeholder whose *first* segment is not a known variable (``$schema``, ``$USD``, a typo
  such as ``$incidnet.subject``) is left exactly as written, with a warning.
* A known placeholder without a value (absent or ``null``) renders as ``""`` (``null`` outside
  a JSON string) with a warning such as ``$incident.impact has no value``.

Placeholders are translated to Jinja and the template runs in Jinja's sandbox
(:class:`jinja2.sandbox.ImmutableSandboxedEnvironment`: templates can neither reach Python
internals nor modify the entity data, which is shared by every event rendered for a message).
Native Jinja works too: ``{{ incident.subject | upper }}``, ``{% if %}``/``{% for %}``,
``{# comments #}``, ``{% raw %}``. In native expressions, dictionary keys resolve
case-insensitively and win over same-named methods (``incident.items`` is the ``items`` field
when there is one). ``$`` placeholders are translated only in literal template text, not inside
``{% %}`` tags, ``{{ }}`` expressions or raw blocks.

Escaping follows the syntax (:func:`detect_syntax`), for placeholders and ``{{ }}`` alike
-----------------------------------------------------------------------------------------
* **JSON**: the template is *scanned*, never parsed (OpsRamp's own sample misses a comma), to
  know whether each placeholder sits inside a double-quoted string. Inside a string the value is
  JSON-string-escaped (quotes, backslashes, control characters; Unicode stays readable).
  Outside any string it is a JSON literal: numbers and booleans stay bare, text is quoted, objects
  and lists become JSON, a missing value becomes ``null``.
* **XML**: ``& < > " '`` are escaped, ``\\r`` becomes ``&#13;`` so it survives parsing, and
  characters XML 1.0 cannot carry at all (most C0 controls) are dropped with a warning. Inside
  ``<![CDATA[...]]>`` values go in unescaped, with ``]]>`` split so the section cannot be closed.
* **TEXT**: values are inserted as text, unescaped.

Inside strings (and in XML/TEXT) values become text as :func:`rules.values.to_text` says:
booleans ``true``/``false``, numbers ``str()``, objects and lists compact JSON, ``null`` empty.
A value marked safe (``{{ x | safe }}``, or ``tojson`` output) is inserted verbatim: the
template author's explicit escape hatch.

The escaping context is decided statically, from the template text in order, with Jinja tags
and comments invisible; a branch that opens a string in one arm only may confuse it. Output of
a macro or ``{% set %}`` block is escaped once more where it is printed.

Rendering raises :class:`~integrations.errors.InvalidInput` (field ``payload``) when the template
does not compile or fails at run time (sandbox violation, type error...): the same template and
data would fail again, so the caller should not retry. :func:`validate_template` checks
compilation at save time.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any, Final

from jinja2 import ChainableUndefined, Template, TemplateSyntaxError, Undefined
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from integrations.enums import Entity
from integrations.errors import HeraldError, InvalidInput
from rules.fields import MISSING, get_key, is_missing, resolve
from rules.values import to_json, to_text


class Syntax(StrEnum):
    """How rendered values are escaped."""

    JSON = "json"
    XML = "xml"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered payload and the problems noticed while rendering it."""

    body: str
    #: Human-readable notes, e.g. ``"$incident.impact has no value"``; each at most once.
    warnings: tuple[str, ...] = ()


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


class _Kind(Enum):
    """Where in the output a value lands, which decides its escaping."""

    JSON_STRING = "json-string"
    JSON_VALUE = "json-value"
    XML = "xml"
    XML_CDATA = "xml-cdata"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class _Slot:
    """One output position: a ``$`` token (``root`` set) or a ``{{ }}`` expression."""

    kind: _Kind
    #: How the template wrote it, for warnings: ``$incident.impact``, ``{{ x | upper }}``.
    label: str
    root: str = ""
    path: str = ""


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
    def kind(self) -> _Kind:
        return _Kind.JSON_STRING if self._in_string else _Kind.JSON_VALUE


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
    def kind(self) -> _Kind:
        return _Kind.XML_CDATA if self._state == "cdata" else _Kind.XML


class _TextScanner:
    """Plain text has no escaping context."""

    __slots__ = ()

    def feed(self, text: str) -> None:
        pass

    def value_inserted(self) -> None:
        pass

    @property
    def kind(self) -> _Kind:
        return _Kind.TEXT


_SPECIAL = re.compile(r"\{[{%#]|\$")
# ``$`` + identifier + dotted segments; segments may be list indexes (``tags.0``).
_TOKEN = re.compile(r"\$([^\W\d]\w*)((?:\.\w+)*)")
_RAW_START = re.compile(r"\{%[-+]?\s*raw\s*[-+]?%\}")
_RAW_END = re.compile(r"\{%[-+]?\s*endraw\s*[-+]?%\}")

# Names of the two sandbox globals the translation calls. Dunder-style so they cannot clash
# with entity tokens or ``extra`` names a caller would choose.
_TOKEN_FN: Final = "__herald_token__"
_EXPR_FN: Final = "__herald_expr__"


def _translate(template: str, syntax: Syntax) -> tuple[str, tuple[_Slot, ...]]:
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
    slots: list[_Slot] = []
    pos = 0
    end = len(template)

    def literal(text: str) -> None:
        if text:
            out.append(text)
            scanner.feed(text)

    while pos < end:
        found = _SPECIAL.search(template, pos)
        if found is None:
            literal(template[pos:])
            break
        start = found.start()
        literal(template[pos:start])
        opener = found.group()

        if opener == "$":
            token = _TOKEN.match(template, start)
            if token is None:  # "$5", "US$ ": a dollar sign, not a placeholder
                literal("$")
                pos = start + 1
                continue
            slots.append(_Slot(scanner.kind, token.group(), token.group(1), token.group(2)[1:]))
            scanner.value_inserted()
            out.append(f"{{{{ {_TOKEN_FN}({len(slots) - 1}) }}}}")
            pos = token.end()
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
        slots.append(_Slot(scanner.kind, "{{ " + " ".join(expression.split()) + " }}"))
        scanner.value_inserted()
        # The expression goes in parentheses so filters and conditionals bind inside it.
        out.append(f"{{{{{lead} {_EXPR_FN}({len(slots) - 1})(({expression})) {trail}}}}}")
        pos = stop
    return "".join(out), tuple(slots)


# ---------------------------------------------------------------------------------------------
# Per-render state and escaping
# ---------------------------------------------------------------------------------------------


class _RenderState:
    """Everything one render call owns: its slots, variables and warnings."""

    __slots__ = ("_seen", "roots", "slots", "undefined_printed", "warnings")

    def __init__(self, slots: tuple[_Slot, ...], roots: Mapping[str, Any]) -> None:
        self.slots = slots
        self.roots = roots
        self.warnings: list[str] = []
        self._seen: set[str] = set()
        #: Set when an undefined value is turned into text (say, by ``| upper``).
        self.undefined_printed = False

    def warn(self, message: str) -> None:
        if message not in self._seen:
            self._seen.add(message)
            self.warnings.append(message)


# The state of the render running in this thread/task. Jinja gives Undefined objects no access
# to the render context, so a context variable is how they report being printed; each render
# sets and resets it, so concurrent renders never see each other's state.
_STATE: ContextVar[_RenderState | None] = ContextVar("herald_render_state", default=None)


def _state() -> _RenderState:
    state = _STATE.get()
    if state is None:  # a compiled template rendered outside render(): a bug, not user input
        raise RuntimeError("Herald templates must be rendered through rules.render.render()")
    return state


class _Undefined(ChainableUndefined):
    """Missing values: chain silently (``a.b.c``), print as ``""``, and get reported."""

    __slots__ = ()

    def __str__(self) -> str:
        state = _STATE.get()
        if state is not None:
            state.undefined_printed = True
        return ""


_SURROGATE = re.compile("[\ud800-\udfff]")
_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_XML_ESCAPES: Final = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;", "\r": "&#13;"}
)


def _json_string_body(text: str) -> str:
    """``text`` escaped for the inside of a JSON string (without the surrounding quotes)."""
    body = json.dumps(text, ensure_ascii=False)[1:-1]
    if _SURROGATE.search(body):
        # A lone surrogate cannot be encoded as UTF-8; its \\u escape is valid JSON.
        body = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", body)
    return body


def _xml_safe(state: _RenderState, slot: _Slot, text: str) -> str:
    """``text`` without the characters XML 1.0 cannot carry, warning when any were dropped."""
    cleaned, dropped = _XML_ILLEGAL.subn("", text)
    if dropped:
        state.warn(f"{slot.label}: dropped {dropped} character(s) not allowed in XML")
    return cleaned


def _format(state: _RenderState, slot: _Slot, value: Any, undefined_printed: bool) -> str:
    """``value`` escaped for ``slot``'s context; records a warning when it has no value."""
    missing = is_missing(value) or isinstance(value, Undefined)
    if missing or undefined_printed:
        state.warn(f"{slot.label} has no value")
    if isinstance(value, Markup):
        return str(value)
    kind = slot.kind
    if missing:
        return "null" if kind is _Kind.JSON_VALUE else ""
    if kind is _Kind.JSON_VALUE:
        return to_json(value)
    text = to_text(value)
    if kind is _Kind.JSON_STRING:
        return _json_string_body(text)
    if kind is _Kind.XML:
        return _xml_safe(state, slot, text).translate(_XML_ESCAPES)
    if kind is _Kind.XML_CDATA:
        return _xml_safe(state, slot, text).replace("]]>", "]]]]><![CDATA[>")
    return text


def _emit_token(index: int) -> str:
    """Sandbox global behind ``$root.path``: look the value up and escape it."""
    state = _state()
    slot = state.slots[index]
    root = get_key(state.roots, slot.root)
    if root is MISSING:
        state.warn(f"{slot.label} is not a known placeholder; left as written")
        return slot.label
    value = resolve(root, slot.path) if slot.path else root
    return _format(state, slot, value, undefined_printed=False)


def _begin_expression(index: int) -> Callable[[Any], str]:
    """Sandbox global behind ``{{ expr }}``.

    Called *before* ``expr`` is evaluated (it is the callee of ``(expr)``), so it can reset the
    "undefined printed" flag and attribute to this expression any missing value that a filter
    such as ``upper`` turns into text.
    """
    state = _state()
    state.undefined_printed = False
    slot = state.slots[index]

    def emit(value: Any) -> str:
        return _format(state, slot, value, state.undefined_printed)

    return emit


class _Environment(ImmutableSandboxedEnvironment):
    """The sandbox, with entity-data lookups that match ``$`` placeholders."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        # Data keys first and case-insensitively, so ``{{ incident.Subject }}`` and
        # ``{{ incident.items }}`` (a field named "items") mean what the user sees in the data.
        if isinstance(obj, Mapping):
            value = get_key(obj, attribute)
            if value is not MISSING:
                return value
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, Mapping) and isinstance(argument, str):
            value = get_key(obj, argument)
            if value is not MISSING:
                return value
        return super().getitem(obj, argument)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        # Fail loudly: the default returns an Undefined that prints as "", which would turn
        # an attack into a silently blank field.
        raise SecurityError(
            f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe"
        )


def _make_environment() -> _Environment:
    env = _Environment(
        autoescape=False,  # escaping is done per context by _format, never HTML-style
        undefined=_Undefined,
        keep_trailing_newline=True,  # a payload's final newline is part of the payload
    )
    env.globals[_TOKEN_FN] = _emit_token
    env.globals[_EXPR_FN] = _begin_expression
    return env


# Configured once at import and never changed afterwards; Jinja environments are safe to
# share between threads for compiling and rendering.
_ENV: Final = _make_environment()


@dataclass(frozen=True, slots=True)
class _Compiled:
    template: Template
    slots: tuple[_Slot, ...]


@functools.lru_cache(maxsize=256)
def _compile(template: str, syntax: Syntax) -> _Compiled:
    """Translate and compile once per (template, syntax); events reuse their template."""
    source, slots = _translate(template, syntax)
    try:
        compiled = _ENV.from_string(source)
    except TemplateSyntaxError as exc:
        raise InvalidInput(
            "payload", f"template error on line {exc.lineno}: {exc.message or exc}"
        ) from None
    return _Compiled(compiled, slots)


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def validate_template(template: str) -> None:
    """Raise ``InvalidInput("payload", ...)`` if ``template`` does not compile.

    For the API to reject a bad template when the event is saved rather than when it fires.
    """
    _compile(template, detect_syntax(template))


def render(
    template: str,
    *,
    entity: Entity,
    data: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
    syntax: Syntax | None = None,
    reraise: tuple[type[BaseException], ...] = (),
) -> Rendered:
    """Render ``template`` for one entity change.

    Exceptions of the ``reraise`` types pass through untouched: the caller's own signals
    (a task time limit) are not template errors.

    ``data`` is bound to the entity's token (``incident`` for ``Entity.INCIDENT``); ``extra``
    adds more variables (the entity token wins over a same-named extra). ``syntax`` defaults to
    :func:`detect_syntax` of the template. Raises ``InvalidInput("payload", ...)`` when the
    template does not compile or fails while rendering.
    """
    chosen = syntax if syntax is not None else detect_syntax(template)
    compiled = _compile(template, Syntax(chosen))
    roots: dict[str, Any] = dict(extra) if extra else {}
    roots[entity.token] = data
    state = _RenderState(compiled.slots, roots)
    token = _STATE.set(state)
    try:
        body = compiled.template.render(roots)
    except HeraldError:
        raise
    except Exception as exc:
        if isinstance(exc, reraise):
            raise
        # Templates are tenant code and may fail in any way Python can (SecurityError,
        # UndefinedError, TypeError, ZeroDivisionError...). Retrying cannot help.
        raise InvalidInput("payload", f"template failed to render: {_describe(exc)}") from exc
    finally:
        _STATE.reset(token)
    return Rendered(body, tuple(state.warnings))


def _describe(exc: Exception) -> str:
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
