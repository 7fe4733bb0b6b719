"""Applying a notifier's ``authType`` (NONE, BASIC, OAUTH2, JWT) to a request's headers."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import httpx
import redis

from integrations.config import Settings
from integrations.enums import AuthType
from integrations.models import Notifier
from notifiers.auth.cache import MemoryTokenStore, RedisTokenStore, TokenCache, TokenStore
from notifiers.auth.config import misconfigured
from notifiers.auth.jwt import JWTTokens, token_name
from notifiers.auth.oauth2 import OAuth2Tokens
from notifiers.auth.tokens import CachedToken


@dataclass(frozen=True)
class AppliedAuth:
    """What auth added to one request: its headers, and the token to invalidate on 401."""

    headers: tuple[tuple[str, str], ...] = ()
    token: str | None = None
    #: Values to mask wherever they would be shown (request-header echo, logs).
    secrets: tuple[str, ...] = ()

    @property
    def renewable(self) -> bool:
        """Whether a 401 may be cured by fetching a new token."""
        return self.token is not None


class Authenticator:
    """Applies a notifier's ``authType`` to outbound requests."""

    def __init__(
        self,
        settings: Settings,
        http: httpx.Client,
        redis_client: redis.Redis | None = None,
        *,
        store: TokenStore | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        """Tokens go to ``store``; by default Redis when ``redis_client`` is given (shared by
        every worker process), else this process's memory. ``now`` is the epoch clock."""
        if store is None:
            store = MemoryTokenStore(now) if redis_client is None else RedisTokenStore(redis_client)
        # Long enough for one token request to finish, short enough to recover from a crash.
        lock_timeout = settings.connect_timeout + settings.read_timeout + 5.0
        cache = TokenCache(
            store,
            settings.redis_prefix,
            key_secret=settings.secret_key,
            lock_timeout=lock_timeout,
            now=now,
        )
        self.oauth2 = OAuth2Tokens(settings, http, cache)
        self.jwt = JWTTokens(settings, http, cache)

    def apply(self, notifier: Notifier) -> AppliedAuth:
        """The auth headers for ``notifier``; raises NotifierMisconfigured/AuthenticationFailed/
        TokenEndpointUnavailable as the auth type requires."""
        if notifier.authType is AuthType.NONE:
            return AppliedAuth()
        if notifier.authType is AuthType.BASIC:
            return basic_auth(notifier)
        if notifier.authType is AuthType.OAUTH2:
            return self._carrying(notifier, self.oauth2.token(notifier))
        return self._carrying(notifier, self.jwt.token(notifier))

    def peek(self, notifier: Notifier) -> AppliedAuth | None:
        """:meth:`apply` without I/O, or ``None`` when it needs the store or a token endpoint
        (the token is not held fresh in this process)."""
        if notifier.authType in (AuthType.NONE, AuthType.BASIC):
            return self.apply(notifier)
        tokens = self.oauth2 if notifier.authType is AuthType.OAUTH2 else self.jwt
        token = tokens.peek(notifier)
        return None if token is None else self._carrying(notifier, token)

    @staticmethod
    def _carrying(notifier: Notifier, token: CachedToken) -> AppliedAuth:
        if notifier.authType is AuthType.OAUTH2:
            headers: tuple[tuple[str, str], ...] = (
                ("Authorization", f"Bearer {token.access_token}"),
            )
        else:
            headers = jwt_headers(notifier, token.access_token)
        return AppliedAuth(headers=headers, token=token.access_token, secrets=(token.access_token,))

    def invalidate(self, notifier: Notifier, applied: AppliedAuth) -> None:
        """Forget the token of ``applied`` after the endpoint rejected it with 401."""
        if applied.token is None:
            return
        if notifier.authType is AuthType.OAUTH2:
            self.oauth2.invalidate(notifier, applied.token)
        elif notifier.authType is AuthType.JWT:
            self.jwt.invalidate(notifier, applied.token)


def basic_auth(notifier: Notifier) -> AppliedAuth:
    """``Authorization: Basic`` from ``userName``/``password`` (pure)."""
    # An empty password is legitimate (API key as user name); a missing one is not.
    missing = [] if notifier.userName else ["userName"]
    if notifier.password is None:
        missing.append("password")
    if missing:
        raise misconfigured(missing, "BASIC")
    assert notifier.userName is not None and notifier.password is not None
    return _basic(notifier.userName, notifier.password)


@lru_cache(maxsize=1024)
def _basic(user: str, password: str) -> AppliedAuth:
    # Per credentials, not per delivery (AppliedAuth is immutable). Bounded, least recently
    # used first out; the key is what the notifier already holds in memory.
    credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
    return AppliedAuth(
        headers=(("Authorization", f"Basic {credentials}"),),
        secrets=(credentials, password) if password else (credentials,),
    )


def jwt_headers(notifier: Notifier, token: str) -> tuple[tuple[str, str], ...]:
    """``resourceAuthHeaders`` with ``$jwtToken`` (and the name an OpsRamp ``tokensPath``
    entry gives the token) substituted; ``Authorization: Bearer`` when none are configured
    (pure)."""
    if not notifier.resourceAuthHeaders:
        return (("Authorization", f"Bearer {token}"),)
    names = ["$jwtToken"]
    if (name := token_name(notifier)) and name != "jwtToken":
        names.append(f"${name}")

    def value(text: str) -> str:
        for placeholder in names:
            text = text.replace(placeholder, token)
        return text

    return tuple((h.key, value(h.value)) for h in notifier.resourceAuthHeaders)
