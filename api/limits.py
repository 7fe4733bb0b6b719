"""What a request may cost the API before it is authenticated and before it is parsed.

FastAPI reads and parses a route's body before the route runs, so a 50 MB body without a
token was parsed, then answered 401. :class:`RequestLimits` is an ASGI middleware in front of
every route:

* a body over :data:`MAX_BODY` bytes is a 413, from its ``Content-Length`` before a byte of it
  is read, or as soon as a chunked body passes the limit;
* under ``/api/v2/tenants/``, the bearer token is checked first: no token, or an unknown one,
  is a 401 before the body is read. The token's tenant is kept in the request's state, so the
  route's own check (403 for another tenant) does not look it up again.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body
from integrations.store import Store

#: The largest request body, in bytes: an event's payload template may be 1,000,000
#: characters of base64, plus its other fields.
MAX_BODY = 2 * 1024 * 1024

#: Routes that need a bearer token.
PROTECTED = "/api/v2/tenants/"

#: Where the route's own check finds the tenant the middleware authenticated.
TENANT_STATE = "herald_tenant"


class _TooLarge(HTTPException):
    """Raised from ``receive`` once a chunked body passes the limit. An ``HTTPException``,
    because FastAPI turns any other error while reading a body into a 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit:,} bytes")


async def _answer(send: Send, status: int, message: str, headers: dict[str, str]) -> None:
    body = json.dumps(error_body(status, message=message)).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def bearer_token(headers: Headers) -> str | None:
    """The bearer token of an ``Authorization`` header, if it has one."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class RequestLimits:
    """Body size limit and authentication before parsing (see the module docstring)."""

    def __init__(self, app: ASGIApp, store: Store, *, max_body: int = MAX_BODY) -> None:
        self._app = app
        self._store = store
        self._max = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        too_large = f"request body over {self._max:,} bytes"
        if length is not None and (not length.isdigit() or int(length) > self._max):
            await _answer(send, 413, too_large, {})
            return
        if scope["path"].startswith(PROTECTED):
            token = bearer_token(headers)
            if token is None:
                missing = "missing bearer token: get one from POST /auth/oauth/token"
                await _answer(send, 401, missing, {"WWW-Authenticate": "Bearer"})
                return
            tenant = await run_in_threadpool(self._store.tenant_for_token, token)
            if tenant is None:
                invalid = "invalid or expired bearer token"
                await _answer(send, 401, invalid, {"WWW-Authenticate": "Bearer"})
                return
            scope.setdefault("state", {})[TENANT_STATE] = tenant

        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self._max:
                    raise _TooLarge(self._max)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, counted, tracked)
        except _TooLarge:
            if not started:
                await _answer(send, 413, too_large, {})


def authenticated_tenant(state: Any) -> str | None:
    """The tenant :class:`RequestLimits` authenticated for this request, if it did."""
    value = getattr(state, TENANT_STATE, None)
    return value if isinstance(value, str) else None
