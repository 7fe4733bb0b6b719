"""A notifier's auth as an ``httpx.Auth`` flow, the same for sync and async clients.

The flow sets the auth headers, sends, and on a 401 from an OAUTH2/JWT endpoint drops the
token, obtains a fresh one and sends once more. Its steps are one generator
(:meth:`NotifierAuth._steps`); the sync and async drivers differ only in how they run the
token work (:class:`Authenticator` may talk to Redis and to the token endpoint): inline, or
on a worker thread so the event loop never blocks on it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Generator, Iterator
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import httpx

from integrations.enums import AuthType
from integrations.models import Notifier
from notifiers.auth.apply import AppliedAuth, Authenticator
from notifiers.response import MAX_RESPONSE_BYTES
from notifiers.urls import redact_url

log = logging.getLogger(__name__)


def auth_header_names(notifier: Notifier) -> frozenset[str]:
    """The (lower-case) header names ``notifier``'s auth sets, so an event header of the same
    name gives way to it (pure)."""
    if notifier.authType is AuthType.NONE:
        return frozenset()
    if notifier.authType is AuthType.JWT and notifier.resourceAuthHeaders:
        return frozenset(h.key.lower() for h in notifier.resourceAuthHeaders)
    return frozenset({"authorization"})


@dataclass(frozen=True)
class _Obtain:
    """A step asking the driver for auth headers, after dropping ``stale`` if given."""

    stale: AppliedAuth | None = None


class _Capped(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response stream cut at :data:`MAX_RESPONSE_BYTES`: httpx reads a 401's body in full
    before the retry, and a hostile endpoint must not be able to exhaust memory with it."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    @staticmethod
    def _room(size: int, chunk: bytes) -> int:
        return size + len(chunk)

    def __iter__(self) -> Iterator[bytes]:
        size = 0
        for chunk in self._inner:
            yield chunk
            if (size := self._room(size, chunk)) >= MAX_RESPONSE_BYTES:
                return

    async def __aiter__(self) -> Any:
        size = 0
        async for chunk in self._inner:
            yield chunk
            if (size := self._room(size, chunk)) >= MAX_RESPONSE_BYTES:
                return

    def close(self) -> None:
        self._inner.close()

    async def aclose(self) -> None:
        await self._inner.aclose()


class NotifierAuth(httpx.Auth):
    """One delivery's auth (make one per request). After the send, :attr:`applied` holds what
    the last attempt carried (for redaction) and :attr:`renewed` whether a 401 was retried."""

    def __init__(self, authenticator: Authenticator, notifier: Notifier) -> None:
        self._authenticator = authenticator
        self._notifier = notifier
        self.applied = AppliedAuth()
        self.renewed = False

    def _obtain(self, step: _Obtain) -> AppliedAuth:
        if step.stale is not None:
            self._authenticator.invalidate(self._notifier, step.stale)
        return self._authenticator.apply(self._notifier)

    async def _obtain_async(self, step: _Obtain) -> AppliedAuth:
        if step.stale is None:
            held = self._authenticator.peek(self._notifier)
            if held is not None:
                return held  # no I/O needed: no thread hop
        return await asyncio.to_thread(self._obtain, step)

    def _set(self, request: httpx.Request, applied: AppliedAuth) -> None:
        self.applied = applied
        for name, value in applied.headers:
            request.headers[name] = value

    def _steps(self, request: httpx.Request) -> Generator[httpx.Request | _Obtain, Any, None]:
        self._set(request, (yield _Obtain()))
        response: httpx.Response = yield request
        if response.status_code != 401 or not self.applied.renewable:
            return
        # The token may have been revoked or expired early: one retry with a fresh one.
        log.info("401 from %s; renewing the token and retrying once", redact_url(str(request.url)))
        response.stream = _Capped(response.stream)
        self._set(request, (yield _Obtain(self.applied)))
        self.renewed = True
        yield request

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Drive :meth:`_steps`, obtaining tokens inline."""
        steps = self._steps(request)
        step = next(steps)
        with suppress(StopIteration):
            while True:
                sent = self._obtain(step) if isinstance(step, _Obtain) else (yield step)
                step = steps.send(sent)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Drive :meth:`_steps`, obtaining tokens off the event loop."""
        steps = self._steps(request)
        step = next(steps)
        with suppress(StopIteration):
            while True:
                if isinstance(step, _Obtain):
                    step = steps.send(await self._obtain_async(step))
                else:
                    step = steps.send((yield step))
