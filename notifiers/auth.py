"""Authentication of outbound requests: NONE, BASIC, OAUTH2 (three grants) and JWT.

OAuth2 token requests are built and parsed by authlib's protocol client
(:class:`authlib.oauth2.client.OAuth2Client`: ``fetch_token`` / ``refresh_token``), given our
own ``httpx.Client`` as its session, so the token endpoint goes through the same SSRF guard,
timeouts and no-redirect policy as deliveries. authlib's httpx integration is not used: it is
moving to the ``httpx2`` package and warns on every import with plain httpx.

Tokens live in a :class:`TokenCache` (Redis when given, shared by every worker process; else
in-process). A token is renewed shortly before it expires (10 % of its lifetime, at most 30 s)
under a short lock, so many concurrent deliveries cause one token request; while one process
renews a still-valid token the others keep using the old one instead of waiting.

Cache keys are an HMAC (keyed by ``HERALD_SECRET_KEY``) of the token URL, client id, grant,
user *and* the secrets: the secrets never appear in a key, and two notifiers that share a
client id but not its secret never share a token (otherwise one tenant could borrow another
tenant's token by copying a public client id). Token values are never logged.

Default grant when ``grantType`` is missing: PASSWORD when ``userName`` and ``password`` are
set (that is what the seed's samples carry), else CLIENT_CREDENTIALS.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import redis
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.client import OAuth2Client

from integrations.config import Settings
from integrations.enums import AuthType, GrantType
from integrations.errors import (
    AuthenticationFailed,
    NotifierMisconfigured,
    RetryableError,
    TokenEndpointUnavailable,
)
from integrations.models import Notifier
from notifiers.capture import MISSING, as_text, resolve_path
from notifiers.outcome import excerpt, header, parse_retry_after
from notifiers.urls import redact_url, resolve_url

log = logging.getLogger(__name__)

#: Lifetime assumed for a token whose response states none; a 401 invalidates it earlier.
DEFAULT_TOKEN_LIFETIME = 3600.0
#: Lifetime assumed for a JWT with neither an ``exp`` claim nor ``expires_in``.
DEFAULT_JWT_LIFETIME = 300.0
#: How long a refresh token is kept when the server states no lifetime for it.
REFRESH_TOKEN_LIFETIME = 30 * 86400.0
MAX_RENEW_MARGIN = 30.0
RENEW_FRACTION = 0.1
_CLIENT_AUTH_METHODS = ("client_secret_basic", "client_secret_post")


# --------------------------------------------------------------------------- configuration


def effective_grant(notifier: Notifier) -> GrantType:
    """The OAuth2 grant to use: ``grantType``, or the documented default when it is missing."""
    if notifier.grantType is not None:
        return notifier.grantType
    if notifier.userName and notifier.password:
        return GrantType.PASSWORD
    return GrantType.CLIENT_CREDENTIALS


def _missing(notifier: Notifier, fields: tuple[str, ...]) -> list[str]:
    return [f for f in fields if not getattr(notifier, f)]


def _misconfigured(missing: list[str], what: str) -> NotifierMisconfigured:
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
        missing = _missing(notifier, needed)
        if missing:
            what = f"OAUTH2 grant {grant.value}"
            if notifier.grantType is None:
                what += " (defaulted: grantType unset)"
            raise _misconfigured(missing, what)
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


# --------------------------------------------------------------------------------- tokens


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


# ---------------------------------------------------------------------------------- cache


class _Lock(Protocol):
    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...
    def release(self) -> None: ...


class _RedisLock:
    def __init__(self, lock: Any) -> None:
        self._lock = lock

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        wait = None if timeout < 0 else timeout
        return bool(self._lock.acquire(blocking=blocking, blocking_timeout=wait))

    def release(self) -> None:
        # LockError: it expired while we held it; another process may already own it.
        with suppress(redis.exceptions.LockError):
            self._lock.release()


class TokenCache:
    """Where tokens are kept: Redis (shared by all workers) or, without Redis, this process.

    Redis is trusted storage, so token values are stored as they are; keys never contain a
    secret. Redis failures surface as :class:`RetryableError` (``redis_unavailable``).
    """

    def __init__(
        self,
        redis_client: redis.Redis | None,
        prefix: str,
        *,
        key_secret: str | None = None,
        lock_timeout: float = 30.0,
    ) -> None:
        self._redis = redis_client
        self._prefix = prefix
        self._key_secret = (key_secret or "herald-token-cache").encode("utf-8")
        self.lock_timeout = lock_timeout
        self._memory: dict[str, tuple[str, float]] = {}
        self._memory_locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def key(self, kind: str, *parts: str | None) -> str:
        """``{prefix}:{kind}:{hmac}`` over ``parts`` (which may include secrets)."""
        material = "\x00".join(p or "" for p in parts).encode("utf-8")
        digest = hmac.new(self._key_secret, material, hashlib.sha256).hexdigest()
        return f"{self._prefix}:{kind}:{digest}"

    @contextmanager
    def _redis_errors(self) -> Iterator[None]:
        try:
            yield
        except redis.RedisError as exc:
            raise RetryableError(
                f"token cache (Redis) unavailable: {type(exc).__name__}",
                error_class="redis_unavailable",
            ) from None

    def get(self, key: str) -> str | None:
        """The stored text at ``key`` (``None`` if absent or expired)."""
        if self._redis is None:
            with self._guard:
                item = self._memory.get(key)
                if item is None or item[1] <= time.time():
                    self._memory.pop(key, None)
                    return None
                return item[0]
        with self._redis_errors():
            raw = self._redis.get(key)
        if raw is None:
            return None
        return raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)

    def set(self, key: str, value: str, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds (nothing is stored for ``ttl <= 0``)."""
        if ttl <= 0:
            self.delete(key)
            return
        if self._redis is None:
            with self._guard:
                self._memory[key] = (value, time.time() + ttl)
            return
        with self._redis_errors():
            self._redis.set(key, value, px=max(1, int(ttl * 1000)))

    def delete(self, key: str) -> None:
        """Forget ``key``."""
        if self._redis is None:
            with self._guard:
                self._memory.pop(key, None)
            return
        with self._redis_errors():
            self._redis.delete(key)

    def delete_if(self, key: str, predicate: Callable[[str], bool]) -> None:
        """Delete ``key`` only if its current value satisfies ``predicate`` (atomically).

        Used on a 401: drop the token that failed, never a newer one another worker stored.
        """
        if self._redis is None:
            with self._guard:
                item = self._memory.get(key)
                if item is not None and predicate(item[0]):
                    del self._memory[key]
            return
        with self._redis_errors(), self._redis.pipeline() as pipe:
            try:
                pipe.watch(key)  # type: ignore[no-untyped-call]
                raw = pipe.get(key)
                text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
                if text is not None and predicate(str(text)):
                    pipe.multi()
                    pipe.delete(key)
                    pipe.execute()
            except redis.WatchError:
                pass  # changed under us: someone stored a newer token, keep it

    def lock(self, key: str) -> _Lock:
        """A short lock on ``key`` shared by every process using this cache."""
        if self._redis is None:
            with self._guard:
                return self._memory_locks.setdefault(key, threading.Lock())
        return _RedisLock(self._redis.lock(f"{key}:lock", timeout=self.lock_timeout, sleep=0.02))

    def obtain(self, key: str, fetch: Callable[[CachedToken | None], CachedToken]) -> CachedToken:
        """The cached token at ``key``, renewed through ``fetch`` under the lock when due.

        ``fetch`` gets the stale token (or ``None``) and returns a new one.
        """
        now = time.time()
        current = CachedToken.loads(self.get(key) or "")
        if current is not None and current.fresh(now):
            return current
        lock = self.lock(key)
        with self._redis_errors():
            if current is not None and current.usable(now):
                # Someone else renewing? Keep using the still-valid token rather than wait.
                if not lock.acquire(blocking=False):
                    return current
                acquired = True
            else:
                acquired = lock.acquire(blocking=True, timeout=self.lock_timeout)
        if not acquired:
            # The holder is stuck or died; fetching without the lock beats failing.
            log.warning("token lock %s not acquired in time; fetching anyway", key)
        try:
            latest = CachedToken.loads(self.get(key) or "")
            if latest is not None and latest.fresh(time.time()):
                return latest
            token = fetch(latest)
            self.set(key, token.dumps(), token.expires_at - time.time())
            return token
        finally:
            if acquired:
                with suppress(redis.RedisError):
                    lock.release()  # if Redis went away, the lock expires on its own


def _holds(access_token: str) -> Callable[[str], bool]:
    """Predicate: the cached record holds ``access_token``."""

    def check(raw: str) -> bool:
        token = CachedToken.loads(raw)
        return token is not None and token.access_token == access_token

    return check


# ------------------------------------------------------------------------ token endpoints


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


def _token_endpoint_status(response: httpx.Response, url: str, max_retry_after: float) -> None:
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

    def invalidate(self, notifier: Notifier, access_token: str) -> None:
        """Drop ``access_token`` (the endpoint answered 401 with it), unless already replaced."""
        cfg = OAuth2Config.from_notifier(notifier)
        self._cache.delete_if(
            self._key(cfg),
            _holds(access_token),
        )

    # -- grants

    def _fetch(self, cfg: OAuth2Config, key: str) -> CachedToken:
        if cfg.grant is GrantType.CLIENT_CREDENTIALS:
            payload = self._request(
                cfg, key, lambda c: c.fetch_token(cfg.token_url, grant_type="client_credentials")
            )
        elif cfg.grant is GrantType.PASSWORD:
            payload = self._password(cfg, key)
        else:
            payload = self._refresh_or_password(cfg, key)
        token = token_from_response(payload, time.time())
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
        refresh_token = self._cache.get(refresh_key)
        payload: Mapping[str, Any] | None = None
        if refresh_token:
            try:
                payload = self._request(
                    cfg, key, lambda c: c.refresh_token(cfg.token_url, refresh_token=refresh_token)
                )
            except AuthenticationFailed as exc:
                # Rejected (expired, revoked): fall back to the password grant, once.
                log.info("refresh token rejected (%s); using the password grant", exc.reason)
                self._cache.delete(refresh_key)
        if payload is None:
            payload = self._password(cfg, key)
        new_refresh = payload.get("refresh_token")
        if isinstance(new_refresh, str) and new_refresh:
            lifetime = REFRESH_TOKEN_LIFETIME
            for field in ("refresh_token_expires_in", "refresh_expires_in"):
                if isinstance(payload.get(field), int | float):
                    lifetime = float(payload[field])
            self._cache.set(refresh_key, new_refresh, lifetime)
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
            _token_endpoint_status(response, cfg.token_url, self._settings.max_retry_after)
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
            raise _misconfigured(["tokenURL"], "JWT")
        try:
            return resolve_url(notifier.baseURI, notifier.tokenURL)
        except NotifierMisconfigured as exc:
            raise NotifierMisconfigured(f"notifier.tokenURL: {exc.reason}") from None

    def _key(self, notifier: Notifier, url: str) -> str:
        return self._cache.key("jwt", url, notifier.tokenPayload, notifier.tokensPath)

    def token(self, notifier: Notifier) -> CachedToken:
        """A valid JWT for ``notifier`` (cached, renewed when due)."""
        url = self._url(notifier)
        return self._cache.obtain(
            self._key(notifier, url), lambda _stale: self._fetch(notifier, url)
        )

    def invalidate(self, notifier: Notifier, access_token: str) -> None:
        """Drop ``access_token`` after a 401, unless already replaced."""
        url = self._url(notifier)
        self._cache.delete_if(
            self._key(notifier, url),
            _holds(access_token),
        )

    def _fetch(self, notifier: Notifier, url: str) -> CachedToken:
        body = notifier.tokenPayload or ""
        try:
            json.loads(body)
            content_type = "application/json"
        except (ValueError, RecursionError):
            content_type = "application/x-www-form-urlencoded" if "=" in body else "text/plain"
        shown = redact_url(url)
        try:
            response = self._http.post(
                url,
                content=body.encode("utf-8"),
                headers={"Content-Type": content_type, "Accept": "application/json"},
            )
        except httpx.TimeoutException:
            raise TokenEndpointUnavailable(f"token endpoint {shown} timed out") from None
        except httpx.TransportError as exc:
            raise TokenEndpointUnavailable(f"token endpoint {shown} unreachable: {exc}") from None
        _token_endpoint_status(response, url, self._settings.max_retry_after)
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
        paths = (notifier.tokensPath,) if notifier.tokensPath else self.DEFAULT_PATHS
        if data is not MISSING:
            for path in paths:
                value = resolve_path(data, path.lstrip("$"))
                if value is not MISSING and value is not None:
                    token = as_text(value)
                    break
        elif not notifier.tokensPath:
            text = response.text.strip()
            token = text if text and "\n" not in text else None
        if not token:
            where = notifier.tokensPath or " / ".join(self.DEFAULT_PATHS)
            raise AuthenticationFailed(
                f"token endpoint {shown} answered without a token at {where}"
            )
        now = time.time()
        exp = jwt_expiry(token)
        if exp is not None:
            lifetime = exp - now
        elif isinstance(data, Mapping) and isinstance(data.get("expires_in"), int | float):
            lifetime = float(data["expires_in"])
        else:
            lifetime = DEFAULT_JWT_LIFETIME
        return CachedToken.issued(token, lifetime, now)


# ------------------------------------------------------------------------------ applying


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
        self, settings: Settings, http: httpx.Client, redis_client: redis.Redis | None = None
    ) -> None:
        # Long enough for one token request to finish, short enough to recover from a crash.
        lock_timeout = settings.connect_timeout + settings.read_timeout + 5.0
        cache = TokenCache(
            redis_client,
            settings.redis_prefix,
            key_secret=settings.secret_key,
            lock_timeout=lock_timeout,
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
            token = self.oauth2.token(notifier)
            return AppliedAuth(
                headers=(("Authorization", f"Bearer {token.access_token}"),),
                token=token.access_token,
                secrets=(token.access_token,),
            )
        token = self.jwt.token(notifier)
        return AppliedAuth(
            headers=jwt_headers(notifier, token.access_token),
            token=token.access_token,
            secrets=(token.access_token,),
        )

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
        raise _misconfigured(missing, "BASIC")
    assert notifier.userName is not None and notifier.password is not None
    credentials = base64.b64encode(f"{notifier.userName}:{notifier.password}".encode()).decode()
    return AppliedAuth(
        headers=(("Authorization", f"Basic {credentials}"),),
        secrets=(credentials, notifier.password) if notifier.password else (credentials,),
    )


def jwt_headers(notifier: Notifier, token: str) -> tuple[tuple[str, str], ...]:
    """``resourceAuthHeaders`` with ``$jwtToken`` substituted; ``Authorization: Bearer`` when
    none are configured (pure)."""
    if not notifier.resourceAuthHeaders:
        return (("Authorization", f"Bearer {token}"),)
    return tuple((h.key, h.value.replace("$jwtToken", token)) for h in notifier.resourceAuthHeaders)
