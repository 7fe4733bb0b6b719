"""Response bodies decoded with a bound on what they decode to, whatever the encodings.

httpx decodes ``Content-Encoding`` after the transport, and its decoders call
``zlib.decompress`` with no output limit: one 1.3 kB chunk of ``Content-Encoding: gzip,
gzip`` grew a worker by about 1 GB before any cap on the body could look at it, and a token
endpoint's body was read whole. :class:`BoundedTransport` (and its async twin) wraps the
transport every delivery and token request goes through and decodes there instead, each
layer with ``max_length``, so no layer holds more than :data:`STEP` bytes of output at a
time and the decoded body stops at :data:`~notifiers.response.MAX_RESPONSE_BYTES`. The
response handed on has no ``Content-Encoding`` any more, so httpx does not decode it again;
``response.content``, ``.json()`` and streaming read the bounded body unchanged.

What a body beyond the cap would have said is lost, as for an identity body: the activity
log keeps the first MiB.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Iterator

import httpx

from notifiers.response import MAX_RESPONSE_BYTES

#: The most one intermediate layer decodes before the next layer takes it.
STEP = 64 * 1024

#: The response extension set to ``True`` when the body was cut at the cap: a token
#: endpoint's answer cut short is not a token.
TRUNCATED = "herald.truncated"


#: The response extension holding the headers as they came on the wire (with their
#: ``Content-Encoding``), for the activity log: the response's own describe its decoded body.
WIRE_HEADERS = "herald.wire_headers"


def wire_headers(response: httpx.Response) -> httpx.Headers:
    """The headers the endpoint sent."""
    found = response.extensions.get(WIRE_HEADERS)
    return found if isinstance(found, httpx.Headers) else response.headers


def truncated(response: httpx.Response) -> bool:
    """Whether ``response``'s body was longer than the cap and was cut."""
    return bool(response.extensions.get(TRUNCATED))


_GZIP = zlib.MAX_WBITS | 16
_ZLIB = zlib.MAX_WBITS
_RAW_DEFLATE = -zlib.MAX_WBITS
_WBITS = {"gzip": _GZIP, "x-gzip": _GZIP, "deflate": _ZLIB}


def encodings_of(headers: httpx.Headers) -> list[str]:
    """The ``Content-Encoding`` layers Herald decodes, in the order they were applied.

    ``identity`` and encodings Herald does not know (``br`` without a decoder) are passed
    through, as httpx does.
    """
    values = ",".join(headers.get_list("content-encoding"))
    return [e for v in values.split(",") if (e := v.strip().lower()) in _WBITS]


class _Layer:
    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._z = zlib.decompressobj(_WBITS[encoding])
        self._started = False

    def decode(self, data: bytes, room: int) -> bytes:
        try:
            out = self._z.decompress(data, room)
        except zlib.error:
            if self.encoding != "deflate" or self._started:
                raise
            # "deflate" is zlib-wrapped by the RFC, but some servers send raw deflate.
            self._z = zlib.decompressobj(_RAW_DEFLATE)
            out = self._z.decompress(data, room)
        self._started = True
        return out

    @property
    def tail(self) -> bytes:
        return self._z.unconsumed_tail


class BoundedDecoder:
    """Decodes stacked encodings chunk by chunk; at most ``limit`` decoded bytes in all."""

    def __init__(self, encodings: list[str], limit: int = MAX_RESPONSE_BYTES) -> None:
        # Applied first is decoded last: ``gzip, br`` means br is outermost on the wire.
        self._layers = [_Layer(e) for e in reversed(encodings)]
        self._pending = [b""] * len(self._layers)
        self.room = limit

    @property
    def full(self) -> bool:
        """Whether the limit is reached: the rest of the body is not worth reading."""
        return self.room <= 0

    def feed(self, raw: bytes) -> bytes:
        """The decoded bytes ``raw`` yields, within what room is left.

        Raises ``zlib.error`` for a body that does not decode.
        """
        if not self._layers:
            kept = raw[: max(self.room, 0)]
            self.room -= len(kept)
            return kept
        self._pending[0] += raw
        out: list[bytes] = []
        last = len(self._layers) - 1
        progressed = True
        while progressed and not self.full:
            progressed = False
            # Innermost first: a layer's output is drained before its source adds more.
            for i in range(last, -1, -1):
                data = self._pending[i]
                if not data:
                    continue
                room = self.room if i == last else STEP
                piece = self._layers[i].decode(data, room)
                self._pending[i] = self._layers[i].tail
                progressed |= bool(piece) or len(self._pending[i]) < len(data)
                if i == last:
                    out.append(piece)
                    self.room -= len(piece)
                    if self.full:
                        break
                else:
                    self._pending[i + 1] += piece
        return b"".join(out)


def _bounded_headers(headers: httpx.Headers) -> httpx.Headers:
    # The body handed on is decoded: it no longer has the wire's encoding or length.
    return httpx.Headers(
        [
            (k, v)
            for k, v in headers.multi_items()
            if k not in ("content-encoding", "content-length")
        ]
    )


def _decoding_error(exc: zlib.error, request: httpx.Request) -> httpx.DecodingError:
    return httpx.DecodingError(f"response body does not decode: {exc}", request=request)


class _Body:
    """What both body streams share: decoding one raw chunk under the cap."""

    def __init__(
        self,
        response: httpx.Response,
        request: httpx.Request,
        decoder: BoundedDecoder,
    ) -> None:
        self._response = response
        self._request = request
        self._decoder = decoder
        #: The response handed on, whose extensions say when the body was cut (httpx
        #: copies the extensions a response is made with, so they are set on it).
        self.owner: httpx.Response | None = None

    def _decode(self, raw: bytes) -> bytes:
        """The decoded bytes of ``raw``; once the cap is reached, the last ones before it."""
        try:
            piece = self._decoder.feed(raw)
        except zlib.error as exc:
            raise _decoding_error(exc, self._request) from None
        if self._decoder.full:
            # One byte past the cap was asked for, to tell "exactly the cap" from "more".
            if self.owner is not None:
                self.owner.extensions[TRUNCATED] = True
            piece = piece[:-1]
        return piece


class _SyncBody(_Body, httpx.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        assert isinstance(self._response.stream, httpx.SyncByteStream)
        for raw in self._response.stream:
            if piece := self._decode(raw):
                yield piece
            if self._decoder.full:
                return

    def close(self) -> None:
        self._response.close()


class _AsyncBody(_Body, httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        assert isinstance(self._response.stream, httpx.AsyncByteStream)
        async for raw in self._response.stream:
            if piece := self._decode(raw):
                yield piece
            if self._decoder.full:
                return

    async def aclose(self) -> None:
        await self._response.aclose()


def _already_read(response: httpx.Response) -> bool:
    # A body the transport holds whole and unencoded was cut to the cap where it was read.
    return isinstance(response.stream, httpx.ByteStream) and not encodings_of(response.headers)


def _rebuilt(
    response: httpx.Response,
    request: httpx.Request,
    body: type[_SyncBody] | type[_AsyncBody],
    limit: int,
) -> httpx.Response:
    stream = body(response, request, BoundedDecoder(encodings_of(response.headers), limit + 1))
    stream.owner = httpx.Response(
        status_code=response.status_code,
        headers=_bounded_headers(response.headers),
        stream=stream,
        extensions={**response.extensions, WIRE_HEADERS: response.headers},
        request=request,
    )
    return stream.owner


class BoundedTransport(httpx.BaseTransport):
    """A transport whose responses decode to at most ``limit`` bytes (see the module)."""

    def __init__(self, inner: httpx.BaseTransport, limit: int = MAX_RESPONSE_BYTES) -> None:
        self._inner = inner
        self._limit = limit

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send through the inner transport; bound what the answer decodes to."""
        response = self._inner.handle_request(request)
        if _already_read(response):
            return response
        return _rebuilt(response, request, _SyncBody, self._limit)

    def close(self) -> None:
        """Close the inner transport."""
        self._inner.close()


class AsyncBoundedTransport(httpx.AsyncBaseTransport):
    """:class:`BoundedTransport` for an async transport."""

    def __init__(self, inner: httpx.AsyncBaseTransport, limit: int = MAX_RESPONSE_BYTES) -> None:
        self._inner = inner
        self._limit = limit

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send through the inner transport; bound what the answer decodes to."""
        response = await self._inner.handle_async_request(request)
        if _already_read(response):
            return response
        return _rebuilt(response, request, _AsyncBody, self._limit)

    async def aclose(self) -> None:
        """Close the inner transport."""
        await self._inner.aclose()
