"""What every HTTP API here shares: RFC 9457 problem details for every error, no stack traces,
Prometheus metrics (``install_metrics``: request counts and times per route template, and ``/metrics``), and
the orchestrators' probes (``install_probes``: ``/health`` and ``/ready``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schemas.partner_api import FieldError, Problem
from services.runtime.logs import get_logger
from services.runtime.metrics import CONTENT_TYPE, ErrorKind, Metrics

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
    429: "Too Many Requests",
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


def install_problem_handlers(
    app: FastAPI, invalid_title: str | Callable[[Request], str] = "Invalid request"
) -> None:
    """Every error answer as problem details (below), and the app's OpenAPI document saying so.
    ``invalid_title``: the title of a 422, or a function of the request giving it (an API whose routes take
    different bodies names what was invalid)."""
    document_problems(app)

    def title_for(request: Request) -> str:
        return invalid_title if isinstance(invalid_title, str) else invalid_title(request)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = field_errors(error)
        return problem(422, title_for(request), f"{len(errors)} field error(s); see errors.", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 400 and isinstance(error.__cause__, ValueError | RecursionError):
            # FastAPI's 400 for a body its JSON parser raised on other than JSONDecodeError (bytes that are
            # not UTF-8, arrays nested deeper than the parser recurses): invalid JSON like any other (422).
            errors = [FieldError(loc=["body"], msg="body is not readable JSON", type="json_invalid")]
            return problem(422, title_for(request), "1 field error(s); see errors.", errors=errors)
        return problem(error.status_code, None, str(error.detail))

    @app.exception_handler(KafkaError)
    async def broker_unavailable(request: Request, error: KafkaError) -> JSONResponse:
        # The broker did not take the record in time (down, restarting, no leader): nothing was promised,
        # so the client sends the same request again, which every write here treats as the same request.
        log.warning("request_broker_unavailable", path=request.url.path, error=type(error).__name__)
        response = problem(
            503, None, "The event store is not reachable just now; send the same request again shortly."
        )
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.error("request_failed", path=request.url.path, error=type(error).__name__)
        return problem(500, "Internal Server Error", "Something went wrong on our side; it has been logged.")


def document_problems(app: FastAPI) -> None:
    """The document FastAPI generates gives every response the route's media type (application/json);
    every error answer here is problem details, so the document's error responses say application/problem+json
    (checked against the running APIs by tests/integration/test_api_documents.py)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            for path in generate().get("paths", {}).values():
                for operation in path.values():
                    for status, response in operation.get("responses", {}).items():
                        content = response.get("content", {})
                        if status[0] in "45" and "application/json" in content:
                            response["content"] = {PROBLEM: content["application/json"]}
        return app.openapi_schema or generate()

    app.openapi = openapi  # type: ignore[method-assign]


RETRY_AFTER_S = 2
UNMATCHED = "<unmatched>"


class RequestMetrics:
    """ASGI middleware: counts and times every request by its route *template* (``/v1/referrals/{id}``),
    never the raw path, whose ids would make a series per referral. Outermost, so that requests other
    middleware refuses (401, 413, 415) are counted too."""

    def __init__(self, app: ASGIApp, metrics: Metrics, fastapi: FastAPI) -> None:
        self.app = app
        self.metrics = metrics
        self.fastapi = fastapi

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when an exception escapes the app

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_recording)
        finally:
            seconds = time.perf_counter() - started
            route = scope.get("route")  # the router's choice, when the request reached it
            name = str(getattr(route, "path", UNMATCHED)) if route is not None else self.route_of(scope)
            self.metrics.http_request(scope["method"], name, status, seconds)
            if status == 500:
                self.metrics.error(ErrorKind.HTTP_UNHANDLED)

    def route_of(self, scope: Scope) -> str:
        """The route the router would choose (a request refused before it, e.g. a 401, was not routed)."""
        partial = None
        for route in self.fastapi.router.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return str(getattr(route, "path", UNMATCHED))
            if match is Match.PARTIAL and partial is None:  # right path, other method (405)
                partial = str(getattr(route, "path", UNMATCHED))
        return partial or UNMATCHED


def install_metrics(app: FastAPI, metrics: Metrics, *, route: bool = True) -> Metrics:
    """``GET /metrics`` (Prometheus text, no authentication: ids and counts only) and request metrics.
    Call it after adding the app's other middleware, so that it wraps them all. ``route=False``: count the
    requests, but serve ``/metrics`` elsewhere (the partner API: on its probe server, not its public port)."""

    if route:

        @app.get("/metrics", include_in_schema=False)
        async def prometheus_metrics() -> Response:
            return Response(metrics.render(), media_type=CONTENT_TYPE)

    app.add_middleware(RequestMetrics, metrics=metrics, fastapi=app)
    return metrics


def install_probes(app: FastAPI, ready: Callable[[], bool]) -> None:
    """``GET /health`` (the process answers) and ``GET /ready`` (200 once ``ready()``, else 503 "starting"),
    as the workers' probe server answers them, so one probe definition fits every process."""

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/ready", include_in_schema=False)
    async def readiness() -> JSONResponse:
        is_ready = ready()
        return JSONResponse(
            {"status": "ready" if is_ready else "starting"}, status_code=200 if is_ready else 503
        )


PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""The coordinator page's Content-Security-Policy: its own scripts, styles and images only (no inline code),
never framed (clickjacking), forms posted only to itself."""
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
"""The APIs' Content-Security-Policy: JSON is no document; a browser made to render one runs nothing."""


def replaying(body: bytes, receive: Receive) -> Receive:
    """What the app receives once a middleware has read the request's body whole: that body in one
    message, then whatever the server sends next (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class Hardened:
    """ASGI middleware: security headers on every answer, ``Cache-Control: no-store`` on every answer
    ``no_store`` says holds personal data, and a limit on whole request bodies (413 before the app reads
    one byte of a body that is too large, whatever its fields).

    Headers: ``Content-Security-Policy`` (with ``frame-ancestors``), ``X-Content-Type-Options: nosniff``,
    ``Referrer-Policy: no-referrer``, ``X-Frame-Options: DENY`` (older browsers)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        policy: str,
        no_store: Callable[[str], bool] = lambda _: True,
        max_body: int | None = None,
    ) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", policy.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
        ]
        self.no_store = no_store
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(self.headers)
        if self.no_store(scope["path"]):
            extra.append((b"cache-control", b"no-store"))

        replaced = {name for name, _ in extra}

        async def send_hardened(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(n, v) for n, v in message.get("headers", []) if n.lower() not in replaced]
                message = {**message, "headers": kept + extra}
            await send(message)

        if self.max_body is not None and scope["method"] in {"POST", "PUT", "PATCH"}:
            replay = await self._read_body(scope, receive)
            if replay is None:
                await self._too_large(scope, send_hardened)
                return
            receive = replay
        await self.app(scope, receive, send_hardened)

    async def _read_body(self, scope: Scope, receive: Receive) -> Receive | None:
        assert self.max_body is not None
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body:
            return None
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            body.extend(message.get("body", b""))
            if len(body) > self.max_body:
                return None
            more = message.get("more_body", False)
        return replaying(bytes(body), receive)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        assert self.max_body is not None
        log.info("request_body_too_large", path=scope["path"], limit=self.max_body)
        text = f"The form is too large: at most {self.max_body // 1024} KiB.".encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")],
            }
        )
        await send({"type": "http.response.body", "body": text})
