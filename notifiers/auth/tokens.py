"""Tokens: what is cached (:class:`CachedToken`) and how it is read from a token endpoint's
answer (pure).

A token is renewed shortly before it expires: 10 % of its lifetime, at most 30 s.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from integrations.errors import AuthenticationFailed

#: Lifetime assumed for a token whose response states none; a 401 invalidates it earlier.
DEFAULT_TOKEN_LIFETIME = 3600.0
#: Lifetime assumed for a JWT with neither an ``exp`` claim nor ``expires_in``.
DEFAULT_JWT_LIFETIME = 300.0
#: How long a refresh token is kept when the server states no lifetime for it.
REFRESH_TOKEN_LIFETIME = 30 * 86400.0
MAX_RENEW_MARGIN = 30.0
RENEW_FRACTION = 0.1


@dataclass(frozen=True)
class CachedToken:
    """An access token and when to renew it (epoch seconds)."""

    access_token: str
    expires_at: float
    renew_at: float
    token_type: str = "Bearer"

    def fresh(self, now: float) -> bool:
        """Still well within its lifetime: use without renewing."""
        return now < self.renew_at

    def usable(self, now: float) -> bool:
        """Not expired yet (may be in its renewal window)."""
        return now < self.expires_at

    def dumps(self) -> str:
        """JSON for the cache."""
        return json.dumps(
            {
                "access_token": self.access_token,
                "expires_at": self.expires_at,
                "renew_at": self.renew_at,
                "token_type": self.token_type,
            }
        )

    @classmethod
    def loads(cls, raw: bytes | str) -> CachedToken | None:
        """Parse :meth:`dumps` output; ``None`` for anything unreadable."""
        try:
            data = json.loads(raw)
            return cls(
                access_token=str(data["access_token"]),
                expires_at=float(data["expires_at"]),
                renew_at=float(data["renew_at"]),
                token_type=str(data.get("token_type") or "Bearer"),
            )
        except (ValueError, KeyError, TypeError):
            return None

    @classmethod
    def issued(
        cls, access_token: str, lifetime: float, now: float, token_type: str = "Bearer"
    ) -> CachedToken:
        """A token valid for ``lifetime`` seconds from ``now``, renewed a margin before."""
        lifetime = max(lifetime, 0.0)
        margin = min(MAX_RENEW_MARGIN, lifetime * RENEW_FRACTION)
        return cls(access_token, now + lifetime, now + lifetime - margin, token_type)


def token_from_response(payload: Mapping[str, Any], now: float) -> CachedToken:
    """A :class:`CachedToken` from an RFC 6749 token response (pure).

    Raises :class:`AuthenticationFailed` when the response carries no access token.
    """
    access_token = payload.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise AuthenticationFailed("token endpoint answered without an access_token")
    lifetime = DEFAULT_TOKEN_LIFETIME
    try:
        if payload.get("expires_in") is not None:
            lifetime = float(payload["expires_in"])
        elif payload.get("expires_at") is not None:
            lifetime = float(payload["expires_at"]) - now
    except (TypeError, ValueError):
        pass
    return CachedToken.issued(access_token, lifetime, now)


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT, read without verifying it (we are not its audience)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        exp = claims.get("exp") if isinstance(claims, dict) else None
        return float(exp) if isinstance(exp, int | float) else None
    except (ValueError, TypeError, RecursionError):  # the token comes from a remote server
        return None


def holds(access_token: str) -> Callable[[str], bool]:
    """Predicate on a cached record: it holds ``access_token``."""

    def check(raw: str) -> bool:
        token = CachedToken.loads(raw)
        return token is not None and token.access_token == access_token

    return check
