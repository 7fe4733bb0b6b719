"""API authentication as OpsRamp's clients expect it.

``POST /auth/oauth/token`` with ``grant_type=client_credentials``, ``client_id`` and
``client_secret`` (form fields, or HTTP Basic) returns a bearer token scoped to one tenant.
Every ``/api/v2/tenants/{clientId}/...`` route needs it: 401 without a valid token, 403 when the
token belongs to another tenant.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import HTTPException, Request

from api.limits import authenticated_tenant
from integrations.store import Store


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(status_code=401, detail=reason, headers={"WWW-Authenticate": "Bearer"})


def bearer_tenant(request: Request, store: Store) -> str:
    """The tenant of the request's bearer token, or a 401."""
    authenticated = authenticated_tenant(request.state)
    if authenticated is not None:  # RequestLimits looked it up before the body was read
        return authenticated
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("missing bearer token: get one from POST /auth/oauth/token")
    tenant = store.tenant_for_token(token.strip())
    if tenant is None:
        raise _unauthorized("invalid or expired bearer token")
    return tenant


def require_tenant(request: Request, store: Store, client_id: str) -> str:
    """Authenticate and check the token's tenant is the path's ``clientId`` (else 403)."""
    tenant = bearer_tenant(request, store)
    if tenant != client_id:
        raise HTTPException(status_code=403, detail=f"token is not valid for tenant {client_id}")
    return tenant


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """Client credentials from an HTTP Basic header, as RFC 6749 section 2.3.1 allows."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(value.strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password
