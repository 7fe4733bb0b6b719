"""The async transport: httpx's client API over aiohttp's connection pool, SSRF-guarded.

Measured by ``bench/transport.py`` (N=2,000 at concurrency 100 against a 50 ms sink),
httpx's own async pool managed about 95 requests/s at 10 ms of CPU each; the same client on
an aiohttp transport about 820/s at 1.2 ms. So deliveries made concurrently go through
:class:`GuardedAiohttpTransport`. It is Herald's own rather than ``httpx-aiohttp``'s (which it
was measured against) because that one merges repeated headers into one, keeps aiohttp's
cookie jar (a cookie set by one tenant's endpoint would ride along to the next) and reports
a refused connection as a connect timeout.

Per request it does as little as it can (measured against a bare ``aiohttp.ClientSession``
by ``bench/transport.py``): cached timeouts and URLs, aiohttp's auto-header pass skipped, and
a body that arrived with the head handed to httpx already read.

The guard stays at connect time: :class:`GuardedConnector` resolves every host itself (IP
literals in any spelling the OS accepts included), checks *every* address with
:func:`notifiers.safety.checked_addresses` and hands aiohttp only those, so aiohttp connects
to nothing unchecked. Redirects are never followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator, Iterable, Sequence
from functools import lru_cache
from typing import Any, NoReturn

import aiohttp
import httpcore
import httpx
from aiohttp import hdrs
from aiohttp.abc import ResolveResult
from multidict import CIMultiDict, istr
from yarl import URL

from notifiers.build import header_list
from notifiers.response import MAX_RESPONSE_BYTES
from notifiers.safety import (
    Network,
    Resolver,
    check_address,
    checked_addresses,
    default_ssl_context,
    refusal,
    system_resolver,
)

#: Total connections per process, and per host: one slow endpoint cannot take every slot.
ASYNC_LIMITS = httpx.Limits(max_connections=512, max_keepalive_connections=512)
PER_HOST_LIMIT = 100
_CHUNK = 64 * 1024
#: Every response's extensions (httpx copies them into the response: sharing is safe).
_HTTP11 = {"http_version": b"HTTP/1.1"}


class GuardedConnector(aiohttp.TCPConnector):
    """A ``TCPConnector`` whose every resolution is checked by the SSRF guard."""

    def __init__(
        self,
        allowed_networks: Iterable[Network] = (),
        *,
        resolver: Resolver = system_resolver,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.allowed_networks = tuple(allowed_networks)
        self._guard_resolver = resolver

    async def _checked(self, host: str, port: int) -> list[str]:
        try:
            ip = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            # A name, or a legacy IPv4 spelling ("127.1"): resolve as the sync path does,
            # off the event loop (getaddrinfo blocks).
            return await asyncio.get_running_loop().run_in_executor(
                None, checked_addresses, host, port, self._guard_resolver, self.allowed_networks
            )
        reason = check_address(ip, self.allowed_networks)
        if reason is not None:
            raise refusal(str(ip), reason, host)
        return [host]

    # aiohttp's one resolution point for every new connection (names and IP literals alike);
    # overriding it, rather than passing a resolver, also covers literals, which aiohttp would
    # otherwise connect to without asking the resolver.
    async def _resolve_host(
        self, host: str, port: int, traces: Sequence[Any] | None = None
    ) -> list[ResolveResult]:
        """Resolve and check ``host``; raise :class:`~integrations.errors.UnsafeURL`."""
        return [
            ResolveResult(
                hostname=host,
                host=ip,
                port=port,
                family=socket.AF_INET6 if ":" in ip else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for ip in await self._checked(host, port)
        ]


@lru_cache(maxsize=4096)
def _yarl(url: str) -> URL:
    # aiohttp parses the URL string of every request; a process has few distinct ones.
    # Immutable, so shared; bounded, evicting the least recently used.
    return URL(url)


def _httpx_error(exc: BaseException) -> Exception | None:
    """The httpx exception an aiohttp (or guard) failure stands for, as the sync path raises
    it, so :func:`notifiers.outcome.error_for_exception` classifies both alike."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpcore.ConnectError | aiohttp.ClientConnectorError):
        return httpx.ConnectError(text)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(text)
    if isinstance(exc, asyncio.TimeoutError):  # SocketTimeoutError and other read waits
        return httpx.ReadTimeout(text)
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.InvalidURL(text)
    if isinstance(exc, ValueError):  # a header value aiohttp refuses to send (CR/LF...)
        return httpx.LocalProtocolError(text)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError(text)
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientError | OSError):
        return httpx.ReadError(text)
    return None


def _raise_mapped(exc: Exception) -> NoReturn:
    """Raise the httpx error ``exc`` stands for, or ``exc`` itself (UnsafeURL and anything
    Herald raised on purpose pass as they are). A function, not a context manager: this is on
    every request's path, and a plain ``try`` costs nothing until something fails."""
    mapped = _httpx_error(exc)
    if mapped is None:
        raise exc
    raise mapped from exc


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        read = self._response.content.read
        try:
            while chunk := await read(_CHUNK):
                yield chunk
        except Exception as exc:
            _raise_mapped(exc)

    async def aclose(self) -> None:
        # Back to the pool when read to the end; closed otherwise (aiohttp decides).
        self._response.release()


#: Headers aiohttp would add by itself. Herald sets these (User-Agent, Accept and
#: Accept-Encoding: httpx's defaults, or the event's) or, like Content-Type on an empty body,
#: on purpose not.
_SKIP_AUTO = ("Accept", "Accept-Encoding", "Content-Type", "User-Agent")
_SKIP_NAMES = frozenset(istr(name) for name in _SKIP_AUTO)
_SKIPPED: CIMultiDict[None] = CIMultiDict((name, None) for name in sorted(_SKIP_NAMES))


class _Request(aiohttp.ClientRequest):
    # aiohttp sends "Content-Length: 0" on a body-less DELETE; Herald sends no body at all
    # there, as the sync path does (GET_METHODS only decides that default).
    GET_METHODS = aiohttp.ClientRequest.GET_METHODS | {"DELETE"}

    def update_auto_headers(self, skip_auto_headers: Iterable[str] | None) -> None:
        """Add aiohttp's default headers, unless (Herald's session) every one is skipped."""
        if skip_auto_headers is None or not _SKIP_NAMES.issubset(skip_auto_headers):
            super().update_auto_headers(skip_auto_headers)
            return
        # Nothing to add, then: aiohttp would copy every header and sort the names to find
        # that out, per request (a few percent of a delivery). Read-only, so shared.
        self._skip_auto_headers = _SKIPPED


class GuardedAiohttpTransport(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` on one aiohttp session with a :class:`GuardedConnector`.

    Create it anywhere; the session is made on the first request, inside the running loop.
    Cookies are never stored (``DummyCookieJar``), the environment's proxies are ignored.
    """

    def __init__(
        self,
        allowed_networks: Iterable[Network] = (),
        *,
        limits: httpx.Limits = ASYNC_LIMITS,
        per_host: int = PER_HOST_LIMIT,
        resolver: Resolver = system_resolver,
    ) -> None:
        self._allowed = tuple(allowed_networks)
        self._limits = limits
        self._per_host = per_host
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    def _new_session(self) -> aiohttp.ClientSession:
        connector = GuardedConnector(
            self._allowed,
            resolver=self._resolver,
            ssl=default_ssl_context(),
            limit=self._limits.max_connections or 0,
            limit_per_host=self._per_host,
            keepalive_timeout=self._limits.keepalive_expiry,
        )
        return aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            request_class=_Request,
            trust_env=False,
            auto_decompress=False,  # httpx decodes Content-Encoding itself
            skip_auto_headers=_SKIP_AUTO,
        )

    def _timeout(self, timeout: dict[str, float | None]) -> aiohttp.ClientTimeout:
        # One per distinct setting (a process has one or two), not one per request.
        key = (timeout.get("pool"), timeout.get("connect"), timeout.get("read"))
        made = self._timeouts.get(key)
        if made is None:
            made = self._timeouts[key] = aiohttp.ClientTimeout(
                connect=key[0], sock_connect=key[1], sock_read=key[2]
            )
        return made

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through aiohttp; the answer streams (see :class:`_Body`) unless
        it had all come already."""
        session = self._session
        if session is None:
            session = self._session = self._new_session()
        try:
            response = await session.request(
                request.method,
                _yarl(str(request.url)),
                # Pairs, not a mapping: a header the event repeats goes out repeated.
                headers=header_list(request.headers),
                data=request.content or None,
                allow_redirects=False,
                timeout=self._timeout(request.extensions.get("timeout", {})),
            )
            content = response.content
            # The whole body came with the head (the common case: a short answer), so there
            # is nothing to wait for: hand it over read, and spare each delivery the streaming
            # machinery. Encoded bodies stream, so the cap bounds what they decode to.
            whole = content.is_eof() and hdrs.CONTENT_ENCODING not in response.headers
            body = content.read_nowait()[:MAX_RESPONSE_BYTES] if whole else b""
        except Exception as exc:
            _raise_mapped(exc)
        if not whole:
            return httpx.Response(
                status_code=response.status,
                headers=response.raw_headers,
                stream=_Body(response),
                request=request,
                extensions=_HTTP11,
            )
        response.release()
        answer = httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=httpx.ByteStream(body),
            request=request,
            extensions=_HTTP11,
        )
        answer.read()
        return answer

    async def aclose(self) -> None:
        """Close the session and its pooled connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None
