"""The OpenAPI document as the API really answers: its error shapes and its bearer scheme.

FastAPI documents a 422 for every route with a body or parameters; Herald answers bad input
with a 400 in its own shape (:mod:`api.errors`), and never a 422. The document is rewritten
once, when first asked for: the 422s go, each route gets the errors it can answer, and the
tenant routes say they take a bearer token. A test (``tests/api/test_schema.py``) holds the
API to this document.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR = {
    "type": "object",
    "required": ["code", "message", "errors"],
    "properties": {
        "code": {"type": "integer"},
        "message": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
#: OAuth2's error answer (RFC 6749, 5.2), which the token route gives.
TOKEN_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
}

_TENANT_ERRORS = {
    "400": "bad input: each field named, with its problem",
    "401": "no bearer token, or one that is not valid",
    "403": "another tenant's bearer token",
    "404": "no such resource for this tenant",
    "409": "the installed integration is uninstalled",
    "413": "the request body is over 2 MiB",
}
_TOKEN_ERRORS = {
    "400": "an unsupported grant type, or a malformed form",
    "401": "unknown client or wrong secret",
    "413": "the request body is over 2 MiB",
    "429": "too many failed token requests: retry after Retry-After seconds",
}


def _response(description: str, schema: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {"description": description, "content": {"application/json": {"schema": ref}}}


def document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document, with Herald's real error answers and security."""
    doc = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["Error"] = ERROR
    schemas["TokenError"] = TOKEN_ERROR
    components["securitySchemes"] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "a token from POST /auth/oauth/token (or /tenancy/auth/oauth/token)",
        }
    }
    for path, operations in doc.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            if path.startswith("/api/v2/tenants/"):
                operation["security"] = [{"bearer": []}]
                for code, why in _TENANT_ERRORS.items():
                    responses.setdefault(code, _response(why, "Error"))
            elif "oauth/token" in path:
                for code, why in _TOKEN_ERRORS.items():
                    responses.setdefault(code, _response(why, "TokenError"))
    return doc


def install_openapi(app: FastAPI) -> None:
    """Serve :func:`document` as the app's ``/openapi.json`` (built once)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
