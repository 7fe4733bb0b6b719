"""Issue 8, bounds: a template costs at most its render budget, at save and at render."""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

import pytest

from rules import budget
from rules.budget import MAX_STEPS, Budget, BudgetExceeded
from rules.errors import RuleError
from rules.render import render


def run(template: str, **data: Any) -> str:
    return render(template, entity="INCIDENT", data=data).body


def fails(template: str, needle: str, **data: Any) -> float:
    """Render ``template``: it must fail with ``needle`` in the reason; the seconds it took.

    The reason is the budget's, except for a recursion Python itself stops first.
    """
    start = time.perf_counter()
    with pytest.raises(RuleError) as info:
        run(template, **data)
    assert needle in str(info.value), str(info.value)
    if needle != "RecursionError":
        assert str(info.value).startswith("payload: template over its render budget")
    return time.perf_counter() - start


def test_constant_folding_cannot_make_a_save_expensive() -> None:
    # Jinja folds constants at compile time: this took 1-2 s and 380 MB to save.
    tracemalloc.start()
    try:
        start = time.perf_counter()
        with pytest.raises(RuleError, match="repetition would be 100,000,000 long"):
            run("{{ 'x' * 100000000 }}")
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 0.5 and peak < 8 * 2**20, (elapsed, peak)


@pytest.mark.parametrize(
    ("template", "needle"),
    [
        ("{{ 'x' * 100000000 }}", "repetition"),
        ("{{ [1, 2] * 10000000 }}", "repetition"),
        ("{{ 2 ** 100000000 }}", "power"),
        ("{% set x = 'x' * 2000000 %}{{ x + x }}", "concatenation"),
        ("{{ '%100000000d' % 1 }}", "format width"),
        ("{{ '{:>100000000}'.format(1) }}", "format width"),
        ("{{ 'x'|center(100000000) }}", "center() given 100,000,000"),
        ("{{ 'x'.ljust(100000000) }}", "ljust() given 100,000,000"),
        ("{{ 'x'|indent(100000000, true) }}", "indent() given"),
        ("{{ ('x' * 1000000)|replace('', 'yy') }}", "replace would be"),
        ("{{ ('x' * 1000)|replace('x', 'y' * 10000) }}", "replace would be"),
        ("{{ 'abc'.replace('', 'z' * 1000000) }}", "replace would be"),
    ],
)
def test_values_too_large_are_refused_before_they_are_made(template: str, needle: str) -> None:
    assert fails(template, needle) < 0.5


def test_nested_loops_stop_at_the_step_budget_at_once() -> None:
    # 10^10 steps held a worker until its hard time limit.
    loops = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    assert fails(loops, f"more than {MAX_STEPS:,} loop steps") < 2.0


def test_loops_over_data_count_too() -> None:
    items = list(range(1000))
    loops = "{% for a in incident.items %}{% for b in incident.items %}{% endfor %}{% endfor %}"
    assert fails(loops, "loop steps", items=items) < 2.0


def test_a_range_larger_than_the_budget_is_refused_whole() -> None:
    fails("{% for i in range(10**6) %}{% endfor %}", "range of 1,000,000 items")


def test_the_output_is_bounded_as_it_is_produced() -> None:
    big = "{% set x = 'x' * 1000000 %}{% for i in range(10) %}{{ x }}{% endfor %}"
    fails(big, "the payload is longer than 2,097,152 characters")


def test_lipsum_is_not_offered() -> None:
    with pytest.raises(RuleError):
        run("{{ lipsum(100000) }}")


def test_the_clock_is_read_as_loops_run() -> None:
    now = [0.0]
    b = Budget(lambda: now[0])
    for _ in range(255):
        b.step()
    now[0] = budget.MAX_SECONDS + 0.1
    with pytest.raises(BudgetExceeded, match="took more than 1 s"):
        b.step()  # the 256th step reads the clock


def test_ordinary_templates_are_untouched() -> None:
    assert run("{{ incident.n | default(5000000) }}") == "5000000"
    assert run("{{ incident.n * 2 }}", n=3_000_000) == "6000000"
    assert run("{{ 'ab' * 3 }}|{{ 2 ** 10 }}|{{ '%5d' % 42 }}") == "ababab| 1024|   42".replace(
        "| 1024", "|1024"
    )
    fields = "{% for f in incident.tags %}{{ loop.index }}:{{ f }};{% endfor %}"
    assert run(fields, tags=["a", "b"]) == "1:a;2:b;"
    assert run("{{ range(3)|list|length }}-{{ range(5)[2] }}") == "3-2"
    assert run("{{ 'x'|center(5) }}") == "  x  "


@pytest.mark.parametrize(
    ("template", "needle"),
    [
        # Found in review: each of these ran unbounded or built hundreds of MB before.
        (
            "{% macro f(d) %}{% if d < 40 %}{{ f(d + 1) }}{{ f(d + 1) }}{% endif %}{% endmacro %}"
            "{{ f(0) }}",
            "over its render budget",  # steps or time, whichever this machine reaches first
        ),
        ("{% for x in [[0, 0]] recursive %}{{ loop([x, x]) }}{% endfor %}", "RecursionError"),
        (
            "{% for x in [1] recursive %}{{ loop([1, 1]) if loop.depth < 30 }}{% endfor %}",
            "over its render budget",
        ),
        (
            "{% set a = 'x' * 1000000 %}{% set a = a ~ a ~ a %}{% set a = a ~ a %}{{ a }}",
            "concatenation",
        ),
        ("{{ '%*d' % (500000000, 1) }}", "format() given 500,000,000"),
        ("{{ '%500000000d' | format(1) }}", "format width"),
        ("{{ (['x' * 2000000] * 300) | join }}", "the result of join() would be"),
    ],
)
def test_what_the_review_found_is_refused_too(template: str, needle: str) -> None:
    assert fails(template, needle) < 2.0


def test_concatenation_still_works() -> None:
    assert run("{{ incident.a ~ '-' ~ 42 }}", a="x") == "x-42"
    assert run("{{ ['a', 'b'] | join(', ') }}|{{ '%5.1f' % 3.14159 }}") == "a, b|  3.1"
