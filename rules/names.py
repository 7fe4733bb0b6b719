"""The spellings rules understand: operators and match types, parsed tolerantly.

OpsRamp clients send ``Starts with`` as well as ``STARTS_WITH`` and ``startswith``. Each enum
parses any of these by folding case and dropping spaces, underscores and hyphens; the
canonical value (the one echoed by the API) is the seed's own spelling. These enums live here,
with no dependency, so that the rule engine can parse plain JSON criteria; Herald's API models
(:mod:`integrations.enums`) reuse them rather than keep a second copy of the spellings.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self


def fold(text: str) -> str:
    """Fold an enum spelling to its comparison key: upper case, no spaces, ``_`` or ``-``."""
    return "".join(ch for ch in text.upper() if ch not in " _-\t")


class TolerantEnum(StrEnum):
    """A string enum that parses case-, space- and underscore-insensitively."""

    @classmethod
    def aliases(cls) -> dict[str, str]:
        """Extra folded spellings mapped to a member's value."""
        return {}

    @classmethod
    def parse(cls, raw: object) -> Self:
        """Return the member that ``raw`` spells, or raise ``ValueError`` listing the choices."""
        if isinstance(raw, cls):
            return raw
        if not isinstance(raw, str):
            raise ValueError(f"must be a string, one of: {', '.join(m.value for m in cls)}")
        key = fold(raw)
        for member in cls:
            if fold(member.value) == key or fold(member.name) == key:
                return member
        alias = cls.aliases().get(key)
        if alias is not None:
            return cls(alias)
        raise ValueError(
            f"unknown value {raw!r}; expected one of: {', '.join(m.value for m in cls)}"
        )


class MatchType(TolerantEnum):
    """Whether ANY or ALL filter rules must match."""

    ANY = "ANY"
    ALL = "ALL"


class Operator(TolerantEnum):
    """Filter-rule operators, spelled as the seed spells them."""

    CONTAINS = "Contains"
    NOT_CONTAINS = "Not Contains"
    EQUALS = "Equals"
    NOT_EQUALS = "Not Equals"
    STARTS_WITH = "Starts with"
    ENDS_WITH = "Ends with"
    REGEX = "Regex"

    @classmethod
    def aliases(cls) -> dict[str, str]:
        return {
            "DOESNOTCONTAIN": "Not Contains",
            "NOTEQUAL": "Not Equals",
            "EQUAL": "Equals",
            "STARTSWITH": "Starts with",
            "ENDSWITH": "Ends with",
            "MATCHES": "Regex",
            "REGEXP": "Regex",
        }
