"""Which transport should overlapped deliveries use? (``python -m bench.transport``)

A raw-asyncio loopback sink (its own process, so its CPU is not counted) answers every
request after 50 ms; then N requests at concurrency C go through each candidate:

* ``httpx-pool``: ``httpx.AsyncClient`` on httpx's own (httpcore) pool;
* ``httpx-aiohttp``: ``httpx.AsyncClient`` on ``httpx_aiohttp.AiohttpTransport``;
* ``herald-async``: :meth:`notifiers.sender.Sender.send_async` as shipped (guard included);
* ``herald-basic``: the same, through a notifier with ``authType: BASIC``;
* ``aiohttp``: a bare ``aiohttp.ClientSession`` (no httpx, no guard): the floor of any
  transport on aiohttp's pool;
* ``httpx-floor``: ``httpx.AsyncClient.send`` of one prebuilt request on Herald's transport,
  with nothing of Herald around it: the least any delivery through httpx there can cost;
* ``threads``: C threads sharing one ``httpx.Client`` (the sync path's best case);
* ``raw-asyncio``: a bare asyncio HTTP/1.1 client, the ceiling.

Prints requests/s and client CPU ms per request (``time.process_time``) for each.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import ipaddress
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.process import BaseProcess

import httpx

DELAY = 0.05
_ANSWER = (
    b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'
)


async def _serve_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            await asyncio.sleep(DELAY)
            writer.write(_ANSWER)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def _sink_main(sock: socket.socket) -> None:
    async def main() -> None:
        server = await asyncio.start_server(_serve_one, sock=sock, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def start_sink() -> tuple[BaseProcess, str]:
    """The 50 ms sink in a child process; returns it and its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    port = sock.getsockname()[1]
    proc = multiprocessing.get_context("fork").Process(target=_sink_main, args=(sock,))
    proc.start()
    sock.close()
    return proc, f"http://127.0.0.1:{port}"


async def _fan(n: int, concurrency: int, one: Callable[[], Awaitable[None]]) -> None:
    left = iter(range(n))

    async def lane() -> None:
        for _ in left:
            await one()

    await asyncio.gather(*(lane() for _ in range(concurrency)))


def _limits(concurrency: int) -> httpx.Limits:
    return httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)


async def run_httpx(url: str, n: int, c: int, transport: httpx.AsyncBaseTransport | None) -> None:
    """N POSTs through an ``httpx.AsyncClient`` (httpcore's pool unless ``transport``)."""
    async with httpx.AsyncClient(transport=transport, limits=_limits(c)) as client:

        async def one() -> None:
            response = await client.post(url + "/hook", content=b'{"a": 1}')
            assert response.status_code == 200

        await _fan(n, c, one)


async def run_aiohttp_transport(url: str, n: int, c: int) -> None:
    """N POSTs through ``httpx.AsyncClient`` on httpx-aiohttp's transport (if installed:
    Herald does not depend on it, ``pip install httpx-aiohttp==0.2.0`` to compare)."""
    from httpx_aiohttp import AiohttpTransport

    await run_httpx(url, n, c, AiohttpTransport(limits=_limits(c)))


async def run_aiohttp(url: str, n: int, c: int) -> None:
    """N POSTs through a bare ``aiohttp.ClientSession``, as Herald's transport configures it."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=c, limit_per_host=c)
    timeout = aiohttp.ClientTimeout(sock_connect=5, sock_read=5)
    jar = aiohttp.DummyCookieJar()
    async with aiohttp.ClientSession(connector=connector, cookie_jar=jar) as session:

        async def one() -> None:
            async with session.post(
                url + "/hook", data=b'{"a": 1}', timeout=timeout, allow_redirects=False
            ) as response:
                await response.read()
                assert response.status == 200

        await _fan(n, c, one)


async def run_httpx_floor(url: str, n: int, c: int) -> None:
    """N sends of one prebuilt request through Herald's ``httpx.AsyncClient`` (it keeps no
    cookies) on :class:`notifiers.aio.GuardedAiohttpTransport`: guard included, else bare."""
    from notifiers.aio import GuardedAiohttpTransport
    from notifiers.build import CookielessAsyncClient

    loopback = (ipaddress.ip_network("127.0.0.0/8"),)
    transport = GuardedAiohttpTransport(loopback)
    no_auth = httpx.Auth()
    async with CookielessAsyncClient(transport=transport) as client:
        request = client.build_request("POST", url + "/hook", content=b'{"a": 1}')

        async def one() -> None:
            response = await client.send(request, auth=no_auth, stream=True)
            await response.aread()
            assert response.status_code == 200

        await _fan(n, c, one)


async def run_herald(url: str, n: int, c: int, auth: str = "NONE") -> None:
    """N deliveries through ``Sender.send_async`` (SSRF guard, headers, outcome and all),
    through a notifier of authType ``auth`` (NONE or BASIC)."""
    from integrations.config import Settings
    from integrations.enums import AuthType, HttpMethod
    from integrations.models import Notifier
    from notifiers.sender import OutboundRequest, Sender

    loopback = (ipaddress.ip_network("127.0.0.0/8"),)
    settings = dataclasses.replace(Settings.from_env(), allowed_networks=loopback)
    sender = Sender(settings)
    if auth == "BASIC":
        notifier = Notifier(authType=AuthType.BASIC, userName="herald", password="s3cret-pw")
    else:
        notifier = Notifier()

    async def one() -> None:
        request = OutboundRequest("dlv-1", notifier, HttpMethod.POST, url + "/hook", [], "{}")
        response = await sender.send_async(request)
        assert response.http_status == 200

    try:
        await _fan(n, c, one)
    finally:
        await sender.aclose()
        sender.close()


async def run_raw(url: str, n: int, c: int) -> None:
    """N POSTs over C keep-alive connections with a bare asyncio HTTP/1.1 client."""
    host, port = url.removeprefix("http://").split(":")
    request = (
        f"POST /hook HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 8\r\n\r\n"
        '{"a": 1}'.encode()
    )
    left = iter(range(n))

    async def lane() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        for _ in left:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200")
            await reader.readexactly(11)
        writer.close()

    await asyncio.gather(*(lane() for _ in range(c)))


def run_threads(url: str, n: int, c: int) -> None:
    """N POSTs from C threads sharing one ``httpx.Client``."""
    with httpx.Client(limits=_limits(c)) as client, ThreadPoolExecutor(c) as pool:

        def one(_: int) -> None:
            assert client.post(url + "/hook", content=b'{"a": 1}').status_code == 200

        list(pool.map(one, range(n)))


def measure(name: str, call: Callable[[], None], n: int) -> dict[str, float | str]:
    """Run ``call`` once; requests/s and client CPU ms per request."""
    cpu, wall = time.process_time(), time.perf_counter()
    call()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    row: dict[str, float | str] = {
        "candidate": name,
        "req_per_s": round(n / wall, 1),
        "cpu_ms_per_req": round(cpu * 1000 / n, 3),
    }
    print(f"{name:14} {row['req_per_s']:>9} req/s {row['cpu_ms_per_req']:>8} CPU ms/req")
    return row


def main() -> None:
    """Parse arguments, start the sink, measure every candidate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("-c", "--concurrency", type=int, default=100)
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args()
    n, c = args.n, args.concurrency
    proc, url = start_sink()
    candidates: dict[str, Callable[[], None]] = {
        "raw-asyncio": lambda: asyncio.run(run_raw(url, n, c)),
        "httpx-pool": lambda: asyncio.run(run_httpx(url, n, c, None)),
        "httpx-aiohttp": lambda: asyncio.run(run_aiohttp_transport(url, n, c)),
        "aiohttp": lambda: asyncio.run(run_aiohttp(url, n, c)),
        "httpx-floor": lambda: asyncio.run(run_httpx_floor(url, n, c)),
        "herald-async": lambda: asyncio.run(run_herald(url, n, c)),
        "herald-basic": lambda: asyncio.run(run_herald(url, n, c, "BASIC")),
        "threads": lambda: run_threads(url, n, c),
    }
    # Herald's modules (pydantic models and all) are imported before the clock starts: a
    # worker imports them once, not per request.
    import notifiers.sender  # noqa: F401

    print(f"N={n} concurrency={c} sink delay={DELAY * 1000:.0f} ms, load {os.getloadavg()}")
    try:
        for name, call in candidates.items():
            if args.only is None or name in args.only:
                try:
                    measure(name, call, n)
                except ImportError as exc:
                    print(f"{name:14} skipped: {exc}")
    finally:
        if proc.pid is not None:
            os.kill(proc.pid, signal.SIGTERM)
        proc.join(5)


if __name__ == "__main__":
    main()
