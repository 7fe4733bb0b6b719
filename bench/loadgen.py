"""Load generators, each run as its own process so it never shares a GIL with the sink.

``python -m bench.loadgen raw URL CONNECTIONS SECONDS``
    a raw asyncio HTTP/1.1 client, ``CONNECTIONS`` keep-alive connections posting as fast as
    answers come: the ceiling of a sink;
``python -m bench.loadgen threads URL THREADS COUNT SECONDS``
    ``THREADS`` threads sharing one ``httpx.Client`` posting ``COUNT`` requests (or until
    ``SECONDS`` pass): the issue's "64 threads sharing an httpx.Client" baseline.

Each prints one JSON object: ``{"requests": n, "seconds": s}``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

BODY = b'{"id":"load","subject":"Windows host down"}'


def _request(host: str, port: int) -> bytes:
    return (
        f"POST /load HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\n\r\n"
    ).encode() + BODY


async def _raw(url: str, connections: int, seconds: float) -> dict[str, float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = _request(host, port)
    deadline = time.perf_counter() + seconds
    done = 0

    async def one() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < deadline:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                done += 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(connections)))
    return {"requests": done, "seconds": time.perf_counter() - start}


def _threads(url: str, threads: int, count: int, seconds: float) -> dict[str, float]:
    import httpx

    limits = httpx.Limits(max_connections=threads, max_keepalive_connections=threads)
    tickets = itertools.count()
    done = itertools.count()
    deadline = time.perf_counter() + seconds
    with httpx.Client(limits=limits, timeout=30) as client:

        def work() -> None:
            while next(tickets) < count and time.perf_counter() < deadline:
                client.post(
                    url + "/load", content=BODY, headers={"Content-Type": "application/json"}
                ).raise_for_status()
                next(done)

        start = time.perf_counter()
        pool = [threading.Thread(target=work) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        elapsed = time.perf_counter() - start
    return {"requests": next(done), "seconds": elapsed}


def run(args: list[str], timeout: float) -> dict[str, float]:
    """Run this module in a child process with ``args``; its JSON answer."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    ).stdout
    result: dict[str, float] = json.loads(out)
    return result


def main(argv: list[str]) -> None:
    """Entry point (see the module docstring)."""
    kind, url, *rest = argv
    if kind == "raw":
        result = asyncio.run(_raw(url, int(rest[0]), float(rest[1])))
    elif kind == "threads":
        result = _threads(url, int(rest[0]), int(rest[1]), float(rest[2]))
    else:
        raise SystemExit(f"unknown load {kind!r}")
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
