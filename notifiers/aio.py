"""The async transport: httpx's client API over aiohttp's connection pool, SSRF-guarded.

Measured by ``bench/transport.py`` (N=2,000 at concurrency 100 against a 50 ms sink),
httpx's own async pool managed about 95 requests/s at 10 ms of CPU each; the same client on
an aiohttp transport about 820/s at 1.2 ms. So deliveries made concurrently go through
:class:`GuardedAiohttpTransport`. It is Herald's own rather than ``httpx-aiohttp``'s (which it
was measured against) because that one merges repeated headers into one, keeps aiohttp's
cookie jar (a cookie set by one tenant's endpoint would ride along to the next) and reports
a refused connection as a connect timeout.

The guard stays at connect time: :class:`GuardedConnector` resolves every host itself (IP
literals in any spelling the OS accepts included), checks *every* address with
:func:`notifiers.safety.checked_addresses` and hands aiohttp only those, so aiohttp connects
to nothing unchecked. Redirects are never followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import aiohttp
import httpcore
import httpx
from aiohttp.abc import ResolveResult

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


@contextmanager
def _mapped() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        mapped = _httpx_error(exc)
        if mapped is None:
            raise  # UnsafeURL and anything Herald raised on purpose pass as they are
        raise mapped from exc


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped():
            async for chunk in self._response.content.iter_chunked(_CHUNK):
                yield chunk

    async def aclose(self) -> None:
        # Back to the pool when read to the end; closed otherwise (aiohttp decides).
        self._response.release()


class _Request(aiohttp.ClientRequest):
    # aiohttp sends "Content-Length: 0" on a body-less DELETE; Herald sends no body at all
    # there, as the sync path does (GET_METHODS only decides that default).
    GET_METHODS = aiohttp.ClientRequest.GET_METHODS | {"DELETE"}


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
            # Herald sets these itself (or, like Content-Type on an empty body, on purpose not).
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through aiohttp; the answer streams (see :class:`_Body`)."""
        if self._session is None:
            self._session = self._new_session()
        timeout = request.extensions.get("timeout", {})
        with _mapped():
            response = await self._session.request(
                request.method,
                str(request.url),
                # Pairs, not a mapping: a header the event repeats goes out repeated.
                headers=request.headers.multi_items(),
                data=request.content or None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    connect=timeout.get("pool"),
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
            )
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Body(response),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        """Close the session and its pooled connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None
