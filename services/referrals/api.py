"""The partner HTTP API (FastAPI): agencies submit, amend, withdraw and follow their own referrals.

FastAPI because the API is defined by its OpenAPI document and its pydantic models are our contract
models: the document we publish (``/openapi.json``, ``schemas/openapi.json``) is generated from the very
classes that validate requests. The API never writes referral state: it validates, turns a request into a
command on the worker's command topic, and answers reads from the worker's state (``readmodel``).

Order of refusals, before any body is parsed: 401 (no or wrong key), 429 (the agency's rate limit, see
``ratelimit``), 415 (not JSON), 413 (over 256 KiB); then 422 with every field error. Errors are RFC 9457
problem details; no stack trace reaches a caller.

Every request about referrals is recorded in the access log (``access``) before it is answered: handlers
say what they touched (``request.state.access``), the gate records it with the status and only then lets
the answer out (503 instead, and no data, if the record cannot be written).
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable, MutableMapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Protocol

from fastapi import FastAPI, Request, Response, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schemas.common import ReferralStatus
from schemas.envelope import Envelope, Event
from schemas.events.agencies import AgencyRecord
from schemas.events.circles import AcknowledgeConcern, ConcernState
from schemas.events.referrals import AccessAction, SubmitReferral, WithdrawReferral
from schemas.partner_api import (
    Acknowledgement,
    ConcernDetail,
    ConcernList,
    ConcernView,
    FieldError,
    Links,
    MappaPanelView,
    Problem,
    ReferralAccepted,
    ReferralHistory,
    ReferralList,
    ReferralSubmission,
    ReferralView,
    Withdrawal,
)
from schemas.topics import COORDINATOR_RECORDS, REFERRALS_STATE
from services.protection.sealer import build_sealer
from services.referrals.access import Access, AccessLog
from services.referrals.agencies import AgencyDirectory
from services.referrals.circleview import CircleIndex, CirclesReadModel
from services.referrals.domain import circles as circle_rules
from services.referrals.domain.referral import ReferralRecord, referral_id_for
from services.referrals.panels import MappaPanels
from services.referrals.ratelimit import RateLimiter
from services.referrals.readmodel import Pending, Referral, ReferralIndex, ReferralReadModel, RefusalReader
from services.referrals.settings import ReferralsSettings
from services.runtime import supervision
from services.runtime.clock import Clock, SystemClock, clock_from_setting
from services.runtime.http import (
    API_POLICY,
    Hardened,
    install_metrics,
    install_probes,
    install_problem_handlers,
    problem,
    replaying,
)
from services.runtime.ids import derive_id
from services.runtime.kafka import Publisher
from services.runtime.locks import KeyedLocks
from services.runtime.logs import get_logger, log_context
from services.runtime.metrics import Metrics
from services.runtime.probes import ProbeServer
from services.runtime.supervision import together

log = get_logger(__name__)
CORRELATION_HEADER = "x-correlation-id"
_SAFE_CORRELATION = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
MAX_BODY = 256 * 1024
SERVICE = "referrals-api"


class Authenticator(Protocol):
    def authenticate(self, api_key: str) -> AgencyRecord | None: ...


class CommandPublisher(Protocol):
    async def publish_command(self, command: Event, correlation_id: str) -> str | None:
        """Publish (acknowledged); returns the command's id (``ce_id``) if it has one."""


class AccessRecorder(Protocol):
    async def record(
        self,
        actor: str,
        access: Access,
        correlation_id: str,
        accessed_at: datetime,
        status: int | None = None,
    ) -> None: ...


class PartnerGate:
    """ASGI middleware for /v1/: correlation id, then 401, 429, 415 and 413, all before the body is parsed;
    and the access record of each answer, written before the answer leaves."""

    def __init__(
        self,
        app: ASGIApp,
        authenticator: Authenticator,
        access_log: AccessRecorder,
        clock: Clock,
        limiter: RateLimiter,
        max_body: int = MAX_BODY,
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.access_log = access_log
        self.clock = clock
        self.limiter = limiter
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        offered = headers.get(CORRELATION_HEADER, "")
        correlation_id = offered if _SAFE_CORRELATION.match(offered) else str(uuid.uuid4())
        state: MutableMapping[str, Any] = scope.setdefault("state", {})
        state["correlation_id"] = correlation_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (CORRELATION_HEADER.encode(), correlation_id.encode()),
                ]
            await send(message)

        with log_context(correlation_id=correlation_id):
            refusal, replay = await self._check(scope, headers, receive, state)
            if refusal is not None:
                await refusal(scope, receive, send_with_id)
                return
            await self.app(scope, replay or receive, self._recorded(scope, receive, send_with_id))

    def _recorded(self, scope: Scope, receive: Receive, send: Send) -> Send:
        """``send``, holding the answer back until the access the handler declared is recorded."""
        state: MutableMapping[str, Any] = scope["state"]
        withheld = False

        async def send_recorded(message: Message) -> None:
            nonlocal withheld
            if withheld:
                return  # the handler's answer, replaced by the 503 below
            access: Access | None = state.get("access")
            if message["type"] == "http.response.start" and access is not None:
                actor = f"agency:{state['agency'].agency_id}"
                try:
                    await self.access_log.record(
                        actor, access, state["correlation_id"], self.clock.now(), int(message["status"])
                    )
                except Exception as error:  # whatever it is, the answer must not leave unrecorded
                    log.error("access_not_recorded", action=access.action, error=type(error).__name__)
                    withheld = True
                    refusal = problem(
                        503, "Service Unavailable", "The request could not be recorded; try again shortly."
                    )
                    refusal.headers["Retry-After"] = "5"
                    await refusal(scope, receive, send)
                    return
            await send(message)

        return send_recorded

    async def _check(
        self, scope: Scope, headers: dict[str, str], receive: Receive, state: MutableMapping[str, Any]
    ) -> tuple[JSONResponse | None, Receive | None]:
        if not scope["path"].startswith("/v1/"):
            return None, None
        scheme, _, key = headers.get("authorization", "").partition(" ")
        agency = self.authenticator.authenticate(key.strip()) if scheme.lower() == "bearer" and key else None
        if agency is None:
            response = problem(
                401, "Unauthorized", "Send your agency's API key as 'Authorization: Bearer <key>'."
            )
            response.headers["WWW-Authenticate"] = 'Bearer realm="circles"'
            return response, None
        state["agency"] = agency
        wait = self.limiter.take(agency.agency_id)
        if wait:
            response = problem(
                429, "Too Many Requests", f"Your agency's rate limit is reached; retry in {wait} s."
            )
            response.headers["Retry-After"] = str(wait)
            return response, None
        if scope["method"] not in {"POST", "PUT", "PATCH"}:
            return None, None
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            return problem(415, "Unsupported Media Type", "Send the body as application/json."), None
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            return self._too_large(), None
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return problem(400, "Bad Request", "The client went away."), None
            body.extend(message.get("body", b""))
            if len(body) > self.max_body:
                return self._too_large(), None
            if not message.get("more_body", False):
                break
        return None, replaying(bytes(body), receive)

    def _too_large(self) -> JSONResponse:
        return problem(413, "Content Too Large", f"The body must be at most {self.max_body // 1024} KiB.")


def invalid_title(request: Request) -> str:
    """A 422's title names what was invalid: a referral (submit, amend, withdraw) or an acknowledgement."""
    if request.url.path.startswith("/v1/concerns"):
        return "Invalid acknowledgement"
    return "Invalid referral" if request.url.path.startswith("/v1/referrals") else "Invalid request"


def _links(base_url: str, referral_id: uuid.UUID) -> Links:
    url = f"{base_url}/v1/referrals/{referral_id}"
    return Links(self=url, history=f"{url}/history")


def erased(referral: Referral) -> bool:
    return isinstance(referral, ReferralRecord) and referral.erased


def withdrawn(referral: Referral) -> bool:
    return referral.status is ReferralStatus.WITHDRAWN


def _view(referral: Referral, base_url: str, circles: CircleIndex) -> ReferralView:
    entry = circles.circle_of(referral.referral_id, referral.agency_id)
    return ReferralView(
        referral_id=referral.referral_id,
        agency_reference=referral.agency_reference,
        status=circle_rules.referral_status(referral.status, entry),
        version=referral.version,
        decision=referral.decision,
        submitted_at=referral.submitted_at,
        updated_at=referral.updated_at,
        erased_at=referral.erased_at if isinstance(referral, ReferralRecord) else None,
        circle=circle_rules.circle_view(entry, circles.acknowledged_here()) if entry is not None else None,
        links=_links(base_url, referral.referral_id),
    )


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No API key, or not a valid one"},
    404: {"model": Problem, "description": "No such referral, or another agency's"},
    413: {"model": Problem, "description": "Body over 256 KiB"},
    415: {"model": Problem, "description": "Body is not application/json"},
    422: {"model": Problem, "description": "Invalid body: every field error is listed in `errors`"},
    429: {
        "model": Problem,
        "description": "The agency's rate limit is reached (a token bucket per agency: a burst, then a "
        "steady rate per minute); retry after `Retry-After` seconds",
        "headers": {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}},
    },
    503: {
        "model": Problem,
        "description": "The access could not be recorded in the access log: nothing was answered; retry",
        "headers": {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}},
    },
}


def create_api(
    *,
    authenticator: Authenticator,
    index: ReferralIndex,
    publisher: CommandPublisher,
    circles: CircleIndex | None = None,
    access_log: AccessRecorder,
    base_url: str,
    clock: Clock | None = None,
    limiter: RateLimiter | None = None,
    max_body: int = MAX_BODY,
    lifespan: Callable[[FastAPI], Any] | None = None,
    ready: Callable[[], bool] = lambda: True,
    metrics: Metrics | None = None,
    panels: Callable[[uuid.UUID], list[MappaPanelView]] = lambda _: [],
    metrics_route: bool = True,
) -> FastAPI:
    """``metrics_route=False``: no ``/metrics`` on this (public) app; the process serves it on its own
    listener (``build_api``). ``panels``: the MAPPA panels the scheme was asked to attend about a referral
    (the coordinator's records)."""
    clock = clock or SystemClock()
    circles = circles if circles is not None else CircleIndex()
    app = FastAPI(
        title="Circles partner API",
        version="1.0.0",
        summary="Submit and follow referrals to the Humberside Circles of Support and Accountability scheme.",
        description=(
            "Authenticate with `Authorization: Bearer <agency API key>`. The agency is taken from the key. "
            "An agency sees only the referrals it submitted, and only their circles and concerns. "
            "Errors are `application/problem+json` (RFC 9457)."
        ),
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    bearer = Security(HTTPBearer(auto_error=False, description="The agency's API key"))
    locks: KeyedLocks[uuid.UUID] = KeyedLocks()
    app.state.locks = locks  # for tests: held only while in use

    install_problem_handlers(app, invalid_title=invalid_title)

    def agency_of(request: Request) -> AgencyRecord:
        agency: AgencyRecord = request.state.agency
        return agency

    def correlation_of(request: Request) -> str:
        return str(request.state.correlation_id)

    def touches(request: Request, action: AccessAction, *referral_ids: uuid.UUID) -> None:
        """Declare what the request touches: the gate records it before the answer leaves."""
        request.state.access = Access(action, referral_ids)

    def not_found() -> JSONResponse:
        return problem(404, "Not Found", "No referral with that id for your agency.")

    def erased_problem(referral_id: uuid.UUID) -> JSONResponse:
        return problem(
            409,
            "Conflict",
            "The referral's personal data was erased: it cannot be changed, and its agency_reference "
            "cannot be used again. Submit a new referral under a new agency_reference.",
            links={"history": f"{base_url}/v1/referrals/{referral_id}/history"},
        )

    @asynccontextmanager
    async def changing(
        referral_id: uuid.UUID, agency_id: str, *, erased_ok: Callable[[Referral], bool] = lambda _: False
    ) -> AsyncIterator[Referral | JSONResponse | None]:
        """The preamble of every change: the referral's lock held throughout, then the agency's referral
        (``None`` if it has none by that id), or the answer that refuses the change: its data was erased
        (unless ``erased_ok``)."""
        async with locks.hold(referral_id):
            existing = index.owned_by(referral_id, agency_id)
            if existing is not None and erased(existing) and not erased_ok(existing):
                yield erased_problem(referral_id)
            else:
                yield existing

    @app.post(
        "/v1/referrals",
        status_code=202,
        response_model=ReferralAccepted,
        dependencies=[bearer],
        responses={
            200: {"model": ReferralAccepted, "description": "The same body again: the same referral"},
            409: {
                "model": Problem,
                "description": "agency_reference already used with a different body, or erased",
            },
            **ERROR_RESPONSES,
        },
    )
    async def submit_referral(submission: ReferralSubmission, request: Request, response: Response) -> Any:
        """Submit a referral. Acknowledged at once (202); the decision follows (GET, or the webhook)."""
        agency = agency_of(request)
        referral_id = referral_id_for(agency.agency_id, submission.agency_reference)
        touches(request, "submit", referral_id)
        fingerprint = submission.fingerprint()
        async with changing(referral_id, agency.agency_id) as existing:
            if isinstance(existing, JSONResponse):
                return existing
            if existing is not None:
                if existing.fingerprint == fingerprint:
                    response.status_code = 200
                    return ReferralAccepted(
                        referral_id=referral_id, status=existing.status, links=_links(base_url, referral_id)
                    )
                return problem(
                    409,
                    "Conflict",
                    "This agency_reference is already used by a referral with a different body. "
                    "To supply a new version, PUT the full body to the referral.",
                    links={"amend": f"{base_url}/v1/referrals/{referral_id}"},
                )
            now = clock.now()
            command = SubmitReferral(
                referral_id=referral_id,
                agency_id=agency.agency_id,
                submission=submission,
                fingerprint=fingerprint,
                received_at=now,
            )
            command_id = await publisher.publish_command(command, correlation_of(request))
            index.add_pending(
                Pending(
                    referral_id,
                    agency.agency_id,
                    submission.agency_reference,
                    1,
                    fingerprint,
                    ReferralStatus.RECEIVED,
                    now,
                    now,
                    command_id=command_id,
                )
            )
        log.info("referral_received", referral_id=str(referral_id), agency_id=agency.agency_id)
        return ReferralAccepted(
            referral_id=referral_id, status=ReferralStatus.RECEIVED, links=_links(base_url, referral_id)
        )

    @app.put(
        "/v1/referrals/{referral_id}",
        response_model=ReferralAccepted,
        dependencies=[bearer],
        responses={
            409: {"model": Problem, "description": "The referral is withdrawn, or its data erased"},
            **ERROR_RESPONSES,
        },
    )
    async def amend_referral(referral_id: uuid.UUID, submission: ReferralSubmission, request: Request) -> Any:
        """Replace the referral with a new version (e.g. supplying missing information), assessed again."""
        agency = agency_of(request)
        touches(request, "amend", referral_id)
        async with changing(referral_id, agency.agency_id) as existing:
            if existing is None:
                return not_found()
            if isinstance(existing, JSONResponse):
                return existing
            if existing.status is ReferralStatus.WITHDRAWN:
                return problem(409, "Conflict", "The referral is withdrawn and cannot be amended.")
            if submission.agency_reference != existing.agency_reference:
                error = FieldError(
                    loc=["body", "agency_reference"],
                    msg="must be the referral's agency_reference",
                    type="value_error",
                )
                return problem(422, "Invalid referral", "1 field error(s); see errors.", errors=[error])
            fingerprint = submission.fingerprint()
            if fingerprint == existing.fingerprint:
                return ReferralAccepted(
                    referral_id=referral_id, status=existing.status, links=_links(base_url, referral_id)
                )
            now = clock.now()
            command = SubmitReferral(
                referral_id=referral_id,
                agency_id=agency.agency_id,
                submission=submission,
                fingerprint=fingerprint,
                amend=True,
                received_at=now,
            )
            command_id = await publisher.publish_command(command, correlation_of(request))
            index.add_pending(
                Pending(
                    referral_id,
                    agency.agency_id,
                    existing.agency_reference,
                    existing.version + 1,
                    fingerprint,
                    ReferralStatus.RECEIVED,
                    existing.submitted_at,
                    now,
                    history=tuple(existing.history),
                    command_id=command_id,
                )
            )
        return ReferralAccepted(
            referral_id=referral_id, status=ReferralStatus.RECEIVED, links=_links(base_url, referral_id)
        )

    @app.post(
        "/v1/referrals/{referral_id}/withdrawal",
        response_model=ReferralAccepted,
        dependencies=[bearer],
        responses={
            409: {"model": Problem, "description": "The referral's data was erased"},
            **ERROR_RESPONSES,
        },
    )
    async def withdraw_referral(referral_id: uuid.UUID, withdrawal: Withdrawal, request: Request) -> Any:
        """Withdraw the referral. Its history is kept."""
        agency = agency_of(request)
        touches(request, "withdraw", referral_id)
        async with changing(referral_id, agency.agency_id, erased_ok=withdrawn) as existing:
            if existing is None:
                return not_found()
            if isinstance(existing, JSONResponse):
                return existing
            if existing.status is not ReferralStatus.WITHDRAWN:
                now = clock.now()
                command = WithdrawReferral(
                    referral_id=referral_id,
                    agency_id=agency.agency_id,
                    reason=withdrawal.reason,
                    received_at=now,
                )
                command_id = await publisher.publish_command(command, correlation_of(request))
                index.add_pending(
                    Pending(
                        referral_id,
                        agency.agency_id,
                        existing.agency_reference,
                        existing.version,
                        existing.fingerprint,
                        ReferralStatus.WITHDRAWN,
                        existing.submitted_at,
                        now,
                        existing.decision,
                        tuple(existing.history),
                        command_id,
                    )
                )
        return ReferralAccepted(
            referral_id=referral_id, status=ReferralStatus.WITHDRAWN, links=_links(base_url, referral_id)
        )

    @app.get(
        "/v1/referrals/{referral_id}",
        response_model=ReferralView,
        dependencies=[bearer],
        responses=ERROR_RESPONSES,
    )
    async def get_referral(referral_id: uuid.UUID, request: Request) -> Any:
        """Current status and decision, and the MAPPA panels about it the scheme was asked to attend."""
        touches(request, "get", referral_id)
        referral = index.owned_by(referral_id, agency_of(request).agency_id)
        if referral is None:
            return not_found()
        return _view(referral, base_url, circles).model_copy(update={"mappa_panels": panels(referral_id)})

    @app.get(
        "/v1/referrals/{referral_id}/history",
        response_model=ReferralHistory,
        dependencies=[bearer],
        responses=ERROR_RESPONSES,
    )
    async def get_history(referral_id: uuid.UUID, request: Request) -> Any:
        """The ordered events of the referral: its audit trail."""
        touches(request, "history", referral_id)
        referral = index.owned_by(referral_id, agency_of(request).agency_id)
        if referral is None:
            return not_found()
        return ReferralHistory(referral_id=referral_id, events=list(referral.history))

    @app.get("/v1/referrals", response_model=ReferralList, dependencies=[bearer], responses=ERROR_RESPONSES)
    async def list_referrals(request: Request, status: ReferralStatus | None = None) -> Any:
        """This agency's referrals, newest first, optionally with one status."""
        views = [_view(r, base_url, circles) for r in index.of_agency(agency_of(request).agency_id)]
        views = [v for v in views if status is None or v.status is status]
        views.sort(key=lambda v: v.submitted_at, reverse=True)
        touches(request, "list", *(v.referral_id for v in views))
        return ReferralList(referrals=views)

    concern_errors: dict[int | str, dict[str, Any]] = {
        **ERROR_RESPONSES,
        404: {"model": Problem, "description": "No such concern, or another agency's"},
    }

    def concern_not_found() -> JSONResponse:
        return problem(404, "Not Found", "No concern with that id for your agency.")

    @app.get("/v1/concerns", response_model=ConcernList, dependencies=[bearer], responses=ERROR_RESPONSES)
    async def list_concerns(request: Request, state: ConcernState | None = None) -> Any:
        """Concerns raised in this agency's circles, newest first, optionally in one state (`open`: not
        acknowledged yet). The summaries are read one at a time (`GET /v1/concerns/{concern_id}`)."""
        found = circles.concerns_of(agency_of(request).agency_id)
        views = [
            circle_rules.concern_view(entry, c, base_url, circles.acknowledged_at(c.concern_id))
            for entry, c in found
        ]
        views = [v for v in views if state is None or v.state is state]
        views.sort(key=lambda v: (v.raised_at, str(v.concern_id)), reverse=True)
        touches(request, "concerns", *sorted({v.referral_id for v in views}))
        return ConcernList(concerns=views)

    @app.get(
        "/v1/concerns/{concern_id}",
        response_model=ConcernDetail,
        dependencies=[bearer],
        responses=concern_errors,
    )
    async def get_concern(concern_id: uuid.UUID, request: Request) -> Any:
        """One concern with its summary (to the referring agency only)."""
        found = circles.concern_of(concern_id, agency_of(request).agency_id)
        if found is None:
            touches(request, "concern")
            return concern_not_found()
        entry, concern = found
        touches(request, "concern", entry.referral_id)
        at = circles.acknowledged_at(concern_id)
        return circle_rules.concern_view(entry, concern, base_url, at, with_summary=True)

    @app.post(
        "/v1/concerns/{concern_id}/acknowledgement",
        response_model=ConcernView,
        dependencies=[bearer],
        responses=concern_errors,
    )
    async def acknowledge_concern(concern_id: uuid.UUID, body: Acknowledgement, request: Request) -> Any:
        """Acknowledge a concern: its state becomes `acknowledged` (an urgent one is no longer escalated).
        Acknowledging again answers the same and changes nothing."""
        agency = agency_of(request)
        found = circles.concern_of(concern_id, agency.agency_id)
        if found is None:
            touches(request, "acknowledge_concern")
            return concern_not_found()
        entry, concern = found
        touches(request, "acknowledge_concern", entry.referral_id)
        async with locks.hold(concern_id):
            if concern.acknowledged_at is None and circles.acknowledged_at(concern_id) is None:
                now = clock.now()
                command = AcknowledgeConcern(
                    command_id=derive_id(concern_id, "acknowledge"),  # the same on a retry
                    referral_id=entry.referral_id,
                    requested_by=f"agency:{agency.agency_id}",
                    requested_at=now,
                    concern_id=concern_id,
                    agency_id=agency.agency_id,
                    note=body.note,
                )
                await publisher.publish_command(command, correlation_of(request))
                circles.acknowledge(concern_id, now)
                log.info(
                    "concern_acknowledged",
                    concern_id=str(concern_id),
                    referral_id=str(entry.referral_id),
                    agency_id=agency.agency_id,
                )
        return circle_rules.concern_view(entry, concern, base_url, circles.acknowledged_at(concern_id))

    install_probes(app, ready)

    app.add_middleware(
        PartnerGate,
        authenticator=authenticator,
        access_log=access_log,
        clock=clock,
        limiter=limiter or RateLimiter(per_minute=0, burst=0),
        max_body=max_body,
    )
    app.add_middleware(Hardened, policy=API_POLICY)  # security headers; no-store: referrals are personal
    install_metrics(app, metrics or Metrics(SERVICE), route=metrics_route)
    return app


class KafkaCommandPublisher:
    """Publishes commands to the worker's topic; each envelope carries the request's correlation id."""

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher

    async def publish_command(self, command: Event, correlation_id: str) -> str:
        envelope: Envelope = self.publisher.envelope(command, correlation_id)
        await self.publisher.publish(command, envelope)
        return str(envelope.id)


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document, for ``schemas/openapi.json`` (no broker needed)."""

    class _Nobody:
        def authenticate(self, api_key: str) -> AgencyRecord | None:
            return None

    class _Nowhere:
        async def publish_command(self, command: Event, correlation_id: str) -> str | None:
            raise RuntimeError("not connected")

        async def record(self, *_: Any, **__: Any) -> None:
            raise RuntimeError("not connected")

    nowhere = _Nowhere()
    app = create_api(
        authenticator=_Nobody(), index=ReferralIndex(), publisher=nowhere, access_log=nowhere, base_url=""
    )
    document: dict[str, Any] = json.loads(json.dumps(app.openapi()))
    return document


def build_api(settings: ReferralsSettings) -> FastAPI:
    """The API wired to Kafka: agency directory, state view, command publisher (used by the entry point)."""
    bootstrap = settings.bootstrap_servers()
    prefix = settings.topic_prefix
    directory = AgencyDirectory(bootstrap, prefix)
    state = settings.state_dir("referrals-api")
    # Every request waits for its records' acknowledgements in turn (a new referral's data key, then its
    # command, then the access record): no lingering before a send (issue 13; docs/benchmarks.md).
    sealer = build_sealer(
        settings, ["referral"], client_id="circles-referrals-api-keys", directory=state, linger_ms=0
    )
    read_model = ReferralReadModel(bootstrap, sealer, prefix, directory=state / REFERRALS_STATE.name)
    mappa_panels = MappaPanels(bootstrap, prefix, directory=state / COORDINATOR_RECORDS.name)
    circles = CirclesReadModel(bootstrap, sealer, prefix)
    refusals = RefusalReader(bootstrap, read_model.index, prefix)
    metrics = Metrics(SERVICE)
    publisher = Publisher(
        bootstrap,
        "/circles/referrals/api",
        prefix=prefix,
        metrics=metrics,
        sealer=sealer,
        timeout_s=settings.publish_timeout_s,
        linger_ms=0,
        clock=clock_from_setting(settings.clock),
    )
    started = {"ready": False}
    probes = ProbeServer(
        settings.health_host,
        settings.health_port,
        metrics,
        lambda: (ready(), "ready" if ready() else "starting"),
    )

    def ready() -> bool:
        return supervision.healthy() and started["ready"]

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await probes.start()  # /metrics (and probes) on their own listener, never the public port
        await together(publisher.start(), sealer.start(), directory.start(), mappa_panels.view.start())
        # the read model and the circles open sealed records: after the sealer
        await together(read_model.start(), circles.start(), refusals.start())

        async def small_views() -> None:
            async with asyncio.timeout(120):
                await together(directory.view.sync(), mappa_panels.view.sync(), circles.view.sync())

        # ready only once the read model has caught up, however long a first start reads
        await together(small_views(), read_model.view.caught_up())
        started["ready"] = True
        log.info("api_ready", referrals=len(read_model.index), read=read_model.view.read)
        try:
            yield
        finally:
            await mappa_panels.view.stop()
            await refusals.stop()
            await circles.stop()
            await read_model.stop()
            await directory.stop()
            await sealer.stop()
            await publisher.stop()
            await probes.stop()

    return create_api(
        authenticator=directory,
        index=read_model.index,
        publisher=KafkaCommandPublisher(publisher),
        circles=circles.index,
        access_log=AccessLog(publisher),
        base_url=settings.base_url(),
        clock=clock_from_setting(settings.clock),
        limiter=RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst),
        max_body=settings.max_body_bytes,
        lifespan=lifespan,
        ready=ready,
        metrics=metrics,
        panels=mappa_panels.of,
        metrics_route=False,
    )
