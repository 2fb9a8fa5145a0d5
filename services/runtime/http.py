"""What every HTTP API here shares: RFC 9457 problem details for every error, and no stack traces."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from schemas.partner_api import FieldError, Problem
from services.runtime.logs import get_logger

log = get_logger(__name__)
PROBLEM = "application/problem+json"
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    503: "Service Unavailable",
}


def problem(status: int, title: str | None = None, detail: str | None = None, **extra: Any) -> JSONResponse:
    body = Problem(status=status, title=title or TITLES.get(status, "Error"), detail=detail, **extra)
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=True), status_code=status, media_type=PROBLEM
    )


def field_errors(error: RequestValidationError) -> list[FieldError]:
    """Every field error, without the offending values (they may be personal data)."""
    return [
        FieldError(
            loc=[part if isinstance(part, int) else str(part) for part in item["loc"]],
            msg=item["msg"],
            type=item["type"],
        )
        for item in error.errors()
    ]


def install_problem_handlers(app: FastAPI, invalid_title: str = "Invalid request") -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        errors = field_errors(error)
        return problem(422, invalid_title, f"{len(errors)} field error(s); see errors.", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        return problem(error.status_code, None, str(error.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.error("request_failed", path=request.url.path, error=type(error).__name__)
        return problem(500, "Internal Server Error", "Something went wrong on our side; it has been logged.")
