"""Fixtures of the fault-injection tests: a private deployment per test, always cleaned up."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.harness import RESULTS, Responder, Rig, Sink


@pytest.fixture
def make_rig(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    """Build a :class:`Rig` (own Redis, store, workers); every one is closed at teardown."""
    rigs: list[Rig] = []

    def make(**overrides: Any) -> Rig:
        rig = Rig(tmp_path / f"rig{len(rigs)}", **overrides)
        rigs.append(rig)
        return rig

    try:
        yield make
    finally:
        for rig in rigs:
            rig.close()


@pytest.fixture
def responder() -> Responder:
    """The sink's policy and the record of what it answered (200 by default)."""
    return Responder()


@pytest.fixture
def sink(responder: Responder) -> Iterator[Sink]:
    """A loopback sink answering with ``responder``; it can go down and come back."""
    s = Sink(responder)
    try:
        yield s
    finally:
        s.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print every measured recovery time and duplicate count at the end of the run."""
    if RESULTS:
        terminalreporter.section("fault-injection results")
        for line in RESULTS:
            terminalreporter.write_line(line)
