"""The benchmark's result: figures, the rows of issue 7's table, and how they are judged.

Pure: :func:`evaluate` decides every ratio and verdict, :func:`format_table` prints them and
:func:`document` builds ``bench/results/latest.json``. The measures only collect figures.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

LoadAverage = tuple[float, float, float]


def load_average() -> LoadAverage:
    """The 1, 5 and 15 minute load averages now (every figure carries the one it was taken at)."""
    one, five, fifteen = os.getloadavg()
    return (round(one, 2), round(five, 2), round(fifteen, 2))


@dataclass(frozen=True)
class Figure:
    """One measured number (``None``: not measured, e.g. a measure still pending)."""

    name: str
    value: float | None
    unit: str
    load: LoadAverage = (0.0, 0.0, 0.0)
    #: How it was measured, or why it is missing ("pending", "deadline: 312 of 1000"...).
    note: str = ""
    #: The true figure is larger than ``value`` (a p99 among changes that never arrived).
    lower_bound: bool = False


@dataclass(frozen=True)
class Target:
    """A bound on a row: on the ratio Herald ÷ baseline, or on Herald's absolute figure."""

    op: Literal[">=", "<="]
    bound: float
    on: Literal["ratio", "value"] = "ratio"

    def met(self, value: float | None, ratio: float | None) -> bool | None:
        """Whether ``value``/``ratio`` meets the bound; ``None`` if it cannot be told."""
        subject = ratio if self.on == "ratio" else value
        if subject is None:
            return None
        return subject >= self.bound if self.op == ">=" else subject <= self.bound

    def describe(self, unit: str) -> str:
        """``≥ 1.0x`` or ``≤ 250 MB``."""
        sign = "≥" if self.op == ">=" else "≤"
        suffix = "x" if self.on == "ratio" else f" {unit}"
        return f"{sign} {self.bound:g}{suffix}"


@dataclass(frozen=True)
class Row:
    """A line of the table: Herald's figure beside its baseline, and the target."""

    #: Name of the ratio in ``latest.json`` (stable: other tooling reads it).
    key: str
    measure: str
    herald: Figure
    baseline: Figure | None = None
    target: Target | None = None


@dataclass(frozen=True)
class Verdict:
    """A row judged: its ratio (Herald ÷ baseline) and whether its target is met."""

    row: Row
    ratio: float | None
    met: bool | None


def ratio(herald: Figure, baseline: Figure | None) -> float | None:
    """Herald's figure over the baseline's, or ``None`` when either is missing or zero."""
    if baseline is None or herald.value is None or baseline.value in (None, 0.0):
        return None
    assert baseline.value is not None
    return herald.value / baseline.value


def evaluate(rows: Sequence[Row]) -> list[Verdict]:
    """Judge every row."""
    out = []
    for row in rows:
        r = ratio(row.herald, row.baseline)
        met = row.target.met(row.herald.value, r) if row.target else None
        out.append(Verdict(row, r, met))
    return out


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".rstrip()


def _cell(fig: Figure | None) -> str:
    if fig is None:
        return ""
    if fig.value is None:
        return fig.note or "—"
    bound = "> " if fig.lower_bound else ""
    return f"{bound}{_num(fig.value, fig.unit)} @{fig.load[0]:.2f}"


def format_table(verdicts: Sequence[Verdict]) -> str:
    """The table as text: measure | Herald | baseline | ratio | target | met?

    Each figure is followed by ``@`` and the 1-minute load average when it was taken.
    """
    header = ("measure", "Herald", "baseline", "ratio", "target", "met?")
    lines = [header]
    for v in verdicts:
        target = v.row.target.describe(v.row.herald.unit) if v.row.target else ""
        met = {True: "yes", False: "NO", None: "—" if v.row.target else ""}[v.met]
        rat = f"{v.ratio:.2f}x" if v.ratio is not None else ""
        baseline = ""
        if v.row.baseline is not None:
            baseline = f"{v.row.baseline.name}: {_cell(v.row.baseline)}"
        lines.append((v.row.measure, _cell(v.row.herald), baseline, rat, target, met))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    text.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(t.rstrip() for t in text)


def notes(verdicts: Sequence[Verdict], extra: Sequence[Figure] = ()) -> list[str]:
    """The lines under the table: every note of a shown figure, then ``extra``'s (errors).

    A placeholder's note ("not run", "pipeline failed") is already in its cell.
    """
    seen: dict[str, str] = {}
    for v in verdicts:
        for fig in (v.row.herald, v.row.baseline):
            if fig is not None and fig.note and fig.value is not None:
                seen.setdefault(fig.name, fig.note)
    for fig in extra:
        seen.setdefault(fig.name, fig.note)
    return [f"{name}: {note}" for name, note in seen.items()]


@dataclass(frozen=True)
class RunInfo:
    """What identifies a run: mode, code revision, time, machine."""

    mode: str
    revision: str
    dirty: bool
    timestamp: str
    wall_seconds: float
    cpus: int
    python: str
    settings: Mapping[str, Any] = field(default_factory=dict)


def document(verdicts: Sequence[Verdict], extra: Sequence[Figure], info: RunInfo) -> dict[str, Any]:
    """``latest.json``: every ratio by name, every verdict, every raw figure with its load."""
    figures: dict[str, dict[str, Any]] = {}
    for fig in [f for v in verdicts for f in (v.row.herald, v.row.baseline) if f] + list(extra):
        figures[fig.name] = {
            "value": fig.value,
            "unit": fig.unit,
            "loadavg": list(fig.load),
            "note": fig.note,
            "lower_bound": fig.lower_bound,
        }
    return {
        "run": asdict(info),
        "ratios": {v.row.key: v.ratio for v in verdicts},
        "met": {v.row.key: v.met for v in verdicts if v.row.target is not None},
        "rows": [
            {
                "key": v.row.key,
                "measure": v.row.measure,
                "herald": v.row.herald.name,
                "baseline": v.row.baseline.name if v.row.baseline else None,
                "ratio": v.ratio,
                "target": v.row.target.describe(v.row.herald.unit) if v.row.target else None,
                "met": v.met,
            }
            for v in verdicts
        ],
        "figures": figures,
    }
