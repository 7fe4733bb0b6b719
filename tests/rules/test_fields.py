"""rules.fields: dotted, case-insensitive field resolution."""

from __future__ import annotations

from typing import Any

import pytest

from rules.fields import MISSING, get_key, is_missing, resolve

DATA: dict[str, Any] = {
    "subject": "Disk full",
    "Subject": "exact-case wins",
    "Impact": "High",
    "priority": {"Name": "P1", "level": 1},
    "tags": ["db", {"name": "prod"}],
    "empty": None,
    "custom.field": "dotted key",
    "nested": {"a.b": {"c": "deep dotted"}},
    "flag": False,
    "zero": 0,
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("subject", "Disk full"),
        ("Subject", "exact-case wins"),
        ("SUBJECT", "Disk full"),  # no exact match: first case-folded match in order
        ("impact", "High"),
        ("IMPACT", "High"),
        ("priority.name", "P1"),
        ("PRIORITY.NAME", "P1"),
        ("priority.level", 1),
        ("priority", {"Name": "P1", "level": 1}),
        ("tags.0", "db"),
        ("tags.1.name", "prod"),
        ("tags.1.NAME", "prod"),
        ("tags.2", MISSING),
        ("tags.x", MISSING),
        ("subject.0", MISSING),  # strings are not indexable by path
        ("priority.name.more", MISSING),
        ("missing", MISSING),
        ("missing.deeper", MISSING),
        ("empty", None),
        ("custom.field", "dotted key"),
        ("nested.a.b", {"c": "deep dotted"}),  # a dotted key ending the path
        ("nested.a.b.c", MISSING),  # ...but not one in the middle of it
        ("flag", False),
        ("zero", 0),
        ("", MISSING),
    ],
)
def test_resolve(path: str, expected: Any) -> None:
    assert resolve(DATA, path) == expected
    if expected is MISSING:
        assert resolve(DATA, path) is MISSING


def test_missing_is_a_falsy_singleton() -> None:
    assert not MISSING
    assert repr(MISSING) == "MISSING"
    assert type(MISSING)() is MISSING


@pytest.mark.parametrize(
    ("value", "missing"),
    [(None, True), (MISSING, True), ("", False), (0, False), (False, False), ([], False)],
)
def test_is_missing_treats_none_as_missing(value: Any, missing: bool) -> None:
    assert is_missing(value) is missing


def test_get_key_folds_unicode_case() -> None:
    assert get_key({"Straße": 1}, "STRASSE") == 1
    assert get_key({1: "int key"}, "1") is MISSING  # type: ignore[dict-item]
