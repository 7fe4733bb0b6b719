"""The seed's three sample requests, read from ``shared/seed/create-integration-event.txt``.

Read verbatim from the reference page, so the tests prove the samples are accepted exactly as
written. Their endpoints (``www.google.com``) are data: tests that store them never publish a
change they match.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

_CANDIDATES = [
    Path(os.environ.get("HERALD_SEED", "")),
    Path(__file__).resolve().parents[3] / "shared" / "seed" / "create-integration-event.txt",
    Path(__file__).resolve().parents[1] / "data" / "create-integration-event.txt",
]


def seed_text() -> str:
    """The reference page's text (the shared copy, else the one vendored under tests/data)."""
    for path in _CANDIDATES:
        if path.is_file():
            return path.read_text()
    raise FileNotFoundError("create-integration-event.txt not found")


def _blocks(marker: str) -> list[str]:
    text = seed_text()
    out = []
    for part in text.split(marker)[1:]:
        start = part.index("{")
        depth = 0
        for i, ch in enumerate(part[start:], start):
            depth += ch == "{"
            depth -= ch == "}"
            if depth == 0:
                out.append(part[start : i + 1])
                break
    return out


def sample_requests() -> list[str]:
    """The three sample request bodies, as raw text."""
    return _blocks("Sample request")


def sample_responses() -> list[str]:
    """The three sample response bodies, as raw text (not valid JSON: see the seed)."""
    return _blocks("Sample response")


def sample_request(i: int) -> dict[str, Any]:
    """Sample request ``i`` parsed."""
    parsed: dict[str, Any] = json.loads(sample_requests()[i])
    return parsed
