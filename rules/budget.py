"""What one Jinja template may cost: output, loop steps, time, and the size of every value.

Internal to :mod:`rules.sandbox`. Templates are tenant code, and Jinja's sandbox bounds what
they may reach, not what they may cost. Measured on loopback before these bounds: saving
``{{ 'x' * 100000000 }}`` took 1-2 s and 380 MB (Jinja folds constants at compile time), and
a nested loop of 10^10 steps held a worker until the task's hard time limit. So:

* ``*``, ``**``, ``+`` and ``%`` are intercepted operators. Jinja then never folds them at
  compile time, and :func:`checked_binop` refuses a result that would exceed
  :data:`MAX_VALUE` before computing it.
* Every filter and every method call is checked the same way: no width, count or length
  argument above :data:`MAX_VALUE`, and no text result above it.
* Every ``for`` loop, ``range`` and call (a macro calling itself, a recursive ``loop()``)
  steps through :meth:`Budget.step`: at most :data:`MAX_STEPS` steps per render, and the
  clock is read every few hundred of them. ``~`` is rewritten into :func:`concat`, checked.
* The output is counted as it is produced: at most :data:`MAX_OUTPUT` characters, within
  :data:`MAX_SECONDS`.

Over any of them the render fails with :class:`BudgetExceeded`, a :class:`RuleError`: the
delivery fails at once and for good, with the reason, since trying again cannot help.
"""

from __future__ import annotations

import operator
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import Any, Final

from rules.errors import RuleError

#: Characters a rendered payload may have (deliveries' bodies are far smaller).
MAX_OUTPUT: Final = 2 * 1024 * 1024
#: The largest string or sequence one operation may produce, and the largest width, count or
#: length argument a filter or method may take.
MAX_VALUE: Final = MAX_OUTPUT
#: Loop steps (``for`` and ``range``) per render.
MAX_STEPS: Final = 200_000
#: Wall time of one render.
MAX_SECONDS: Final = 1.0
#: Bits of an integer ``**`` may produce (about 20,000 decimal digits).
MAX_POWER_BITS: Final = 64 * 1024
#: Steps between two readings of the clock.
_CLOCK_EVERY: Final = 256

_PRINTF_WIDTH = re.compile(r"%[-+ #0]*(\d*)(?:\.(\d*))?")
_FORMAT_FIELD = re.compile(r"\{[^{}]*:([^{}]*)\}")


class BudgetExceeded(RuleError):
    """A template that would cost more than a render may."""

    def __init__(self, problem: str) -> None:
        super().__init__("payload", f"template over its render budget: {problem}")


class Budget:
    """The budget of one render: steps taken, output produced, and a deadline."""

    __slots__ = ("_clock", "deadline", "output", "steps")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.deadline = clock() + MAX_SECONDS
        self.steps = 0
        self.output = 0

    def step(self) -> None:
        """Count one loop step."""
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise BudgetExceeded(f"more than {MAX_STEPS:,} loop steps")
        if self.steps % _CLOCK_EVERY == 0:
            self.check_time()

    def check_time(self) -> None:
        """Fail if the render ran out of time."""
        if self._clock() > self.deadline:
            raise BudgetExceeded(f"rendering took more than {MAX_SECONDS:g} s")

    def emit(self, chunk: str) -> str:
        """Count ``chunk`` of output."""
        self.output += len(chunk)
        if self.output > MAX_OUTPUT:
            raise BudgetExceeded(f"the payload is longer than {MAX_OUTPUT:,} characters")
        self.check_time()
        return chunk


_CURRENT: ContextVar[Budget | None] = ContextVar("herald_render_budget", default=None)


def current() -> Budget:
    """The budget of the render running here (a fresh one outside a render: compile time)."""
    return _CURRENT.get() or Budget()


def render_budgeted(chunks: Callable[[], Iterable[str]], budget: Budget) -> str:
    """Join what ``chunks()`` produces, under ``budget``."""
    token = _CURRENT.set(budget)
    try:
        return "".join(budget.emit(chunk) for chunk in chunks())
    finally:
        _CURRENT.reset(token)


def stepped(iterable: Iterable[Any]) -> Iterator[Any]:
    """Iterate ``iterable``, one budget step per item (every ``for`` loop goes through this)."""
    budget = current()
    for item in iterable:
        budget.step()
        yield item


class BudgetRange:
    """``range`` for templates: a real range's length and indexing, iterated step by step."""

    __slots__ = ("_range",)

    def __init__(self, *args: int) -> None:
        self._range = range(*args)
        if len(self._range) > MAX_STEPS:
            raise BudgetExceeded(f"range of {len(self._range):,} items (at most {MAX_STEPS:,})")

    def __iter__(self) -> Iterator[int]:
        return stepped(self._range)

    def __len__(self) -> int:
        return len(self._range)

    def __getitem__(self, index: Any) -> Any:
        return self._range[index]


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, str | bytes | list | tuple) else None


def _too_big(what: str, size: int) -> BudgetExceeded:
    return BudgetExceeded(f"{what} would be {size:,} long (at most {MAX_VALUE:,})")


def checked_binop(op: str, left: Any, right: Any) -> Any:
    """``left op right`` for ``*``, ``**``, ``+`` and ``%``, refused before it is computed
    when its result would be too large."""
    if op == "*":
        for seq, times in ((left, right), (right, left)):
            size = _size(seq)
            if size is not None and isinstance(times, int) and size * times > MAX_VALUE:
                raise _too_big("a repetition", size * times)
        return operator.mul(left, right)
    if op == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            bits = right * abs(left).bit_length()
            if bits > MAX_POWER_BITS:
                raise BudgetExceeded(f"a power of about {bits:,} bits (at most {MAX_POWER_BITS:,})")
        return operator.pow(left, right)
    if op == "+":
        a, b = _size(left), _size(right)
        if a is not None and b is not None and a + b > MAX_VALUE:
            raise _too_big("a concatenation", a + b)
        return operator.add(left, right)
    if op == "%":
        if isinstance(left, str):
            check_printf(left, right)
        return operator.mod(left, right)
    raise ValueError(f"not an intercepted operator: {op}")


def _check_width(digits: str | None) -> None:
    if digits and (len(digits) > 9 or int(digits) > MAX_VALUE):
        raise BudgetExceeded(f"a format width of {digits} (at most {MAX_VALUE:,})")


def check_printf(spec: str, args: Any = ()) -> None:
    """Refuse a printf-style format whose width or precision exceeds :data:`MAX_VALUE`,
    written in it or given as a ``*`` argument."""
    for match in _PRINTF_WIDTH.finditer(spec):
        for digits in match.groups():
            _check_width(digits)
    if "*" in spec:
        given = args if isinstance(args, tuple) else (args,)
        check_arguments("format", [a for a in given if isinstance(a, int)], always=True)


def check_format(spec: str) -> None:
    """:func:`check_printf` for ``str.format`` fields (``{:>100000000}``)."""
    for field in _FORMAT_FIELD.findall(spec):
        for digits in re.findall(r"\d+", field):
            _check_width(digits)


#: Filters and ``str`` methods whose integer arguments are widths or counts of the result.
#: Others take integers that are data (``default(5000000)``), which are never refused.
SIZED_ARGUMENTS: Final = frozenset(
    {"center", "indent", "wordwrap", "truncate", "slice", "batch", "format", "replace"}
    | {"ljust", "rjust", "zfill", "expandtabs"}
)


def check_arguments(name: str, args: Iterable[Any], *, always: bool = False) -> None:
    """Refuse a width, count or length argument over :data:`MAX_VALUE` (only for the
    :data:`SIZED_ARGUMENTS` functions, unless ``always``)."""
    if name not in SIZED_ARGUMENTS and not always:
        return
    for arg in args:
        if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > MAX_VALUE:
            raise BudgetExceeded(f"{name}() given {arg:,} (at most {MAX_VALUE:,})")
        if isinstance(arg, str) and name in {"format", "printf"}:
            check_printf(arg)


def check_result(name: str, value: Any) -> Any:
    """Refuse a text or sequence result over :data:`MAX_VALUE`."""
    if isinstance(value, str | bytes | list | tuple) and len(value) > MAX_VALUE:
        raise _too_big(f"the result of {name}()", len(value))
    return value


def concat(*parts: Any) -> str:
    """Jinja's ``~``, refused before it is built when the result would be too long (every
    ``~`` of a template is rewritten into a call of this)."""
    texts = [p if isinstance(p, str) else str(p) for p in parts]
    size = sum(len(t) for t in texts)
    if size > MAX_VALUE:
        raise _too_big("a concatenation", size)
    return "".join(texts)


def check_joined(name: str, value: Any, separator: Any = "") -> None:
    """``join`` and ``sum`` build one value from many: refuse before, from the lengths."""
    if not isinstance(value, list | tuple):
        return
    sizes = [len(v) for v in value if isinstance(v, str | bytes | list | tuple)]
    sep = len(separator) if isinstance(separator, str) else 0
    size = sum(sizes) + sep * max(len(value) - 1, 0)
    if size > MAX_VALUE:
        raise _too_big(f"the result of {name}()", size)


def check_replace(value: Any, args: tuple[Any, ...]) -> None:
    """``replace`` grows its input by up to ``len(new)`` per match: refuse it before."""
    if len(args) >= 2 and isinstance(value, str) and isinstance(args[1], str):
        old, new = args[0], args[1]
        count = args[2] if len(args) > 2 and isinstance(args[2], int) else None
        matches = len(value) + 1 if old == "" else (value.count(old) if isinstance(old, str) else 0)
        if count is not None and count >= 0:
            matches = min(matches, count)
        size = len(value) + matches * len(new)
        if size > MAX_VALUE:
            raise _too_big("a replace", size)


def budgeted_filter(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Filter ``fn`` with its arguments (not the value it filters) and its result checked."""
    # A filter that wants Jinja's context or environment gets it first, then the value.
    first = 2 if hasattr(fn, "jinja_pass_arg") else 1

    def call(*args: Any, **kwargs: Any) -> Any:
        check_arguments(name, (*args[first:], *kwargs.values()))
        if len(args) >= first:
            value = args[first - 1]
            if name == "replace":
                check_replace(value, tuple(args[first:]))
            elif name == "format" and isinstance(value, str):
                check_printf(value, tuple(args[first:]))  # the format is the filtered value
            elif name in {"join", "sum"}:
                sep = args[first] if len(args) > first else kwargs.get("d", "")
                check_joined(name, value, sep)
        return check_result(name, fn(*args, **kwargs))

    call.__wrapped__ = fn  # type: ignore[attr-defined]
    if first == 2:  # Jinja reads how a filter wants its context or environment from this
        call.jinja_pass_arg = fn.jinja_pass_arg  # type: ignore[attr-defined]
    return call
