"""Error responses: 400 with the field path and the reason, as operators need them.

Every error body has the same shape::

    {"code": 400, "message": "filterCriteria.rules[0].operator: unknown value 'Foo'...",
     "errors": [{"field": "filterCriteria.rules[0].operator", "message": "unknown value..."}]}
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from integrations.errors import HeraldError, InvalidInput
from integrations.models import field_path


def _clean(msg: str) -> str:
    # pydantic prefixes custom validator messages with "Value error, ": noise for an operator.
    return msg.removeprefix("Value error, ")


def validation_errors(exc: ValidationError | RequestValidationError) -> list[dict[str, str]]:
    """One ``{field, message}`` per problem, with FastAPI's ``body`` prefix removed."""
    errors = []
    for err in exc.errors():
        loc = list(err.get("loc", ()))
        if err.get("type") == "json_invalid":
            # loc holds a character offset here, not a field: the body as a whole is bad.
            ctx = err.get("ctx") or {}
            detail = ctx.get("error", "")
            errors.append({"field": "body", "message": f"invalid JSON: {detail}".rstrip(": ")})
            continue
        if loc and loc[0] in ("body", "query", "path", "header"):
            loc = loc[1:]
        # A model validator's error has no field: name the model's own field when it says.
        if err.get("type") == "extra_forbidden":
            message = "unknown field"
        else:
            message = _clean(str(err.get("msg", "invalid")))
        if not loc and "notifier is required" in message:
            loc = ["notifier"]
        errors.append({"field": field_path(loc) or "body", "message": message})
    return errors


def error_body(
    code: int, errors: list[dict[str, str]] | None = None, message: str = ""
) -> dict[str, Any]:
    """The uniform error body."""
    if not message and errors:
        message = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return {"code": code, "message": message, "errors": errors or []}


def bad_request(errors: list[dict[str, str]]) -> JSONResponse:
    """A 400 naming each bad field."""
    return JSONResponse(error_body(400, errors), status_code=400)


def install_handlers(app: FastAPI) -> None:
    """Map validation problems to 400 and HTTP errors to the uniform body."""

    @app.exception_handler(RequestValidationError)
    async def _request_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return bad_request(validation_errors(exc))

    @app.exception_handler(ValidationError)
    async def _model_validation(_: Request, exc: ValidationError) -> JSONResponse:
        return bad_request(validation_errors(exc))

    @app.exception_handler(InvalidInput)
    async def _invalid_input(_: Request, exc: InvalidInput) -> JSONResponse:
        return bad_request([{"field": exc.field, "message": exc.problem}])

    @app.exception_handler(HeraldError)
    async def _herald(_: Request, exc: HeraldError) -> JSONResponse:
        # A failure of Herald itself (stored secrets that no longer decrypt...): say so in
        # the uniform shape rather than as a bare 500.
        return JSONResponse(error_body(500, message=exc.reason), status_code=500)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            error_body(exc.status_code, message=str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )
