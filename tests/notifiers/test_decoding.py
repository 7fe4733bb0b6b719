"""Issue 8, bounds: a response decodes to at most MAX_RESPONSE_BYTES, whatever its encodings,
from a delivery endpoint and from a token endpoint (real loopback servers, both send paths)."""

from __future__ import annotations

import gzip
import json
import tracemalloc
import zlib
from collections.abc import Callable
from typing import TypeVar

import pytest

from integrations.errors import AuthenticationFailed
from integrations.models import Notifier
from notifiers.decoding import STEP, BoundedDecoder, encodings_of
from notifiers.response import MAX_RESPONSE_BYTES
from tests.notifiers.conftest import Send, outbound
from tests.support.sinks import RecordingSink, Reply

T = TypeVar("T")


def gzip_of_zeros(n: int) -> bytes:
    """gzip of ``n`` zero bytes, made a megabyte at a time (never ``n`` bytes at once)."""
    z = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = bytes(1 << 20)
    parts = [z.compress(block) for _ in range(n >> 20)]
    return b"".join([*parts, z.flush()])


#: 1 GiB of zeros, gzipped twice: 1 kB on the wire (the issue's bomb was 1.3 kB).
BOMB = gzip.compress(gzip_of_zeros(1 << 30), 9)


def peak_mib(work: Callable[[], T]) -> tuple[T, float]:
    """``work()`` and the peak of Python allocations while it ran, in MiB."""
    tracemalloc.start()
    try:
        result = work()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak / 2**20


def peak_mib_raising(work: Callable[[], object], kind: type[Exception]) -> float:
    """The peak of Python allocations while ``work()`` ran and raised ``kind``, in MiB."""
    tracemalloc.start()
    try:
        with pytest.raises(kind):
            work()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20


def test_stacked_layers_decode_in_the_order_they_were_applied() -> None:
    body = b'{"ticket": 42}'
    wire = gzip.compress(zlib.compress(body))  # deflate applied first, then gzip
    decoder = BoundedDecoder(["deflate", "gzip"])
    assert b"".join(decoder.feed(wire[i : i + 3]) for i in range(0, len(wire), 3)) == body


def test_a_bomb_decodes_to_the_cap_and_no_layer_holds_more_than_a_step() -> None:
    decoder = BoundedDecoder(["gzip", "gzip"])
    out, peak = peak_mib(
        lambda: b"".join(decoder.feed(BOMB[i : i + 512]) for i in range(0, len(BOMB), 512))
    )
    assert len(out) == MAX_RESPONSE_BYTES and decoder.full
    assert peak < 4 * MAX_RESPONSE_BYTES / 2**20 + 4 * STEP / 2**20


def test_raw_deflate_unknown_encodings_and_garbage() -> None:
    raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    wire = raw.compress(b"hello") + raw.flush()
    assert BoundedDecoder(["deflate"]).feed(wire) == b"hello"
    assert BoundedDecoder([]).feed(b"as is") == b"as is"
    with pytest.raises(zlib.error):
        BoundedDecoder(["gzip"]).feed(b"not gzip at all")


def test_encodings_are_read_from_every_header_line() -> None:
    import httpx

    headers = httpx.Headers([("Content-Encoding", "gzip, br"), ("content-encoding", "Deflate")])
    assert encodings_of(headers) == ["gzip", "deflate"]  # br has no decoder here: passed on


def test_a_delivery_answered_with_a_stacked_gzip_bomb_keeps_one_mib(
    send: Send, sink: RecordingSink
) -> None:
    sink.reply(
        Reply(200, [("Content-Encoding", "gzip, gzip"), ("Content-Type", "text/plain")], BOMB)
    )
    response, peak = peak_mib(lambda: send(outbound(f"{sink.url}/hook")))
    assert response.http_status == 200
    assert len(response.raw_body) <= MAX_RESPONSE_BYTES
    # The body decodes to 1 GiB: before the bound, this grew the process by about that.
    assert peak < 64, f"peak {peak:.0f} MiB"


def test_a_token_endpoint_gzip_bomb_is_bounded_too(send: Send, sink: RecordingSink) -> None:
    sink.reply(
        Reply(200, [("Content-Encoding", "gzip, gzip"), ("Content-Type", "application/json")], BOMB)
    )
    notifier = Notifier(
        authType="OAUTH2",
        grantType="CLIENT_CREDENTIALS",
        accessTokenURL=f"{sink.url}/token",
        apiKey="a",
        apiSecret="b",
    )
    peak = peak_mib_raising(
        lambda: send(outbound(f"{sink.url}/resource", notifier)), AuthenticationFailed
    )
    assert [r.path for r in sink.requests] == ["/token"]
    assert peak < 64, f"peak {peak:.0f} MiB"


def test_a_jwt_token_answer_of_64_mib_is_read_only_to_the_cap(
    send: Send, sink: RecordingSink
) -> None:
    # Made before measuring: the sink's copy is not the client's.
    huge = json.dumps({"token": "x" * (64 << 20)}).encode()
    sink.reply(Reply(200, [("Content-Type", "application/json")], huge))
    notifier = Notifier(authType="JWT", tokenURL=f"{sink.url}/token", tokenPayload="{}")
    peak = peak_mib_raising(
        lambda: send(outbound(f"{sink.url}/resource", notifier)), AuthenticationFailed
    )
    assert peak < 16, f"peak {peak:.0f} MiB"
