"""The matching service's HTTP API, for the coordinator page: volunteers and proposals.

The same operations as ``circles volunteer`` and ``circles proposal`` (``operations.py``), over HTTP. A
change is answered once the matching worker has applied it (or refused it, with why). Errors are RFC 9457
problem details.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import Depends, FastAPI, Header, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from schemas.common import SLUG_PATTERN, VolunteerId
from schemas.coordinator_api import (
    ACTING_ACCOUNT_HEADER,
    AvailabilityUpdate,
    ConflictDeclaration,
    DatedRecord,
    DecisionAccepted,
    DecisionRequest,
    ProposalView,
    VolunteerRegistration,
    VolunteerView,
)
from schemas.events.volunteers import ChangeVolunteer, Conflict, VolunteerChange, VolunteerRecord
from schemas.partner_api import Problem
from services.matching.domain.policy import load_policy
from services.matching.domain.workflow import scheme_day
from services.matching.operations import (
    NotApplied,
    Refused,
    change_volunteer,
    decide,
    decision_watcher,
    volunteer_watcher,
)
from services.matching.settings import MatchingSettings
from services.matching.views import LiveMatchingState, MatchingState
from services.protection.sealer import build_sealer
from services.runtime import supervision
from services.runtime.clock import clock_from_setting
from services.runtime.http import (
    API_POLICY,
    Hardened,
    install_metrics,
    install_probes,
    install_problem_handlers,
    problem,
)
from services.runtime.kafka import Publisher
from services.runtime.logs import get_logger
from services.runtime.metrics import Metrics
from services.runtime.supervision import together

log = get_logger(__name__)
SERVICE = "matching-api"
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": Problem} for code in (401, 404, 409, 422, 503)}


def create_api(
    backend: Any,
    *,
    token: str,
    lifespan: Any = None,
    ready: Callable[[], bool] = lambda: True,
    metrics: Metrics | None = None,
) -> FastAPI:
    app = FastAPI(
        title="Circles matching API",
        version="1.0.0",
        summary="Volunteers and match proposals, for the scheme coordinator.",
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    bearer = HTTPBearer(auto_error=False, description="The coordinator API token")

    async def coordinator(
        credentials: HTTPAuthorizationCredentials | None = Security(bearer),
        account: str | None = Header(
            default=None,
            alias=ACTING_ACCOUNT_HEADER,
            pattern=SLUG_PATTERN,
            description="The coordinator account acting (the page's signed-in account): who decided",
        ),
    ) -> str:
        """Who acts: the account the token's holder (the coordinator page) names, else the holder itself."""
        offered = credentials.credentials if credentials else ""
        if not token or not hmac.compare_digest(offered.encode(), token.encode()):
            raise _Unauthorized()
        return account or "coordinator"

    class _Unauthorized(Exception):
        pass

    @app.exception_handler(_Unauthorized)
    async def unauthorized(_: Request, __: _Unauthorized) -> JSONResponse:
        response = problem(401, None, "Send the coordinator API token as 'Authorization: Bearer <token>'.")
        response.headers["WWW-Authenticate"] = 'Bearer realm="circles-matching"'
        return response

    @app.exception_handler(Refused)
    async def refused(_: Request, error: Refused) -> JSONResponse:
        return problem(error.status, None, str(error))

    @app.exception_handler(NotApplied)
    async def not_applied(_: Request, error: NotApplied) -> JSONResponse:
        return problem(503, None, str(error))

    def today() -> Any:
        return scheme_day(datetime.now(UTC))

    async def change(volunteer_id: str, kind: VolunteerChange, by: str, **details: Any) -> VolunteerRecord:
        command = ChangeVolunteer(volunteer_id=volunteer_id, change=kind, requested_by=by, **details)
        return await change_volunteer(
            backend.state(), backend.publisher, backend.volunteers, command, today()
        )

    def view_of(volunteer_id: str) -> VolunteerView | None:
        return next((v for v in backend.state().volunteers(today()) if v.volunteer_id == volunteer_id), None)

    async def answered(volunteer_id: str) -> VolunteerView:
        """The volunteer as the page should now show it (the views catch up with the change first)."""
        await backend.sync()
        view = view_of(volunteer_id)
        assert view is not None
        return view

    @app.get("/v1/volunteers", response_model=list[VolunteerView], responses=ERRORS)
    async def volunteers(by: str = Depends(coordinator)) -> Any:
        """The pool, with each volunteer's standing and due dates."""
        return backend.state().volunteers(today())

    @app.post("/v1/volunteers", response_model=VolunteerView, status_code=201, responses=ERRORS)
    async def register(registration: VolunteerRegistration, by: str = Depends(coordinator)) -> Any:
        record = VolunteerRecord(**registration.model_dump(), registered_on=today())
        await change(registration.volunteer_id, "registered", by, registration=record)
        return await answered(registration.volunteer_id)

    def dated(kind: Literal["vetted", "trained", "supervised"]) -> Any:
        async def record_date(
            volunteer_id: VolunteerId, body: DatedRecord, by: str = Depends(coordinator)
        ) -> Any:
            await change(volunteer_id, kind, by, on=body.date)
            return await answered(volunteer_id)

        return record_date

    app.post(
        "/v1/volunteers/{volunteer_id}/vetting",
        response_model=VolunteerView,
        responses=ERRORS,
        summary="Record an enhanced DBS check",
    )(dated("vetted"))
    app.post(
        "/v1/volunteers/{volunteer_id}/training",
        response_model=VolunteerView,
        responses=ERRORS,
        summary="Record core training completed",
    )(dated("trained"))
    app.post(
        "/v1/volunteers/{volunteer_id}/supervision",
        response_model=VolunteerView,
        responses=ERRORS,
        summary="Record a supervision session",
    )(dated("supervised"))

    @app.post("/v1/volunteers/{volunteer_id}/conflicts", response_model=VolunteerView, responses=ERRORS)
    async def conflict(
        volunteer_id: VolunteerId, body: ConflictDeclaration, by: str = Depends(coordinator)
    ) -> Any:
        """Declare a conflict (an area, or one referral)."""
        await change(
            volunteer_id, "conflict", by, conflict=Conflict(**body.model_dump(), declared_on=today())
        )
        return await answered(volunteer_id)

    @app.put("/v1/volunteers/{volunteer_id}/availability", response_model=VolunteerView, responses=ERRORS)
    async def availability(
        volunteer_id: VolunteerId, body: AvailabilityUpdate, by: str = Depends(coordinator)
    ) -> Any:
        await change(volunteer_id, "availability", by, availability=body.availability)
        return await answered(volunteer_id)

    @app.post("/v1/volunteers/{volunteer_id}/withdrawal", response_model=VolunteerView, responses=ERRORS)
    async def withdrawal(volunteer_id: VolunteerId, by: str = Depends(coordinator)) -> Any:
        await change(volunteer_id, "withdrawn", by)
        return await answered(volunteer_id)

    @app.get("/v1/proposals", response_model=list[ProposalView], responses=ERRORS)
    async def proposals(
        status: Literal["open", "accepted", "rejected", "cancelled"] | None = None,
        by: str = Depends(coordinator),
    ) -> Any:
        """Open proposals first, in priority order (risk, then release date), then decided ones."""
        return backend.state().proposals(status)

    @app.get("/v1/proposals/{proposal_id}", response_model=ProposalView, responses=ERRORS)
    async def proposal(proposal_id: uuid.UUID, by: str = Depends(coordinator)) -> Any:
        found = backend.state().proposal(proposal_id)
        return found[1] if found else problem(404, None, f"no proposal {proposal_id}")

    @app.post("/v1/proposals/{proposal_id}/decision", response_model=DecisionAccepted, responses=ERRORS)
    async def decision(proposal_id: uuid.UUID, body: DecisionRequest, by: str = Depends(coordinator)) -> Any:
        """Accept (the circle forms) or reject (a new proposal follows without the rejected volunteers)."""
        made, _ = await decide(backend.state(), backend.publisher, backend.decisions, proposal_id, body, by)
        await backend.sync()
        return DecisionAccepted(
            decision_id=made.decision_id,
            proposal_id=made.proposal_id,
            referral_id=made.referral_id,
            outcome=made.outcome,
        )

    install_probes(app, ready)

    app.add_middleware(Hardened, policy=API_POLICY)  # security headers; no-store: volunteers are personal
    install_metrics(app, metrics or Metrics(SERVICE))
    return app


class KafkaBackend:
    def __init__(self, settings: MatchingSettings) -> None:
        bootstrap = settings.bootstrap_servers()
        prefix = settings.topic_prefix
        # a request waits for each acknowledgement in turn: no lingering before a send (as the partner API)
        self.sealer = build_sealer(
            settings,
            ["volunteer", "decision"],
            client_id="circles-matching-api-keys",
            directory=settings.state_dir("matching-api"),
            linger_ms=0,
        )
        self.live = LiveMatchingState(bootstrap, load_policy(settings.matching_policy), self.sealer, prefix)
        self.metrics = Metrics(SERVICE)
        self.publisher = Publisher(
            bootstrap,
            "/circles/matching/api",
            prefix=prefix,
            metrics=self.metrics,
            sealer=self.sealer,
            timeout_s=settings.publish_timeout_s,
            linger_ms=0,
            clock=clock_from_setting(settings.clock),
        )
        self.volunteers = volunteer_watcher(bootstrap, prefix)
        self.decisions = decision_watcher(bootstrap, prefix)
        self.ready = False

    def state(self) -> MatchingState:
        return self.live.state()

    async def sync(self) -> None:
        async with asyncio.timeout(10):
            await self.live.sync()

    async def start(self) -> None:
        await together(
            self.publisher.start(), self.sealer.start(), self.volunteers.start(), self.decisions.start()
        )
        await self.live.start()  # its views open sealed records: after the sealer
        await self.sync()
        self.ready = True

    async def stop(self) -> None:
        await self.live.stop()
        await self.decisions.stop()
        await self.volunteers.stop()
        await self.sealer.stop()
        await self.publisher.stop()


def build_api(settings: MatchingSettings) -> FastAPI:
    backend = KafkaBackend(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await backend.start()
        log.info("api_ready", volunteers=len(backend.state().records), cases=len(backend.state().cases))
        try:
            yield
        finally:
            await backend.stop()

    return create_api(
        backend,
        token=settings.coordinator_api_token,
        lifespan=lifespan,
        ready=lambda: supervision.healthy() and backend.ready,
        metrics=backend.metrics,
    )


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document, for ``schemas/openapi-matching.json`` (no broker needed)."""
    document: dict[str, Any] = json.loads(json.dumps(create_api(None, token="").openapi()))
    return document
