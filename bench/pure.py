"""Micro-benchmarks of the pure rule engine, side by side with their baselines.

Each function returns calls per second of CPU time (``time.process_time``), measured in one
run so that the ratios between them mean something on a shared machine (every figure is the
best of a few interleaved rounds):

* :func:`match_rates` -- one ``filterCriteria`` (3 rules, ``ALL``: a case-insensitive key,
  a dotted path, a regex) evaluated by Herald (``herald``), by the ``rule-engine`` library
  (``rule_engine``, with the exact key spellings it needs) and by a naive interpreter that walks
  the JSON rules on every call with ``dict.get`` and ``re`` (``naive``);
* :func:`render_rates` -- a JSON payload with 4 and with 50 ``$incident.*`` placeholders rendered
  by Herald (``herald_4``, ``herald_50``) and the equivalent ``{{ incident.* }}`` template by plain
  ``jinja2.Template.render`` (``jinja2_4``, ``jinja2_50``).

``python -m bench.pure [n]`` prints both tables.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import jinja2

from rules.matcher import Matcher, compile_criteria
from rules.render import Syntax, render

#: The entity the criteria and templates are written for.
ENTITY = "INCIDENT"

CRITERIA: dict[str, Any] = {
    "matchType": "ALL",
    "rules": [
        {"key": "Subject", "operator": "Contains", "value": "windows"},
        {"key": "priority.name", "operator": "Equals", "value": "P1"},
        {"key": "Description", "operator": "Regex", "value": "disk (full|failure)"},
    ],
}
#: The same criteria for ``rule-engine``, which needs exact key spellings.
RULE_ENGINE_TEXT = (
    "'windows' in subject.as_lower and priority['name'].as_lower == 'p1'"
    " and description =~~ 'disk (full|failure)'"
)
DATA: dict[str, Any] = {
    "id": "INC-1",
    "subject": "Windows host WIN-42 disk",
    "description": "C: drive: disk full at 99 %",
    "priority": {"name": "P1"},
    "status": "Open",
    "assignedTo": {"loginName": "ops", "group": "NOC"},
}

_FIELDS_4 = ("subject", "description", "priority.name", "id")
_FIELDS_50 = tuple(f"field{i}" for i in range(50))
DATA_50: dict[str, Any] = {
    **DATA,
    **{name: f"value {i} with some text" if i % 3 else i for i, name in enumerate(_FIELDS_50)},
}


def _herald_template(fields: tuple[str, ...]) -> str:
    return "{" + ",".join(f'"{f}":"$incident.{f}"' for f in fields) + "}"


def _jinja_template(fields: tuple[str, ...]) -> str:
    return "{" + ",".join(f'"{f}":"{{{{ incident.{f} }}}}"' for f in fields) + "}"


def build_matcher() -> Matcher:
    """Herald's compiled :data:`CRITERIA`."""
    return compile_criteria(CRITERIA, ENTITY)


def naive_matches(criteria: Mapping[str, Any], data: Mapping[str, Any]) -> bool:
    """The baseline a developer would write: re-read the JSON rules on every call."""
    outcomes = []
    for rule in criteria["rules"]:
        value: Any = data
        for segment in rule["key"].split("."):
            if not isinstance(value, Mapping):
                value = None
                break
            found = value.get(segment)
            value = value.get(segment.lower()) if found is None else found
        text = "" if value is None else str(value)
        expected = rule["value"]
        operator = rule["operator"]
        if operator == "Contains":
            outcome = expected.lower() in text.lower()
        elif operator == "Equals":
            outcome = expected.lower() == text.lower()
        elif operator == "Regex":
            outcome = re.search(expected, text) is not None
        else:
            raise ValueError(operator)
        outcomes.append(outcome)
    return all(outcomes) if criteria["matchType"] == "ALL" else any(outcomes)


def _rate(fn: Callable[[], object], n: int) -> float:
    # CPU time of this process, not wall time: on a machine shared with other work, time
    # spent waiting for a core would otherwise land on whichever candidate was running.
    start = time.process_time()
    for _ in range(n):
        fn()
    return n / max(time.process_time() - start, 1e-9)


def _best(candidates: dict[str, Callable[[], object]], n: int, rounds: int) -> dict[str, float]:
    """Best rate of each candidate over ``rounds`` interleaved rounds of ``n`` calls."""
    best = dict.fromkeys(candidates, 0.0)
    for _ in range(rounds):
        for name, fn in candidates.items():
            best[name] = max(best[name], _rate(fn, n))
    return best


def match_rates(n: int = 20_000, rounds: int = 5) -> dict[str, float]:
    """Matches per second: keys ``herald``, ``rule_engine``, ``naive``."""
    # The bench extra; imported here so that the module loads without it.
    import rule_engine  # type: ignore[import-untyped]

    matcher = build_matcher()
    engine_rule = rule_engine.Rule(RULE_ENGINE_TEXT)
    checks = (matcher.matches(DATA), engine_rule.matches(DATA), naive_matches(CRITERIA, DATA))
    if checks != (True, True, True):  # the three must agree, or the race means nothing
        raise AssertionError(f"baselines disagree on the sample: {checks}")
    return _best(
        {
            "herald": lambda: matcher.matches(DATA),
            "rule_engine": lambda: engine_rule.matches(DATA),
            "naive": lambda: naive_matches(CRITERIA, DATA),
        },
        n,
        rounds,
    )


def render_rates(n: int = 5_000, rounds: int = 5) -> dict[str, float]:
    """Renders per second: keys ``herald_4``, ``jinja2_4``, ``herald_50``, ``jinja2_50``."""
    herald_4, herald_50 = _herald_template(_FIELDS_4), _herald_template(_FIELDS_50)
    jinja_4 = jinja2.Template(_jinja_template(_FIELDS_4))
    jinja_50 = jinja2.Template(_jinja_template(_FIELDS_50))

    def ours(template: str, data: Mapping[str, Any]) -> Callable[[], object]:
        return lambda: render(template, entity=ENTITY, data=data, syntax=Syntax.JSON)

    def theirs(template: jinja2.Template, data: Mapping[str, Any]) -> Callable[[], object]:
        return lambda: template.render(incident=data)

    for check in (ours(herald_4, DATA), ours(herald_50, DATA_50)):
        check()  # compile once outside the timing, as a worker does
    return _best(
        {
            "herald_4": ours(herald_4, DATA),
            "jinja2_4": theirs(jinja_4, DATA),
            "herald_50": ours(herald_50, DATA_50),
            "jinja2_50": theirs(jinja_50, DATA_50),
        },
        n,
        rounds,
    )


def main(argv: list[str]) -> None:
    """Print both tables with ratios (``python -m bench.pure [n]``)."""
    n = int(argv[0]) if argv else 20_000
    match = match_rates(n)
    print(f"match/s   herald {match['herald']:>10,.0f}")
    for base in ("rule_engine", "naive"):
        ratio = match["herald"] / match[base]
        print(f"          {base:<11} {match[base]:>10,.0f}  ratio {ratio:.2f}x")
    rend = render_rates(max(n // 4, 1))
    for size in ("4", "50"):
        ours, theirs = rend[f"herald_{size}"], rend[f"jinja2_{size}"]
        print(
            f"render/s  {size:>2} fields herald {ours:>9,.0f}  jinja2 {theirs:>9,.0f}"
            f"  ratio {ours / theirs:.2f}x"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
