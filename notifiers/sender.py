"""The entry point the worker calls: send one rendered event to its notifier.

:class:`Sender` owns one ``httpx.Client`` (connection pooling across deliveries, shared by
any number of threads) whose transport is the SSRF-guarded
:class:`~notifiers.safety.GuardedTransport`, and, made lazily inside the caller's event loop,
one ``httpx.AsyncClient`` on :class:`~notifiers.aio.GuardedAiohttpTransport` for many
deliveries in flight at once (:meth:`Sender.send_async`).

Both paths do the same thing and share every decision: the request is built by
:mod:`notifiers.request` (body, Content-Type, ``Idempotency-Key``, Standard Webhooks
signature, SOAP envelope) and :class:`~notifiers.build.RequestBuilder` (what
``build_request`` would make, for a fraction of its cost); NONE and BASIC auth are plain
headers, OAUTH2 and JWT the :class:`~notifiers.auth.NotifierAuth` flow (a 401 is retried
once with a fresh token); redirects are not followed, cookies never kept; and
:mod:`notifiers.response` turns the answer into a :class:`DeliveryResponse` or a
Retryable/Permanent error. Only the waiting differs.

Neither secrets nor tokens are logged; the request headers echoed in
:class:`DeliveryResponse` are redacted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import TypedDict

import httpx
import redis

from integrations.config import Settings
from integrations.enums import AuthType
from integrations.errors import HeraldError, PermanentError
from notifiers.aio import GuardedAiohttpTransport
from notifiers.auth import AppliedAuth, Authenticator, NotifierAuth, auth_header_names
from notifiers.build import (
    CookielessAsyncClient,
    CookielessClient,
    RequestBuilder,
    parse_url,
)
from notifiers.deadline import exchange_deadline
from notifiers.decoding import AsyncBoundedTransport, BoundedTransport, wire_headers
from notifiers.outcome import error_for_exception
from notifiers.request import (
    USER_AGENT,
    OutboundRequest,
    content_type_for,
    encode_headers,
    header_pairs,
    invalid_request,
    payload_of,
)
from notifiers.response import (
    MAX_RESPONSE_BYTES,
    REDACTED,
    BodyLimit,
    DeliveryResponse,
    Exchange,
    delivery_response,
    error_for_exchange,
    redact_headers,
)
from notifiers.safety import GuardedTransport
from notifiers.urls import redact_url

__all__ = [
    "MAX_RESPONSE_BYTES",
    "REDACTED",
    "USER_AGENT",
    "DeliveryResponse",
    "OutboundRequest",
    "Sender",
    "content_type_for",
    "redact_headers",
]

log = logging.getLogger(__name__)

#: Auth types applied as plain headers, with no flow: nothing to renew on a 401.
_FLOWLESS = frozenset({AuthType.NONE, AuthType.BASIC})
#: httpx's do-nothing flow: passing ``auth=None`` would instead send a URL's userinfo as
#: Basic credentials, which the flow path never did.
_NO_FLOW = httpx.Auth()


def _no_cookies() -> CookieJar:
    # Deliveries of different tenants share the client: a cookie set by one endpoint must
    # never ride along on another notifier's request, so no cookie is ever stored.
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


class _ClientOptions(TypedDict):
    """What the sync and async clients share."""

    timeout: httpx.Timeout
    follow_redirects: bool
    trust_env: bool
    headers: dict[str, str]
    cookies: CookieJar


class Sender:
    """Sends :class:`OutboundRequest` s; one per worker process, reused across deliveries.

    :meth:`send` may be called from many threads at once; :meth:`send_async` from one event
    loop (the one that made the async client: the first call's).
    """

    def __init__(
        self,
        settings: Settings,
        redis: redis.Redis | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], float] = time.time,
    ) -> None:
        """``redis`` shares OAuth2/JWT tokens between processes (else they stay in this one);
        ``clock`` times each exchange, ``now`` (epoch seconds) dates tokens."""
        self._settings = settings
        self._clock = clock
        self._client = CookielessClient(
            transport=BoundedTransport(transport or GuardedTransport(settings.allowed_networks)),
            **self._client_options(),
        )
        self._builder = RequestBuilder(self._client)
        self._async_transport = async_transport
        self._aclient: httpx.AsyncClient | None = None
        self._abuilder: RequestBuilder | None = None
        self._aloop: asyncio.AbstractEventLoop | None = None
        self._auth = Authenticator(settings, self._client, redis, now=now)

    def _client_options(self) -> _ClientOptions:
        settings = self._settings
        return {
            "timeout": httpx.Timeout(
                connect=settings.connect_timeout,
                read=settings.read_timeout,
                write=settings.read_timeout,
                pool=settings.connect_timeout,
            ),
            "follow_redirects": False,
            # Proxies from the environment would bypass the SSRF guard (it would only see
            # the proxy's address); Herald talks to endpoints directly.
            "trust_env": False,
            "headers": {"User-Agent": USER_AGENT},
            "cookies": _no_cookies(),
        }

    def close(self) -> None:
        """Close the sync client's pooled connections (the async client: :meth:`aclose`)."""
        self._client.close()

    async def aclose(self) -> None:
        """Close the async client, from the loop that used it."""
        if self._aclient is not None:
            client, self._aclient, self._aloop = self._aclient, None, None
            await client.aclose()

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _async_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._aclient is None:
            transport = self._async_transport or GuardedAiohttpTransport(
                self._settings.allowed_networks
            )
            self._aclient = CookielessAsyncClient(
                transport=AsyncBoundedTransport(transport), **self._client_options()
            )
            self._abuilder = RequestBuilder(self._aclient)
            self._aloop = loop
        elif self._aloop is not loop:
            raise RuntimeError("Sender.send_async called from a second event loop")
        return self._aclient

    # ------------------------------------------------------------------------ sending

    def _build(
        self, builder: RequestBuilder, request: OutboundRequest
    ) -> tuple[httpx.Request, NotifierAuth | None, AppliedAuth]:
        """The httpx request, and its auth: NONE and BASIC are set here (no flow, and
        ``None`` for it); OAUTH2 and JWT are left to the :class:`NotifierAuth` flow returned,
        which holds what it applied after the send."""
        payload = payload_of(request)
        notifier = request.notifier
        pairs = header_pairs(request, payload, auth_header_names(notifier))
        try:
            encoded = encode_headers(pairs)
        except (UnicodeError, ValueError, TypeError) as exc:
            raise invalid_request(exc) from None
        method, url = request.method.value, request.url
        if notifier.authType not in _FLOWLESS:
            outgoing = builder.build(method, url, encoded, payload)
            return outgoing, NotifierAuth(self._auth, notifier), AppliedAuth()
        # Pure for these types, but it may refuse the notifier's configuration: after the
        # headers and the URL, which are checked first as they were when a flow set this.
        parse_url(url)
        applied = self._auth.apply(notifier)
        auth = [(n.encode("utf-8"), v.encode("utf-8")) for n, v in applied.headers]
        return builder.build(method, url, encoded, payload, auth), None, applied

    def _exchange_seconds(self) -> float:
        """The most one whole exchange may take: connect, headers and body (notifiers.deadline).

        Token requests made for it share it.
        """
        return self._settings.connect_timeout + 2 * self._settings.read_timeout

    def _deadline(self, started: float) -> float:
        return started + self._exchange_seconds()

    def _finish(
        self,
        request: OutboundRequest,
        response: httpx.Response,
        body: bytes,
        started: float,
        flow: NotifierAuth | None,
        applied: AppliedAuth,
    ) -> DeliveryResponse:
        """Classify the exchange: the response, or raise its error (pure but for the log)."""
        duration_ms = (self._clock() - started) * 1000
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s %s -> %s in %.0f ms",
                request.method.value,
                redact_url(request.url),
                response.status_code,
                duration_ms,
            )
        if flow is not None:
            applied = flow.applied
        exchange = Exchange(
            response.status_code,
            wire_headers(response),
            body,
            response.request.headers,
            duration_ms,
            renewed=flow is not None and flow.renewed,
        )
        error = error_for_exchange(
            request.notifier.type,
            exchange,
            max_retry_after=self._settings.max_retry_after,
            url=request.url,
        )
        if error is not None:
            raise error
        notifier = request.notifier
        secrets = [
            *applied.secrets,
            *(s for s in (notifier.password, notifier.apiSecret, notifier.signingSecret) if s),
        ]
        return delivery_response(exchange, secrets)

    def send(self, request: OutboundRequest) -> DeliveryResponse:
        """Deliver ``request``; return the 2xx response or raise a RetryableError /
        PermanentError subclass (integrations.errors) saying why not."""
        try:
            outgoing, flow, applied = self._build(self._builder, request)
            started = self._clock()
            with exchange_deadline(time.monotonic() + self._exchange_seconds()):
                response = self._client.send(
                    outgoing, auth=flow or _NO_FLOW, follow_redirects=False, stream=True
                )
                try:
                    limit = BodyLimit(response, self._deadline(started), self._clock)
                    for chunk in response.iter_bytes():
                        if not limit.add(chunk):
                            break
                finally:
                    response.close()
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise _error(exc, request.url) from None
        return self._finish(request, response, limit.body, started, flow, applied)

    async def send_async(self, request: OutboundRequest) -> DeliveryResponse:
        """:meth:`send`, overlapped: the same outcomes, errors and redaction, with many
        requests in flight from one event loop."""
        client = self._async_client()
        assert self._abuilder is not None
        try:
            outgoing, flow, applied = self._build(self._abuilder, request)
            # The deadline's context variable too: a token request made for this exchange
            # runs in a thread (asyncio.to_thread copies the context), which the timeout
            # below cannot interrupt.
            with exchange_deadline(time.monotonic() + self._exchange_seconds()):
                return await self._send_async_within(client, request, outgoing, flow, applied)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise _error(exc, request.url) from None

    async def _send_async_within(
        self,
        client: httpx.AsyncClient,
        request: OutboundRequest,
        outgoing: httpx.Request,
        flow: NotifierAuth | None,
        applied: AppliedAuth,
    ) -> DeliveryResponse:
        started = self._clock()
        try:
            async with asyncio.timeout(self._exchange_seconds()):
                response = await client.send(
                    outgoing, auth=flow or _NO_FLOW, follow_redirects=False, stream=True
                )
                if response.is_closed:
                    # The transport had the whole body already (see GuardedAiohttpTransport).
                    body = response.content[:MAX_RESPONSE_BYTES]
                else:
                    try:
                        limit = BodyLimit(response, self._deadline(started), self._clock)
                        async for chunk in response.aiter_bytes():
                            if not limit.add(chunk):
                                break
                    finally:
                        await response.aclose()
                    body = limit.body
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise _error(exc, request.url) from None
        except TimeoutError:
            late = httpx.ReadTimeout(
                f"the exchange took more than {self._exchange_seconds():g} s", request=outgoing
            )
            raise _error(late, request.url) from None
        return self._finish(request, response, body, started, flow, applied)


def _error(exc: httpx.HTTPError | httpx.InvalidURL, url: str) -> HeraldError:
    if isinstance(exc, httpx.InvalidURL):
        return PermanentError(f"invalid URL {redact_url(url)}: {exc}", error_class="invalid_url")
    return error_for_exception(exc, url)
