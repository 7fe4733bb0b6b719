"""``python -m bench [--quick]``: every measure of issue 7 beside its baseline, in one run.

Starts a private ``redis-server`` (so ``INFO commandstats`` counts this run alone, and nobody
else's load shares the broker), runs the measures one after another, prints the table
(measure | Herald | baseline | ratio | target | met?, each figure with the 1-minute load
average it was taken at) and writes ``bench/results/latest.json``. ``make bench`` is the full
run, ``make bench-quick`` the reduced one (under 60 s on 2 cores).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench.config import FULL, QUICK, Mode
from bench.costs import figure
from bench.report import Figure, RunInfo, document, evaluate, format_table, notes
from bench.table import rows

RESULTS = Path(__file__).resolve().parent / "results"
MEASURES = ("pure", "pipeline", "latency", "fanout", "history")


def pure_figures(mode: Mode, say: Callable[[str], None]) -> list[Figure]:
    """Measure 4 through ``bench/pure.py``, or "pending" figures if it cannot be imported."""
    say("matching and rendering (bench/pure.py)")
    names = [f"match.{k}" for k in ("herald", "rule_engine", "naive")] + [
        f"render.{k}" for k in ("herald_4", "jinja2_4", "herald_50", "jinja2_50")
    ]
    try:
        from bench.pure import match_rates, render_rates

        rates = {f"match.{k}": v for k, v in match_rates(mode.pure_n).items()}
        rates |= {f"render.{k}": v for k, v in render_rates(max(mode.pure_n // 4, 1)).items()}
    except ImportError as exc:
        return [figure(n, None, "", f"pending ({exc})") for n in names]
    return [
        figure(n, rates.get(n), "match/s" if n.startswith("match") else "render/s") for n in names
    ]


def git_revision() -> tuple[str, bool]:
    """The checked-out commit and whether the tree has changes."""
    root = Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False
    return rev, bool(dirty)


def run_measures(
    redis_url: str, mode: Mode, only: tuple[str, ...], say: Callable[[str], None]
) -> list[Figure]:
    """Every selected measure, in order; a measure that fails is reported, not fatal."""
    from bench import fanout, history, latency, pipeline

    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="herald-bench-logs-") as logs:
        steps: dict[str, Callable[[], list[Figure]]] = {
            "pure": lambda: pure_figures(mode, say),
            "pipeline": lambda: pipeline.measure(redis_url, mode, logs, say),
            "latency": lambda: latency.measure(redis_url, mode, say),
            "fanout": lambda: fanout.measure(redis_url, mode, say),
            "history": lambda: history.measure(redis_url, mode, say),
        }
        for name in only:
            start = time.perf_counter()
            try:
                figures += steps[name]()
            except Exception as exc:  # one broken measure must not hide the others
                say(f"{name}: FAILED: {type(exc).__name__}: {exc}")
                figures.append(figure(f"error.{name}", None, "", f"{type(exc).__name__}: {exc}"))
            say(f"{name}: {time.perf_counter() - start:.1f} s")
    return figures


def main(argv: list[str]) -> int:
    """Run, print, write ``latest.json``; exit 0 whatever the verdicts (it is a measurement)."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the reduced run (make bench-quick)")
    parser.add_argument("--only", default=",".join(MEASURES), help=f"subset of {MEASURES}")
    parser.add_argument("--concurrency", type=int, help="pool size of every node")
    parser.add_argument("--redis-url", help="use this Redis instead of a private one")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    args = parser.parse_args(argv)
    mode = QUICK if args.quick else FULL
    if args.concurrency:
        mode = dataclasses.replace(mode, concurrency=args.concurrency)
    only = tuple(m for m in args.only.split(",") if m)
    unknown = set(only) - set(MEASURES)
    if unknown:
        parser.error(f"unknown measures: {sorted(unknown)}")
    began = time.perf_counter()

    def say(text: str) -> None:
        print(
            f"[{time.perf_counter() - began:5.1f} s, load {os.getloadavg()[0]:.2f}] {text}",
            file=sys.stderr,
            flush=True,
        )

    if args.redis_url:
        figures = run_measures(args.redis_url, mode, only, say)
    else:
        from worker.redis_server import RedisServer

        # As production runs Redis: AOF, everysec, noeviction.
        with (
            tempfile.TemporaryDirectory(prefix="herald-bench-redis-") as tmp,
            RedisServer(Path(tmp)) as server,
        ):
            say(f"private redis-server at {server.url}")
            figures = run_measures(server.url, mode, only, say)
    verdicts = evaluate(rows({f.name: f for f in figures}, mode))
    print(format_table(verdicts))
    errors = [f for f in figures if f.name.startswith("error.")]
    for line in notes(verdicts, errors):
        print(f"  {line}")
    rev, dirty = git_revision()
    info = RunInfo(
        mode=mode.name,
        revision=rev,
        dirty=dirty,
        timestamp=datetime.now(UTC).isoformat(timespec="seconds"),
        wall_seconds=round(time.perf_counter() - began, 1),
        cpus=os.cpu_count() or 0,
        python=sys.version.split()[0],
        settings=mode.__dict__,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document(verdicts, figures, info), indent=2) + "\n")
    print(f"wrote {args.out} ({info.wall_seconds} s, load {os.getloadavg()[0]:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
