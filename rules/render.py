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

Otherwise placeholders are translated to Jinja and the template runs in Jinja's sandbox
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

Rendering raises :class:`~rules.errors.RuleError` (field ``payload``) when the template does not
compile or fails at run time (sandbox violation, type error...): the same template and data
would fail again, so the caller should not retry. :func:`validate_template` checks compilation
at save time.

Speed
-----
A template made only of text and ``$`` placeholders (the common case) is rendered without
Jinja (:mod:`rules.fast`): split once into literal pieces and slots, with the escaping and
warnings of the sandbox path, byte for byte. Anything with ``{{``, ``{%`` or ``{#`` runs in
the sandbox (:mod:`rules.sandbox`). Modules: :mod:`rules.scan` (syntax, contexts,
translation), :mod:`rules.escape` (escaping, warnings).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rules.errors import RuleError
from rules.escape import RenderState
from rules.fast import Plain, compile_plain, is_plain
from rules.functions import names_read
from rules.sandbox import Compiled, compile_jinja, render_jinja
from rules.scan import Slot, Syntax, detect_syntax, translate

__all__ = [
    "Rendered",
    "Syntax",
    "detect_syntax",
    "referenced_names",
    "render",
    "validate_template",
]


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered payload and the problems noticed while rendering it."""

    body: str
    #: Human-readable notes, e.g. ``"$incident.impact has no value"``; each at most once.
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Template:
    """One template compiled for one syntax: the fast form when it has one, else Jinja."""

    slots: tuple[Slot, ...]
    plain: Plain | None
    jinja: Compiled | None


@functools.lru_cache(maxsize=1024)
def _translated(template: str, syntax: Syntax) -> tuple[str, tuple[Slot, ...]]:
    return translate(template, syntax)


@functools.lru_cache(maxsize=1024)
def _jinja(template: str, syntax: Syntax) -> Compiled:
    return compile_jinja(*_translated(template, syntax))


@functools.lru_cache(maxsize=1024)
def _compile(template: str, syntax: Syntax) -> _Template:
    """Translate and compile once per (template, syntax); events reuse their template."""
    source, slots = _translated(template, syntax)
    if is_plain(template):
        return _Template(slots, compile_plain(source, slots), None)
    return _Template(slots, None, _jinja(template, syntax))


def validate_template(template: str) -> None:
    """Raise ``RuleError("payload", ...)`` if ``template`` does not compile.

    For the API to reject a bad template when the event is saved rather than when it fires.
    """
    _compile(template, detect_syntax(template))


@functools.lru_cache(maxsize=1024)
def referenced_names(template: str, entity: str, *, implied: bool = True) -> frozenset[str]:
    """The top-level variables ``template`` reads besides the entity's own root.

    ``{"extTicketId"}`` for a template using ``$extTicketId``; empty when the template reads
    only ``$incident...`` (for ``entity`` ``INCIDENT``), so a caller can skip loading the
    values it would pass as ``extra``. Names are as written; ``$`` roots are looked up
    case-insensitively, so only the exact entity token is left out (a name reported needlessly
    costs a read; one left out would blank a field). Raises ``RuleError`` like
    :func:`validate_template` for a template that does not compile. ``implied``: with the
    values functions look up themselves (``$utils.extEntityId`` reads the captured
    ``extEntityId``); without them, only the names the template writes.
    """
    syntax = detect_syntax(template)
    compiled = _compile(template, syntax)
    names = {slot.root for slot in compiled.slots if slot.root}
    for slot in compiled.slots:
        if slot.call is not None:
            names |= names_read(slot.call, implied=implied)
    if compiled.jinja is not None:
        names |= compiled.jinja.names
    names.discard(str(entity).lower())
    return frozenset(names)


def render(
    template: str,
    *,
    entity: str,
    data: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
    syntax: Syntax | None = None,
    reraise: tuple[type[BaseException], ...] = (),
) -> Rendered:
    """Render ``template`` for one entity change.

    Exceptions of the ``reraise`` types pass through untouched: the caller's own signals
    (a task time limit) are not template errors.

    ``data`` is bound to the entity's token (``incident`` for ``INCIDENT``); ``extra`` adds
    more variables (the entity token wins over a same-named extra). ``syntax`` defaults to
    :func:`detect_syntax` of the template. Raises ``RuleError("payload", ...)`` when the
    template does not compile or fails while rendering.
    """
    chosen = Syntax(syntax) if syntax is not None else detect_syntax(template)
    return _run(_compile(template, chosen), str(entity).lower(), data, extra, reraise)


def _render_in_sandbox(
    template: str,
    *,
    entity: str,
    data: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
    syntax: Syntax,
) -> Rendered:
    """:func:`render` forced through Jinja even for a plain template (to test the fast path)."""
    compiled = _Template(_translated(template, syntax)[1], None, _jinja(template, syntax))
    return _run(compiled, str(entity).lower(), data, extra, ())


def _run(
    compiled: _Template,
    token: str,
    data: Mapping[str, Any],
    extra: Mapping[str, Any] | None,
    reraise: tuple[type[BaseException], ...],
) -> Rendered:
    roots: dict[str, Any] = dict(extra) if extra else {}
    roots[token] = data
    state = RenderState(compiled.slots, roots, token)
    try:
        if compiled.plain is not None:
            body = compiled.plain.render(roots, state)
        else:
            assert compiled.jinja is not None
            body = render_jinja(compiled.jinja, roots, state)
    except RuleError:
        raise
    except Exception as exc:
        if isinstance(exc, reraise):
            raise
        # Templates are tenant code and may fail in any way Python can (SecurityError,
        # UndefinedError, TypeError, ZeroDivisionError...). Retrying cannot help.
        raise RuleError("payload", f"template failed to render: {_describe(exc)}") from exc
    return Rendered(body, tuple(state.warnings))


def _describe(exc: Exception) -> str:
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
