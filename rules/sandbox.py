"""The Jinja sandbox Herald renders real Jinja templates in.

Internal to :mod:`rules.render`. :class:`jinja2.sandbox.ImmutableSandboxedEnvironment`:
templates can neither reach Python internals nor modify the entity data, which is shared by
every event rendered for a message. Dictionary keys resolve case-insensitively and win over
same-named methods, as ``$`` placeholders do.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final, cast

from jinja2 import ChainableUndefined, Template, TemplateSyntaxError, Undefined, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from rules import budget
from rules.errors import RuleError
from rules.escape import RenderState, evaluate, format_value
from rules.fields import MISSING, get_key, resolve
from rules.scan import EXPR_FN, TOKEN_FN, Slot

# The state of the render running in this thread/task. Jinja gives Undefined objects no access
# to the render context, so a context variable is how they report being printed; each render
# sets and resets it, so concurrent renders never see each other's state.
_STATE: ContextVar[RenderState | None] = ContextVar("herald_render_state", default=None)


def _state() -> RenderState:
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


def _emit_token(index: int) -> str:
    """Sandbox global behind ``$root.path``: look the value up and escape it."""
    state = _state()
    slot = state.slots[index]
    if slot.call is not None:
        return format_value(state, slot, evaluate(state, slot), undefined_printed=False)
    root = get_key(state.roots, slot.root)
    if root is MISSING:
        state.warn(f"{slot.label} is not a known placeholder; left as written")
        return slot.label
    value = resolve(root, slot.path) if slot.path else root
    return format_value(state, slot, value, undefined_printed=False)


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
        return format_value(state, slot, value, state.undefined_printed)

    return emit


#: The global every ``for`` loop's iterable is passed through (see :func:`_step_loops`).
STEPS_FN: Final = "__herald_steps"
#: The global every ``~`` is rewritten into.
CONCAT_FN: Final = "__herald_concat"


class _Environment(ImmutableSandboxedEnvironment):
    """The sandbox, with entity-data lookups that match ``$`` placeholders, and every
    operator, filter, method and loop that could cost without bound under
    :mod:`rules.budget`."""

    # Intercepted operators are never folded at compile time, and go through call_binop.
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        return budget.checked_binop(operator, left, right)

    def call(
        __self,
        __context: Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        # Every call is a step: a macro calling itself, or a recursive loop(), never passes
        # through a for loop's counted iterable.
        budget.current().step()
        name = getattr(__obj, "__name__", type(__obj).__name__)
        # The sandbox hands out str.format wrapped; the wrapper keeps the bound method.
        receiver = getattr(getattr(__obj, "__wrapped__", __obj), "__self__", None)
        if isinstance(receiver, str | bytes):
            # Methods of text: widths and counts are checked before, lengths after.
            budget.check_arguments(name, (*args, *kwargs.values()))
            if name in {"format", "format_map"} and isinstance(receiver, str):
                budget.check_format(receiver)
            if name == "replace" and isinstance(receiver, str):
                budget.check_replace(receiver, args)
        return budget.check_result(name, super().call(__context, __obj, *args, **kwargs))

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
    env.globals[TOKEN_FN] = _emit_token
    env.globals[EXPR_FN] = _begin_expression
    env.globals[STEPS_FN] = budget.stepped
    env.globals[CONCAT_FN] = budget.concat
    env.globals["range"] = budget.BudgetRange
    # lipsum(n) makes n paragraphs in one call, before any budget can look at them.
    env.globals.pop("lipsum", None)
    env.filters = {name: budget.budgeted_filter(name, fn) for name, fn in env.filters.items()}
    return env


class _Budgeted(NodeTransformer):
    """Pass every ``for`` loop's iterable through :func:`rules.budget.stepped`, so that every
    loop step is counted (nested loops over data lists included), and make every ``~`` a
    call of :func:`rules.budget.concat`, so that no concatenation outgrows the budget."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        visited = cast(nodes.For, self.generic_visit(node))
        visited.iter = nodes.Call(
            nodes.Name(STEPS_FN, "load"), [visited.iter], [], None, None, lineno=node.lineno
        )
        return visited

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        visited = cast(nodes.Concat, self.generic_visit(node))
        name = nodes.Name(CONCAT_FN, "load", lineno=node.lineno)
        return nodes.Call(name, list(visited.nodes), [], None, None, lineno=node.lineno)


def _step_loops(tree: nodes.Template) -> nodes.Template:
    """``tree`` with every loop counted and every ``~`` checked (see :class:`_Budgeted`)."""
    return cast(nodes.Template, _Budgeted().visit(tree))


# Configured once at import and never changed afterwards; Jinja environments are safe to
# share between threads for compiling and rendering.
_ENV: Final = _make_environment()


@dataclass(frozen=True, slots=True)
class Compiled:
    """A template translated and compiled in the sandbox."""

    template: Template
    slots: tuple[Slot, ...]
    #: Top-level variables the template reads (Jinja's analysis of the translated source).
    names: frozenset[str]


def compile_jinja(source: str, slots: tuple[Slot, ...]) -> Compiled:
    """Compile translated ``source``; a syntax error raises ``RuleError("payload", ...)``."""
    try:
        names = meta.find_undeclared_variables(_ENV.parse(source))
        compiled = _ENV.from_string(_step_loops(_ENV.parse(source)))
    except TemplateSyntaxError as exc:
        raise RuleError(
            "payload", f"template error on line {exc.lineno}: {exc.message or exc}"
        ) from None
    # Jinja's own globals (range, dict, namespace...) and Herald's are not data the template
    # reads.
    return Compiled(compiled, slots, frozenset(names - set(_ENV.globals)))


def render_jinja(
    compiled: Compiled,
    roots: Mapping[str, Any],
    state: RenderState,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Run ``compiled`` with ``roots`` as its variables, reporting into ``state``, under a
    fresh :class:`rules.budget.Budget` timed by ``clock``.

    Exceptions propagate as raised (the caller decides which are the tenant's fault).
    """
    token = _STATE.set(state)
    try:
        return budget.render_budgeted(
            lambda: compiled.template.generate(roots), budget.Budget(clock)
        )
    finally:
        _STATE.reset(token)
