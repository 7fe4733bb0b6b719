"""Which OAuth2 grant a notifier uses and what it needs (pure).

Default grant when ``grantType`` is missing: PASSWORD when ``userName`` and ``password`` are
set (that is what the seed's samples carry), else CLIENT_CREDENTIALS.
"""

from __future__ import annotations

from dataclasses import dataclass

from integrations.enums import GrantType
from integrations.errors import NotifierMisconfigured
from integrations.models import Notifier
from notifiers.urls import resolve_url


def effective_grant(notifier: Notifier) -> GrantType:
    """The OAuth2 grant to use: ``grantType``, or the documented default when it is missing."""
    if notifier.grantType is not None:
        return notifier.grantType
    if notifier.userName and notifier.password:
        return GrantType.PASSWORD
    return GrantType.CLIENT_CREDENTIALS


def missing_fields(notifier: Notifier, fields: tuple[str, ...]) -> list[str]:
    """The ``fields`` of ``notifier`` that are unset or empty."""
    return [f for f in fields if not getattr(notifier, f)]


def misconfigured(missing: list[str], what: str) -> NotifierMisconfigured:
    """The error naming the first missing field (and the others after it)."""
    first, rest = missing[0], missing[1:]
    reason = f"notifier.{first} is required for {what}"
    if rest:
        reason += "; also missing: " + ", ".join(f"notifier.{f}" for f in rest)
    return NotifierMisconfigured(reason)


@dataclass(frozen=True)
class OAuth2Config:
    """Everything one OAuth2 grant needs, validated from a notifier (pure)."""

    token_url: str
    grant: GrantType
    client_id: str
    client_secret: str | None
    username: str | None
    password: str | None
    scope: str | None

    @classmethod
    def from_notifier(cls, notifier: Notifier) -> OAuth2Config:
        """Validate ``notifier`` for its grant; raise :class:`NotifierMisconfigured` naming the
        missing field. ``apiSecret`` is optional for the user grants (public clients)."""
        grant = effective_grant(notifier)
        needed: tuple[str, ...] = ("accessTokenURL", "apiKey")
        if grant is GrantType.CLIENT_CREDENTIALS:
            needed += ("apiSecret",)
        else:
            needed += ("userName", "password")
        missing = missing_fields(notifier, needed)
        if missing:
            what = f"OAUTH2 grant {grant.value}"
            if notifier.grantType is None:
                what += " (defaulted: grantType unset)"
            raise misconfigured(missing, what)
        assert notifier.accessTokenURL is not None and notifier.apiKey is not None
        try:
            token_url = resolve_url(notifier.baseURI, notifier.accessTokenURL)
        except NotifierMisconfigured as exc:
            raise NotifierMisconfigured(f"notifier.accessTokenURL: {exc.reason}") from None
        return cls(
            token_url=token_url,
            grant=grant,
            client_id=notifier.apiKey,
            client_secret=notifier.apiSecret or None,
            username=notifier.userName,
            password=notifier.password,
            scope=notifier.scope,
        )
