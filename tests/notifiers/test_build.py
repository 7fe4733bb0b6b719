"""RequestBuilder makes exactly the request ``httpx.Client.build_request`` makes; the header
readers answer exactly what ``httpx.Headers`` answers; the clients keep no cookie."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from notifiers.build import (
    CookielessAsyncClient,
    CookielessClient,
    RequestBuilder,
    header_items,
    header_list,
    parse_url,
)

_DEFAULTS = {"User-Agent": "Herald/0.1"}
_TIMEOUT = httpx.Timeout(connect=1.0, read=2.0, write=2.0, pool=1.0)

_HEADERS = [
    [],
    [(b"X-Custom", b"one"), (b"x-custom", b"two")],
    [(b"Accept", b"application/json"), (b"User-Agent", b"Custom/1")],
    [(b"Content-Type", b"text/plain; charset=utf-8"), (b"X-Name", "Grüße".encode())],
    [(b"accept-encoding", b"identity"), (b"ACCEPT", b"a"), (b"Accept", b"b")],
]
_URLS = [
    "http://127.0.0.1:8080/hook?x=1&y=%20z",
    "https://example.com/a/b",
    "https://bücher.example/pfad?q=ä",
    "http://[::1]:9000/",
    "http://user:pw@example.com:80/p#frag",
]


def _as_built(request: httpx.Request) -> tuple[object, ...]:
    return (
        request.method,
        str(request.url),
        request.headers.raw,
        request.content,
        # As text: the builder names the encoding UTF-8 without trying each header, which
        # decodes ASCII exactly as httpx's "ascii" would.
        request.headers.multi_items(),
    )


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    # One for the module: making a client loads the CA bundle, which costs more than a test.
    with CookielessClient(headers=_DEFAULTS, timeout=_TIMEOUT) as made:
        yield made


def _same_as_build_request(
    client: httpx.Client,
    method: str,
    url: str,
    headers: list[tuple[bytes, bytes]],
    payload: bytes | None,
) -> None:
    expected = client.build_request(method, url, headers=headers, content=payload)
    built = RequestBuilder(client).build(method, url, headers, payload)
    assert _as_built(built) == _as_built(expected)
    # What client.send would set on the request when it carries no timeout of its own.
    assert built.extensions["timeout"] == _TIMEOUT.as_dict()


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "GET", "DELETE", "post"])
@pytest.mark.parametrize("payload", [None, b"", b'{"a": 1}'])
@pytest.mark.parametrize("headers", _HEADERS)
def test_builder_matches_build_request(
    client: httpx.Client, method: str, payload: bytes | None, headers: list[tuple[bytes, bytes]]
) -> None:
    _same_as_build_request(client, method, _URLS[0], headers, payload)


@pytest.mark.parametrize("method", ["POST", "GET"])
@pytest.mark.parametrize("payload", [None, b'{"a": 1}'])
def test_last_headers_come_as_setting_them_after(
    client: httpx.Client, method: str, payload: bytes | None
) -> None:
    # What NotifierAuth did: set the auth header on the built request.
    expected = client.build_request(method, _URLS[0], headers=_HEADERS[1], content=payload)
    expected.headers["Authorization"] = "Basic abc"
    last = [(b"Authorization", b"Basic abc")]
    built = RequestBuilder(client).build(method, _URLS[0], _HEADERS[1], payload, last)
    assert _as_built(built) == _as_built(expected)
    relative = CookielessClient(base_url="http://example.com/")
    built = RequestBuilder(relative).build(method, "x", [], payload, last)
    assert built.headers.raw[-1] == (b"Authorization", b"Basic abc")


@pytest.mark.parametrize("url", _URLS)
@pytest.mark.parametrize("payload", [None, b'{"a": 1}'])
def test_builder_matches_build_request_for_any_url(
    client: httpx.Client, url: str, payload: bytes | None
) -> None:
    _same_as_build_request(client, "POST", url, _HEADERS[1], payload)


def test_builder_requests_go_out_as_built() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    with CookielessClient(transport=httpx.MockTransport(handler), timeout=_TIMEOUT) as client:
        built = RequestBuilder(client).build("POST", "http://example.com/x", [], b"body")
        client.send(built)
    [sent] = seen
    assert sent.content == b"body"
    assert sent.headers["Content-Length"] == "4"
    assert sent.extensions["timeout"] == _TIMEOUT.as_dict()


@pytest.mark.parametrize("url", ["http://example.com:abc/", "http://[::1/"])
def test_unparseable_url_raises_invalid_url(client: httpx.Client, url: str) -> None:
    with pytest.raises(httpx.InvalidURL):
        client.build_request("GET", url)
    with pytest.raises(httpx.InvalidURL):
        RequestBuilder(client).build("GET", url, [], None)


def test_relative_url_is_left_to_build_request() -> None:
    with CookielessClient(base_url="http://example.com/api/") as client:
        built = RequestBuilder(client).build("GET", "hook", [], None)
        assert str(built.url) == "http://example.com/api/hook"


def test_urls_are_parsed_once() -> None:
    assert parse_url("http://example.com/once") is parse_url("http://example.com/once")


@pytest.mark.parametrize(
    "raw",
    [
        [],
        [(b"Set-Cookie", b"a=1"), (b"content-type", b"x"), (b"set-cookie", b"b=2")],
        [(b"X-Name", "Grüße".encode()), (b"X-Latin", "café".encode("latin-1"))],
    ],
)
def test_header_readers_match_httpx(raw: list[tuple[bytes, bytes]]) -> None:
    headers = httpx.Headers(raw)
    assert header_items(headers) == dict(headers.items())
    assert list(header_items(headers)) == list(dict(headers.items()))
    assert header_list(headers) == headers.multi_items()


def test_clients_keep_no_cookie() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=[("Set-Cookie", "session=abc; Path=/")])

    with CookielessClient(transport=httpx.MockTransport(handler)) as client:
        client.cookies = {"offered": "1"}
        first = client.get("http://example.com/")
        second = client.get("http://example.com/")
    assert first.headers["set-cookie"] == "session=abc; Path=/"
    assert len(client.cookies) == 0
    assert "cookie" not in second.request.headers


def test_async_client_keeps_no_cookie() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=[("Set-Cookie", "session=abc; Path=/")])

    async def twice() -> tuple[CookielessAsyncClient, httpx.Response]:
        async with CookielessAsyncClient(transport=httpx.MockTransport(handler)) as client:
            await client.get("http://example.com/")
            return client, await client.get("http://example.com/")

    client, second = asyncio.run(twice())
    assert len(client.cookies) == 0
    assert "cookie" not in second.request.headers
