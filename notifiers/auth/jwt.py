"""OpsRamp's JWT auth: a token from ``tokenURL``, sent in ``resourceAuthHeaders``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from integrations.config import Settings
from integrations.errors import (
    AuthenticationFailed,
    NotifierMisconfigured,
    TokenEndpointUnavailable,
)
from integrations.metrics import token_request
from integrations.models import Notifier
from notifiers.auth.cache import TokenCache
from notifiers.auth.config import misconfigured
from notifiers.auth.oauth2 import token_endpoint_status
from notifiers.auth.tokens import DEFAULT_JWT_LIFETIME, CachedToken, jwt_expiry
from notifiers.capture import MISSING, as_text, resolve_path
from notifiers.outcome import excerpt
from notifiers.urls import redact_url, resolve_url


class JWTTokens:
    """OpsRamp's JWT auth: POST ``tokenPayload`` to ``tokenURL``, read the token at
    ``tokensPath``, send ``resourceAuthHeaders`` with ``$jwtToken`` substituted.

    Without ``tokensPath`` the token is looked for at ``token``, ``access_token``, ``jwt``,
    ``id_token``, or is the whole body when that is not JSON. Its lifetime is the JWT's ``exp``
    claim, else ``expires_in``, else :data:`DEFAULT_JWT_LIFETIME`.
    """

    DEFAULT_PATHS = ("token", "access_token", "jwt", "id_token")

    def __init__(self, settings: Settings, http: httpx.Client, cache: TokenCache) -> None:
        self._settings = settings
        self._http = http
        self._cache = cache

    def _url(self, notifier: Notifier) -> str:
        if not notifier.tokenURL:
            raise misconfigured(["tokenURL"], "JWT")
        try:
            return resolve_url(notifier.baseURI, notifier.tokenURL)
        except NotifierMisconfigured as exc:
            raise NotifierMisconfigured(f"notifier.tokenURL: {exc.reason}") from None

    def _key(self, notifier: Notifier, url: str) -> str:
        headers = json.dumps([[h.key, h.value] for h in notifier.tokenHeaders or ()])
        return self._cache.key("jwt", url, notifier.tokenPayload, token_path(notifier), headers)

    def token(self, notifier: Notifier) -> CachedToken:
        """A valid JWT for ``notifier`` (cached, renewed when due)."""
        url = self._url(notifier)

        def fetch(_stale: object) -> CachedToken:
            with token_request("jwt"):
                return self._fetch(notifier, url)

        return self._cache.obtain(self._key(notifier, url), fetch)

    def peek(self, notifier: Notifier) -> CachedToken | None:
        """The JWT for ``notifier`` if this process holds it fresh (no I/O)."""
        return self._cache.peek(self._key(notifier, self._url(notifier)))

    def invalidate(self, notifier: Notifier, access_token: str) -> None:
        """Drop ``access_token`` after a 401, unless already replaced."""
        url = self._url(notifier)
        self._cache.invalidate(self._key(notifier, url), access_token)

    def _fetch(self, notifier: Notifier, url: str) -> CachedToken:
        body = notifier.tokenPayload or ""
        try:
            json.loads(body)
            content_type = "application/json"
        except (ValueError, RecursionError):
            content_type = "application/x-www-form-urlencoded" if "=" in body else "text/plain"
        shown = redact_url(url)
        try:
            headers = {"Content-Type": content_type, "Accept": "application/json"}
            # OpsRamp's tokenHeaders: set by the tenant, so they win over the defaults.
            headers.update({h.key: h.value for h in notifier.tokenHeaders or ()})
            response = self._http.post(url, content=body.encode("utf-8"), headers=headers)
        except httpx.TimeoutException:
            raise TokenEndpointUnavailable(f"token endpoint {shown} timed out") from None
        except httpx.TransportError as exc:
            raise TokenEndpointUnavailable(f"token endpoint {shown} unreachable: {exc}") from None
        token_endpoint_status(response, url, self._settings.max_retry_after)
        if response.status_code >= 400:
            raise AuthenticationFailed(
                f"token endpoint {shown} answered HTTP {response.status_code}",
                http_status=response.status_code,
                response_excerpt=excerpt(response.content),
            )
        return self._parse(notifier, response, shown)

    def _parse(self, notifier: Notifier, response: httpx.Response, shown: str) -> CachedToken:
        try:
            data: Any = response.json()
        except (ValueError, RecursionError):  # not JSON, or hostile nesting
            data = MISSING
        token: str | None = None
        path = token_path(notifier)
        paths = (path,) if path else self.DEFAULT_PATHS
        if data is not MISSING:
            for path in paths:
                value = resolve_path(data, path.lstrip("$"))
                if value is not MISSING and value is not None:
                    token = as_text(value)
                    break
        elif not path:
            text = response.text.strip()
            token = text if text and "\n" not in text else None
        if not token:
            where = path or " / ".join(self.DEFAULT_PATHS)
            raise AuthenticationFailed(
                f"token endpoint {shown} answered without a token at {where}"
            )
        now = self._cache.now()
        exp = jwt_expiry(token)
        if exp is not None:
            lifetime = exp - now
        elif isinstance(data, Mapping) and isinstance(data.get("expires_in"), int | float):
            lifetime = float(data["expires_in"])
        else:
            lifetime = DEFAULT_JWT_LIFETIME
        return CachedToken.issued(token, lifetime, now)


def token_path(notifier: Notifier) -> str | None:
    """Where the token is in the token endpoint's answer: ``tokensPath`` as a path, or the
    ``value`` of the first entry of OpsRamp's ``[{key, value}]`` form."""
    found = notifier.tokensPath
    if isinstance(found, list):
        return found[0].value if found else None
    return found


def token_name(notifier: Notifier) -> str | None:
    """The name OpsRamp's ``tokensPath`` entry gives the token (``$<name>`` in
    ``resourceAuthHeaders``, besides ``$jwtToken``)."""
    found = notifier.tokensPath
    return found[0].key if isinstance(found, list) and found else None
