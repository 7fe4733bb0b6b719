"""OAuth2 access tokens (client credentials, password, refresh token grants).

Token requests are built and parsed by authlib's protocol client
(:class:`authlib.oauth2.client.OAuth2Client`: ``fetch_token`` / ``refresh_token``), given our
own ``httpx.Client`` as its session, so the token endpoint goes through the same SSRF guard,
timeouts and no-redirect policy as deliveries. authlib's httpx integration is not used: it is
moving to the ``httpx2`` package and warns on every import with plain httpx.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Mapping
from typing import Any

import httpx
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.client import OAuth2Client

from integrations.config import Settings
from integrations.enums import GrantType
from integrations.errors import (
    AuthenticationFailed,
    NotifierMisconfigured,
    TokenEndpointUnavailable,
)
from integrations.metrics import token_request
from integrations.models import Notifier
from notifiers.auth.cache import TokenCache
from notifiers.auth.config import OAuth2Config
from notifiers.auth.tokens import REFRESH_TOKEN_LIFETIME, CachedToken, token_from_response
from notifiers.decoding import truncated
from notifiers.outcome import excerpt, header, parse_retry_after
from notifiers.response import MAX_RESPONSE_BYTES
from notifiers.urls import redact_url

log = logging.getLogger(__name__)

_CLIENT_AUTH_METHODS = ("client_secret_basic", "client_secret_post")


class _TokenError(Exception):
    """Replaces authlib's ``OAuth2Error`` in the client: authlib's refuses descriptions with
    characters outside RFC 6749's set (quotes, newlines...) that real servers do send."""

    def __init__(self, error: str | None = None, description: str | None = None) -> None:
        super().__init__(error)
        self.error = error or "error"
        self.description = description or ""


class _HttpxClientAuth(httpx.Auth):
    """authlib's :class:`ClientAuth` (client_secret_basic/post, none) as an ``httpx.Auth``."""

    requires_request_body = True

    def __init__(self, client_id: str, client_secret: str | None, auth_method: str) -> None:
        self._auth = ClientAuth(client_id, client_secret, auth_method)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        url, headers, body = self._auth.prepare(
            request.method, str(request.url), headers, request.content.decode("utf-8")
        )
        yield httpx.Request(
            request.method, url, headers=headers, content=body, extensions=request.extensions
        )


def token_endpoint_status(response: httpx.Response, url: str, max_retry_after: float) -> None:
    """Raise for token-endpoint answers that are not an OAuth2 success or OAuth2 error."""
    status = response.status_code
    shown = redact_url(url)
    if status in (408, 429) or status >= 500:
        raise TokenEndpointUnavailable(
            f"token endpoint {shown} answered HTTP {status}",
            retry_after=parse_retry_after(header(response.headers, "Retry-After"), max_retry_after),
            http_status=status,
            response_excerpt=excerpt(response.content),
        )
    if truncated(response):
        raise AuthenticationFailed(
            f"token endpoint {shown} answered HTTP {status} with more than "
            f"{MAX_RESPONSE_BYTES // 1024} KiB: no token is that long",
            http_status=status,
        )
    if 300 <= status < 400:
        location = response.headers.get("Location", "")
        raise AuthenticationFailed(
            f"token endpoint {shown} answered HTTP {status}: redirect to "
            f"{redact_url(location) if '://' in location else location} not followed",
            http_status=status,
        )


class OAuth2Tokens:
    """Obtains, caches and invalidates OAuth2 access tokens for notifiers."""

    def __init__(self, settings: Settings, http: httpx.Client, cache: TokenCache) -> None:
        self._settings = settings
        self._http = http
        self._cache = cache
        # Which client authentication method each client accepted, learnt per process.
        self._methods: dict[str, str] = {}

    def _key(self, cfg: OAuth2Config) -> str:
        return self._cache.key(
            "oauth",
            cfg.token_url,
            cfg.client_id,
            cfg.grant.value,
            cfg.username,
            cfg.scope,
            cfg.client_secret,
            cfg.password,
        )

    def token(self, notifier: Notifier) -> CachedToken:
        """A valid access token for ``notifier`` (cached, renewed when due)."""
        cfg = OAuth2Config.from_notifier(notifier)
        key = self._key(cfg)
        return self._cache.obtain(key, lambda _stale: self._fetch(cfg, key))

    def peek(self, notifier: Notifier) -> CachedToken | None:
        """The token for ``notifier`` if this process holds it fresh (no I/O)."""
        return self._cache.peek(self._key(OAuth2Config.from_notifier(notifier)))

    def invalidate(self, notifier: Notifier, access_token: str) -> None:
        """Drop ``access_token`` (the endpoint answered 401 with it), unless already replaced."""
        cfg = OAuth2Config.from_notifier(notifier)
        self._cache.invalidate(self._key(cfg), access_token)

    # -- grants

    def _fetch(self, cfg: OAuth2Config, key: str) -> CachedToken:
        with token_request("oauth2"):
            if cfg.grant is GrantType.CLIENT_CREDENTIALS:
                payload = self._request(
                    cfg,
                    key,
                    lambda c: c.fetch_token(cfg.token_url, grant_type="client_credentials"),
                )
            elif cfg.grant is GrantType.PASSWORD:
                payload = self._password(cfg, key)
            else:
                payload = self._refresh_or_password(cfg, key)
        token = token_from_response(payload, self._cache.now())
        log.info("obtained OAuth2 token from %s (grant %s)", redact_url(cfg.token_url), cfg.grant)
        return token

    def _password(self, cfg: OAuth2Config, key: str) -> Mapping[str, Any]:
        return self._request(
            cfg,
            key,
            lambda c: c.fetch_token(
                cfg.token_url, grant_type="password", username=cfg.username, password=cfg.password
            ),
        )

    def _refresh_or_password(self, cfg: OAuth2Config, key: str) -> Mapping[str, Any]:
        refresh_key = f"{key}:refresh"
        refresh_token = self._cache.store.get(refresh_key)
        payload: Mapping[str, Any] | None = None
        if refresh_token:
            try:
                payload = self._request(
                    cfg, key, lambda c: c.refresh_token(cfg.token_url, refresh_token=refresh_token)
                )
            except AuthenticationFailed as exc:
                # Rejected (expired, revoked): fall back to the password grant, once.
                log.info("refresh token rejected (%s); using the password grant", exc.reason)
                self._cache.store.delete(refresh_key)
        if payload is None:
            payload = self._password(cfg, key)
        new_refresh = payload.get("refresh_token")
        if isinstance(new_refresh, str) and new_refresh:
            lifetime = REFRESH_TOKEN_LIFETIME
            for field in ("refresh_token_expires_in", "refresh_expires_in"):
                if isinstance(payload.get(field), int | float):
                    lifetime = float(payload[field])
            self._cache.put(refresh_key, new_refresh, lifetime)
        return payload

    # -- one exchange with the token endpoint

    def _client(self, cfg: OAuth2Config, method: str) -> Any:
        client = OAuth2Client(
            session=self._http,
            client_id=cfg.client_id,
            client_secret=cfg.client_secret,
            token_endpoint_auth_method=method,
            scope=cfg.scope,
        )
        # Instance overrides of authlib's extension points (see the classes' docstrings).
        client.client_auth_class = _HttpxClientAuth
        client.oauth_error_class = _TokenError

        def screen(response: httpx.Response) -> httpx.Response:
            token_endpoint_status(response, cfg.token_url, self._settings.max_retry_after)
            return response

        client.register_compliance_hook("access_token_response", screen)
        client.register_compliance_hook("refresh_token_response", screen)
        return client

    def _request(
        self, cfg: OAuth2Config, key: str, call: Callable[[Any], Mapping[str, Any]]
    ) -> Mapping[str, Any]:
        if cfg.client_secret is None:
            methods: tuple[str, ...] = ("none",)
        else:
            # RFC 6749 servers must accept client_secret_basic; many ITSM servers accept only
            # client_secret_post. Try the method that worked last, then the other one.
            learnt = self._methods.get(key, _CLIENT_AUTH_METHODS[0])
            methods = (learnt, *(m for m in _CLIENT_AUTH_METHODS if m != learnt))
        shown = redact_url(cfg.token_url)
        for attempt, method in enumerate(methods, start=1):
            try:
                payload = call(self._client(cfg, method))
            except _TokenError as exc:
                if exc.error == "invalid_client" and attempt < len(methods):
                    continue
                detail = f" ({exc.description})" if exc.description else ""
                raise AuthenticationFailed(
                    f"token endpoint {shown} refused the credentials: {exc.error}{detail}"
                ) from None
            except httpx.HTTPStatusError as exc:  # a 4xx that is not an OAuth2 error
                raise AuthenticationFailed(
                    f"token endpoint {shown} answered HTTP {exc.response.status_code}",
                    http_status=exc.response.status_code,
                    response_excerpt=excerpt(exc.response.content),
                ) from None
            except httpx.TimeoutException:
                raise TokenEndpointUnavailable(f"token endpoint {shown} timed out") from None
            except httpx.TransportError as exc:
                raise TokenEndpointUnavailable(
                    f"token endpoint {shown} unreachable: {exc}"
                ) from None
            except UnicodeError:
                # HTTP Basic client authentication carries latin-1 only.
                raise NotifierMisconfigured(
                    "notifier.apiKey or notifier.apiSecret has characters that cannot be sent"
                ) from None
            except ValueError:
                # authlib: a 2xx whose body is not a JSON object. Never echo it: it may be a
                # token in some other format.
                raise AuthenticationFailed(
                    f"token endpoint {shown} answered without a JSON token"
                ) from None
            self._methods[key] = method
            return dict(payload)
        raise AssertionError("unreachable: the last method raises or returns")
