"""``POST /auth/oauth/token``: a bearer token for a tenant's client credentials.

OpsRamp's clients ask at ``/tenancy/auth/oauth/token``; both paths take the same form.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse

from api.auth import basic_credentials
from api.deps import ServicesDep
from api.schemas import TokenOut

router = APIRouter(tags=["token"])


@router.post("/tenancy/auth/oauth/token", responses={200: {"model": TokenOut}})
@router.post("/auth/oauth/token", responses={200: {"model": TokenOut}})
def token(
    request: Request,
    svc: ServicesDep,
    grant_type: Annotated[str, Form()] = "client_credentials",
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
) -> JSONResponse:
    """Client credentials (form fields or HTTP Basic) for a bearer token scoped to a tenant."""
    if grant_type != "client_credentials":
        return JSONResponse(
            {
                "error": "unsupported_grant_type",
                "error_description": "only client_credentials is supported",
            },
            status_code=400,
        )
    creds = basic_credentials(request)
    if creds is not None and client_id is None:
        client_id, client_secret = creds
    address = request.client.host if request.client else "unknown"
    # Reserved before the secret is hashed: a throttled guess costs no PBKDF2, and
    # concurrent guesses are each counted before any is checked.
    wait = svc.throttle.reserve(client_id or "", address)
    if wait is not None:
        return JSONResponse(
            {
                "error": "too_many_requests",
                "error_description": f"too many failed token requests; retry in {wait} s",
            },
            status_code=429,
            headers={"Retry-After": str(wait)},
        )
    ttl = svc.settings.api_token_ttl
    issued = None
    if client_id and client_secret:
        issued = svc.store.login(client_id, client_secret, ttl)
    if issued is None:
        return JSONResponse(
            {"error": "invalid_client", "error_description": "unknown client or wrong secret"},
            status_code=401,
        )
    svc.throttle.succeeded(client_id or "", address)
    return JSONResponse(
        {
            "access_token": issued,
            "token_type": "bearer",
            "expires_in": ttl,
            "scope": "global",
        },
        headers={"Cache-Control": "no-store"},
    )
