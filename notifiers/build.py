"""The ``httpx.Request`` of one delivery, built cheaply (pure but for its URL cache).

``httpx.Client.build_request`` re-parses the URL, merges the client's headers through
``httpx.Headers`` three times and probes the body's type on every call: about a fifth of a
delivery's CPU in a profile of the worker. :class:`RequestBuilder` makes the same request
(the same URL, the same header pairs in the same order, the same body and timeout) from a URL
parsed once per URL string and the client's default headers read once.

Anything unusual (a relative URL, one without a host) goes to ``build_request`` itself, so the
two never differ: ``tests/notifiers/test_build.py`` compares them.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx

#: Methods for which httpx sends ``Content-Length: 0`` when there is no body.
_ENTITY_METHODS = frozenset({"POST", "PUT", "PATCH"})


@lru_cache(maxsize=4096)
def parse_url(url: str) -> httpx.URL:
    """``httpx.URL(url)``, parsed once per URL string (``httpx.URL`` is immutable).

    Bounded, evicting the least recently used: a fleet's endpoints are far fewer than 4,096
    per process, and a burst of one-off URLs only costs re-parsing. Raises ``InvalidURL``.
    """
    return httpx.URL(url)


class RequestBuilder:
    """Builds requests as ``client.build_request`` would, for one client's configuration."""

    def __init__(self, client: httpx.Client | httpx.AsyncClient) -> None:
        self._client = client
        defaults = client.headers
        # (name, lower-case name, value): what the client adds unless the request sets it.
        self._defaults = [(k, k.lower(), v) for k, v in defaults.raw]
        self._timeout = client.timeout.as_dict()

    def build(
        self,
        method: str,
        url: str,
        pairs: Iterable[tuple[bytes, bytes]],
        payload: bytes | None,
        last: Iterable[tuple[bytes, bytes]] = (),
    ) -> httpx.Request:
        """The request ``client.build_request(method, url, headers=pairs, content=payload)``
        makes, with ``pairs`` already encoded (:func:`notifiers.request.encode_headers`),
        then ``last`` appended as ``request.headers[name] = value`` would append them (names
        in neither ``pairs`` nor the client's defaults: the auth headers).

        Raises ``InvalidURL`` for a URL httpx cannot parse, as ``build_request`` does.
        """
        parsed = parse_url(url)
        if parsed.is_relative_url or not parsed.host:
            request = self._client.build_request(method, url, headers=list(pairs), content=payload)
            for name, value in last:
                request.headers[name.decode("utf-8")] = value.decode("utf-8")
            return request
        own = list(pairs)
        # The client's defaults give way to a request header of the same name (all of its
        # occurrences), as httpx.Headers.update does; then, as Request._prepare does, Host
        # (and an empty entity's Content-Length) first, a body's Content-Length last.
        names = {name.lower() for name, _ in own}
        headers = [(b"Host", parsed.netloc)]
        method = method.upper()
        if not payload and method in _ENTITY_METHODS:
            headers.append((b"Content-Length", b"0"))
        headers.extend(
            (name, value) for name, lowered, value in self._defaults if lowered not in names
        )
        headers.extend(own)
        if payload:
            headers.append((b"Content-Length", str(len(payload)).encode("ascii")))
        headers.extend(last)
        request = httpx.Request(
            method,
            parsed,
            headers=headers,
            stream=httpx.ByteStream(payload or b""),
            extensions={"timeout": self._timeout},
        )
        # Every value was encoded from str as UTF-8 (or is ASCII): what httpx.Headers would
        # work out by trying each header, per request.
        request.headers.encoding = "utf-8"
        request.read()
        return request


def header_items(headers: httpx.Headers) -> dict[str, str]:
    """``dict(headers.items())``: lower-case names, a repeated header's values joined with
    ``", "`` (pure). httpx's own re-reads the encoding property twice per header."""
    encoding = headers.encoding
    items: dict[str, str] = {}
    for key, value in headers.raw:
        name = key.lower().decode(encoding)
        text = value.decode(encoding)
        items[name] = f"{items[name]}, {text}" if name in items else text
    return items


def header_list(headers: httpx.Headers) -> list[tuple[str, str]]:
    """``headers.multi_items()``: every pair, lower-case names, repeats kept (pure)."""
    encoding = headers.encoding
    return [(key.lower().decode(encoding), value.decode(encoding)) for key, value in headers.raw]


class _NoCookies(httpx.Cookies):
    """A cookie store that stores nothing, without the work of looking.

    Deliveries of different tenants share a client: a cookie set by one endpoint must never
    ride along on another notifier's request. httpx would still wrap every response in
    ``urllib`` request/response adapters for the jar to refuse it (a tenth of a delivery's
    CPU); this store does not ask.
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        """Keep nothing."""


_NEVER = _NoCookies(CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])))


class _Cookieless:
    """A client's ``cookies``, always the empty jar (placed before the httpx client class)."""

    @property
    def cookies(self) -> httpx.Cookies:
        """Always empty."""
        return _NEVER

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        pass  # nothing is kept, whatever is offered


class CookielessClient(_Cookieless, httpx.Client):
    """An ``httpx.Client`` that never keeps a cookie (see :class:`_NoCookies`)."""


class CookielessAsyncClient(_Cookieless, httpx.AsyncClient):
    """An ``httpx.AsyncClient`` that never keeps a cookie (see :class:`_NoCookies`)."""
