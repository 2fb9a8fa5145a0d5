"""The coordinator page: sign in, the inbox of proposals, a proposal with its reasons and the decision,
volunteers with their due dates, the referral queue against the service levels, the yearly target, and
the commissioner report (page, CSV, SVG chart).

Server-rendered HTML that works without JavaScript; a small script keeps the inbox current over
Server-Sent Events and announces changes to screen readers. Volunteers, proposals and decisions go
through the matching service's HTTP API; referral progress and dead letters come from this service's
own projection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from aiokafka.errors import KafkaError
from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from schemas.coordinator_api import DecisionRequest, ProposalView, VolunteerView
from schemas.envelope import Event
from schemas.events.circles import CoreMemberAttendance, EndReason
from schemas.events.coordinator import CoordinatorAccount, PasswordHash, SchemeRecord
from services.accounts.sessions import EndedSessions, LocalSessions, still_valid
from services.accounts.sign_in import SignIn, csrf_ok
from services.accounts.throttle import SignInThrottle, ThrottleLimits
from services.coordinator.accounts import AccountDirectory, AccountExists
from services.coordinator.circle_commands import CircleCommands, CircleErased, KafkaCommandSink
from services.coordinator.domain import records
from services.coordinator.domain.circles import CircleView, in_order
from services.coordinator.domain.facts import DeadLetterFact
from services.coordinator.domain.passwords import generated_password, hash_password
from services.coordinator.domain.queue import QUEUE_ORDER, queue
from services.coordinator.domain.report import (
    COLOURS,
    Period,
    build_report,
    chart,
    report_csv,
    target_year_of,
)
from services.coordinator.domain.scheme_return import (
    SchemeHistory,
    SchemeReturn,
    return_chart,
    return_csv,
    scheme_return,
)
from services.coordinator.domain.targets import SchemeTargets, load_targets
from services.coordinator.matching_client import MatchingClient, MatchingRefused, MatchingUnavailable
from services.coordinator.operations import OperationsMonitor, OperationsView
from services.coordinator.sessions import (
    COOKIE,
    Session,
    SessionSigner,
    coordinator_sessions,
    warn_without_session_secret,
)
from services.coordinator.settings import CoordinatorSettings
from services.coordinator.views import CoordinatorViews
from services.coordinator.volunteer_accounts import VolunteerAccountDirectory
from services.matching.domain.policy import load_policy
from services.referral_progress.progress import ReferralProgress
from services.referral_progress.service_levels import ServiceLevels
from services.referral_progress.workdays import local, scheme_today
from services.runtime import supervision
from services.runtime.clock import Clock, clock_from_setting
from services.runtime.http import PAGE_POLICY, Hardened, install_metrics, install_probes
from services.runtime.kafka import Publisher
from services.runtime.lifecycle import running
from services.runtime.logs import get_logger
from services.runtime.metrics import Metrics

log = get_logger(__name__)
HERE = Path(__file__).resolve().parent
SERVICE = "coordinator-web"
DUE_SOON_DAYS = 60
MAX_FORM_BODY = 64 * 1024
"""The largest form the page takes, whole (a decision with its note is a few KiB): 413 beyond it, before
the form is parsed (the framework's own limit is per field)."""


class _SignInFirst(Exception):
    """No session on a page: the exception handler redirects to the sign-in page."""


class _NotSignedIn(Exception):
    """No session on a fragment, file or stream: 401."""


class Accounts(Protocol):
    def sign_in(self, account_id: str, password: str) -> CoordinatorAccount | None:
        """Blocking (scrypt): called in a worker thread, never on the event loop."""
        ...

    def get(self, account_id: str) -> CoordinatorAccount | None:
        """The account as last set (disabled or not), for the session check on every request."""
        ...


class Matching(Protocol):
    async def proposals(self, status: str | None = None) -> list[ProposalView]: ...
    async def proposal(self, proposal_id: uuid.UUID) -> ProposalView | None: ...
    async def volunteers(self) -> list[VolunteerView]: ...
    async def decide(self, proposal_id: uuid.UUID, request: DecisionRequest, by: str) -> Any: ...


class Facts(Protocol):
    def referrals(self) -> list[ReferralProgress]: ...
    def dead_letters(self) -> list[DeadLetterFact]: ...


class Circles(Protocol):
    def circles(self) -> list[CircleView]: ...
    def circle(self, circle_id: str) -> CircleView | None: ...


class NoCircles:
    def circles(self) -> list[CircleView]:
        return []

    def circle(self, circle_id: str) -> CircleView | None:
        return None


class VolunteerAccounts(Protocol):
    def ids(self) -> set[str]: ...
    async def add(self, volunteer_id: str, password: PasswordHash, created_by: str) -> Any: ...


class OpenProposals:
    """The open proposals, asked of the matching API at most once a second however many pages listen."""

    def __init__(self, matching: Matching) -> None:
        self.matching = matching
        self._at = 0.0
        self._ids: tuple[str, ...] = ()
        self._lock = asyncio.Lock()

    async def ids(self) -> tuple[str, ...]:
        async with self._lock:
            if time.monotonic() - self._at >= 1.0:
                with contextlib.suppress(MatchingUnavailable):  # keep showing the last known
                    self._ids = tuple(str(p.proposal_id) for p in await self.matching.proposals("open"))
                self._at = time.monotonic()
            return self._ids


def create_web(
    *,
    accounts: Accounts,
    matching: Matching,
    facts: Facts,
    signer: SessionSigner,
    clock: Clock,
    levels: ServiceLevels,
    yearly_target: int,
    target_year_starts_month: int,
    secure_cookies: bool = False,
    operations: Callable[[], OperationsView | None] = lambda: None,
    lifespan: Any = None,
    ready: Callable[[], bool] = lambda: True,
    scheme_events: Callable[[], list[Event]] = lambda: [],
    targets: SchemeTargets | None = None,
    record: Callable[[SchemeRecord], Awaitable[None]] | None = None,
    sign_in_limits: ThrottleLimits | None = None,
    sessions: EndedSessions | None = None,
    circles: Circles | None = None,
    commands: CircleCommands | None = None,
    volunteer_accounts: VolunteerAccounts | None = None,
) -> FastAPI:
    """``sessions``: where ended sessions are recorded and looked up (the sessions topic, shared by every
    page process); without it, this process alone (tests). ``scheme_events``: the history the
    commissioner's return is computed from (the archive and the scheme's records); ``record`` writes a
    new record (a MAPPA panel, a mentoring session, an audit)."""
    scheme_targets = targets or load_targets()
    app = FastAPI(
        title="Circles coordinator", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(
        Hardened,
        policy=PAGE_POLICY,
        no_store=lambda path: not path.startswith("/static/"),  # every page may show personal data
        max_body=MAX_FORM_BODY,
    )
    templates = Jinja2Templates(directory=[HERE / "templates", HERE / "shared_templates"])
    templates.env.filters["when"] = lambda moment: (
        local(moment).strftime("%-d %b %Y, %H:%M") if moment else ""
    )
    templates.env.filters["day"] = lambda day: day.strftime("%-d %b %Y") if day else ""
    open_proposals = OpenProposals(matching)
    ended_sessions: EndedSessions = sessions or LocalSessions()
    circle_source: Circles = circles or NoCircles()

    def session_of(request: Request) -> Session | None:
        """The request's session, checked on the server side: signed, unexpired, its account enabled, not
        ended by a sign-out, a disabling or a password reset."""
        session = signer.read(request.cookies.get(COOKIE))
        if session is None or not still_valid(session, accounts.get(session.account_id), ended_sessions):
            return None
        return session

    def page(
        request: Request, name: str, session: Session | None, status: int = 200, **context: Any
    ) -> HTMLResponse:
        return templates.TemplateResponse(
            request, name, {"session": session, "now": clock.now(), **context}, status_code=status
        )

    def signed_in(request: Request) -> Session:
        """Every page's session check, as a dependency: the session, or a redirect to the sign-in page."""
        session = session_of(request)
        if session is None:
            raise _SignInFirst()
        return session

    def signed_in_quietly(request: Request) -> Session:
        """The same for what scripts fetch (fragments, files, the live stream): 401, no redirect."""
        session = session_of(request)
        if session is None:
            raise _NotSignedIn()
        return session

    @app.exception_handler(_SignInFirst)
    async def sign_in_first(request: Request, _: _SignInFirst) -> Response:
        return RedirectResponse(f"/sign-in?next={quote(request.url.path)}", status_code=303)

    @app.exception_handler(_NotSignedIn)
    async def not_signed_in(_: Request, __: _NotSignedIn) -> Response:
        return Response(status_code=401)

    def form_expired(request: Request, session: Session) -> HTMLResponse:
        return page(
            request,
            "error.html",
            session,
            status=403,
            title="Form expired",
            message="This form has expired or did not come from this page. Reload it and try again.",
        )

    async def unavailable(request: Request, session: Session) -> HTMLResponse:
        return page(request, "unavailable.html", session, status=503, title="Matching is not answering")

    install_probes(app, ready)

    SignIn(
        accounts=accounts,
        names=lambda found: (found.account_id, found.display_name),
        cookie=COOKIE,
        signer=signer,
        throttle=SignInThrottle(sign_in_limits or ThrottleLimits()),
        ended=ended_sessions,
        secure_cookies=secure_cookies,
        not_right="The account name or password is not right.",
        log=log,
    ).install(app, home="/proposals", page=page, session_of=session_of)

    @app.get("/")
    async def home() -> RedirectResponse:
        return RedirectResponse("/proposals", status_code=303)

    async def volunteer_names() -> dict[str, str]:
        return {v.volunteer_id: v.name for v in await matching.volunteers()}

    @app.get("/proposals", response_class=HTMLResponse)
    async def proposals_page(request: Request, session: Session = Depends(signed_in)) -> Response:
        try:
            listed = await matching.proposals()
        except MatchingUnavailable:
            return await unavailable(request, session)
        open_ones = [p for p in listed if p.status == "open"]
        decided = [p for p in listed if p.status != "open"][:20]
        return page(
            request,
            "proposals.html",
            session,
            title="Match proposals",
            open_proposals=open_ones,
            decided=decided,
        )

    @app.get("/proposals/list", response_class=HTMLResponse)
    async def proposals_fragment(request: Request, session: Session = Depends(signed_in_quietly)) -> Response:
        """The inbox table alone, for the live update."""
        try:
            open_ones = await matching.proposals("open")
        except MatchingUnavailable:
            return Response(status_code=503)
        return page(request, "_proposal_table.html", session, open_proposals=open_ones)

    @app.get("/proposals/{proposal_id}", response_class=HTMLResponse)
    async def proposal_page(
        request: Request,
        proposal_id: uuid.UUID,
        decided: str = "",
        error: str = "",
        session: Session = Depends(signed_in),
    ) -> Response:
        try:
            proposal = await matching.proposal(proposal_id)
            names = await volunteer_names()
        except MatchingUnavailable:
            return await unavailable(request, session)
        if proposal is None:
            return page(request, "not_found.html", session, status=404, title="Proposal not found")
        replacement = None
        if proposal.status == "rejected":
            replacement = next(
                (
                    p
                    for p in await matching.proposals()
                    if p.referral_id == proposal.referral_id and p.attempt > proposal.attempt
                ),
                None,
            )
        return page(
            request,
            "proposal.html",
            session,
            title=f"Proposal for referral {proposal.agency_reference}",
            proposal=proposal,
            names=names,
            decided=decided,
            error=error,
            replacement=replacement,
        )

    @app.post("/proposals/{proposal_id}/decision")
    async def decide(
        request: Request,
        proposal_id: uuid.UUID,
        outcome: str = Form(""),
        note: str = Form(""),
        csrf_token: str = Form(""),
        set_aside: list[str] = Form(default=[]),  # noqa: B008
        session: Session = Depends(signed_in),
    ) -> Response:
        if not csrf_ok(session, csrf_token):
            return form_expired(request, session)
        try:
            decision = DecisionRequest(
                outcome=outcome,
                rejected_volunteer_ids=set_aside if outcome == "reject" else [],
                note=note.strip() or None,
            )
        except ValidationError:
            return RedirectResponse(f"/proposals/{proposal_id}?error=choose", status_code=303)
        try:
            await matching.decide(proposal_id, decision, session.account_id)
        except MatchingRefused as refused:
            log.info("decision_refused", proposal_id=str(proposal_id), status=refused.status)
            return RedirectResponse(
                f"/proposals/{proposal_id}?error={quote(refused.detail)}", status_code=303
            )
        except MatchingUnavailable:
            return await unavailable(request, session)
        log.info(
            "decision_recorded",
            proposal_id=str(proposal_id),
            outcome=decision.outcome,
            account_id=session.account_id,
        )
        return RedirectResponse(f"/proposals/{proposal_id}?decided={decision.outcome}", status_code=303)

    @app.get("/volunteers", response_class=HTMLResponse)
    async def volunteers_page(request: Request, session: Session = Depends(signed_in)) -> Response:
        try:
            volunteers = await matching.volunteers()
        except MatchingUnavailable:
            return await unavailable(request, session)
        today = scheme_today(clock.now())
        return page(
            request,
            "volunteers.html",
            session,
            title="Volunteers",
            volunteers=volunteers,
            today=today,
            due_soon=DUE_SOON_DAYS,
            accounts=volunteer_accounts.ids() if volunteer_accounts is not None else None,
        )

    @app.get("/referrals", response_class=HTMLResponse)
    async def referrals_page(request: Request, session: Session = Depends(signed_in)) -> Response:
        rows = queue(facts.referrals(), clock.now(), levels)
        return page(
            request,
            "referrals.html",
            session,
            title="Referral queue",
            rows=rows,
            order=QUEUE_ORDER,
            levels=levels,
        )

    @app.get("/target", response_class=HTMLResponse)
    async def target_page(request: Request, session: Session = Depends(signed_in)) -> Response:
        start, end, label = target_year_of(scheme_today(clock.now()), target_year_starts_month)
        circles = sorted(
            (
                r
                for r in facts.referrals()
                if r.circle_formed_at and start <= local(r.circle_formed_at).date() < end
            ),
            key=lambda r: r.circle_formed_at or clock.now(),
        )
        return page(
            request,
            "target.html",
            session,
            title="Yearly target",
            circles=circles,
            target=yearly_target,
            year=label,
        )

    def report_for(start: str, end: str, volunteers: list[VolunteerView]) -> Any:
        today = scheme_today(clock.now())
        year_start, _, _ = target_year_of(today, target_year_starts_month)
        period = Period(
            start=date.fromisoformat(start) if start else year_start,
            end=date.fromisoformat(end) if end else today,
        )
        return build_report(
            facts.referrals(),
            volunteers,
            facts.dead_letters(),
            period,
            yearly_target=yearly_target,
            target_year_starts_month=target_year_starts_month,
            holidays=levels.holidays,
            now=clock.now(),
        )

    def return_for(report: Any, volunteers: list[VolunteerView]) -> SchemeReturn:
        history = SchemeHistory(events=scheme_events(), volunteers=volunteers)
        return scheme_return(history, report.period, scheme_targets)

    @app.get("/report", response_class=HTMLResponse)
    async def report_page(
        request: Request,
        start: str = "",
        end: str = "",
        recorded: str = "",
        error: str = "",
        session: Session = Depends(signed_in),
    ) -> Response:
        try:
            volunteers = await matching.volunteers()
            report = report_for(start, end, volunteers)
        except (ValueError, ValidationError):
            return page(
                request,
                "error.html",
                session,
                status=422,
                title="Report period",
                message="Give the period as two dates, the start no later than the end.",
            )
        except MatchingUnavailable:
            return await unavailable(request, session)
        svg = templates.get_template("report_chart.svg.j2").render(
            report=report, chart=chart(report), colours=COLOURS
        )
        figures = return_for(report, volunteers)
        return_svg = templates.get_template("return_chart.svg.j2").render(
            figures=figures, chart=return_chart(figures)
        )
        return page(
            request,
            "report.html",
            session,
            title="Commissioner report",
            report=report,
            chart_svg=svg,
            figures=figures,
            return_svg=return_svg,
            query=f"start={report.period.start}&end={report.period.end}",
            recorded=recorded,
            error=error,
            today=scheme_today(clock.now()),
        )

    @app.get("/report/return.csv")
    async def return_csv_file(
        start: str = "", end: str = "", _: Session = Depends(signed_in_quietly)
    ) -> Response:
        try:
            volunteers = await matching.volunteers()
            figures = return_for(report_for(start, end, volunteers), volunteers)
        except (ValueError, ValidationError):
            return PlainTextResponse("Give the period as two dates, the start no later than the end.", 422)
        except MatchingUnavailable:
            return PlainTextResponse("The matching service is not answering; try again.", 503)
        name = f"circles-return-{figures.period.from_}-{figures.period.to}.csv"
        return PlainTextResponse(
            return_csv(figures),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    async def keep(
        request: Request, session: Session, csrf_token: str, make: Callable[[str], SchemeRecord], kind: str
    ) -> Response:
        if not csrf_ok(session, csrf_token):
            return form_expired(request, session)
        if record is None:
            return page(request, "unavailable.html", session, status=503, title="Records cannot be written")
        try:
            made = make(f"coordinator:{session.account_id}")
        except (ValueError, ValidationError) as refused:
            said = str(refused).splitlines()[0] if isinstance(refused, records.RecordRefused) else None
            message = said or "Check the form: a referral id, a date (YYYY-MM-DD) and the choices are needed."
            return RedirectResponse(f"/report?error={quote(message)}#records", status_code=303)
        about = getattr(made, "referral_id", None)
        if about is not None and not any(r.referral_id == about for r in facts.referrals()):
            return RedirectResponse(f"/report?error={quote(f'no referral {about}')}#records", status_code=303)
        await record(made)
        log.info("record_kept", kind=kind, record_id=str(made.record_id()), account_id=session.account_id)
        return RedirectResponse(f"/report?recorded={kind}#records", status_code=303)

    def record_form(kind: str) -> Callable[..., Awaitable[Response]]:
        """The handler of one record form: every form's fields, those of other kinds left empty."""

        async def keep_form(
            request: Request,
            referral: str = Form(""),
            level: str = Form(""),
            held_on: str = Form(""),
            attended: str = Form(""),
            minutes: str = Form(""),
            area: str = Form(""),
            result: str = Form(""),
            actions: str = Form(""),
            csrf_token: str = Form(""),
            session: Session = Depends(signed_in),
        ) -> Response:
            form = {
                "referral": referral,
                "level": level,
                "held_on": held_on,
                "attended": attended,
                "minutes": minutes,
                "area": area,
                "result": result,
                "actions": actions,
            }
            return await keep(
                request, session, csrf_token, lambda by: records.from_form(kind, form, by, clock.now()), kind
            )

        return keep_form

    for form_name, record_kind in records.FORMS.items():
        app.post(f"/records/{form_name}")(record_form(record_kind))

    @app.get("/report.csv")
    async def report_csv_file(
        request: Request,
        start: str = "",
        end: str = "",
        _: Session = Depends(signed_in_quietly),
    ) -> Response:
        report = report_for(start, end, await matching.volunteers())
        name = f"circles-report-{report.period.start}-{report.period.end}.csv"
        return PlainTextResponse(
            report_csv(report),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @app.get("/report.svg")
    async def report_svg_file(
        request: Request,
        start: str = "",
        end: str = "",
        _: Session = Depends(signed_in_quietly),
    ) -> Response:
        report = report_for(start, end, await matching.volunteers())
        svg = templates.get_template("report_chart.svg.j2").render(
            report=report, chart=chart(report), colours=COLOURS
        )
        return Response(svg, media_type="image/svg+xml")

    @app.get("/circles", response_class=HTMLResponse)
    async def circles_page(
        request: Request, status: str = "active", session: Session = Depends(signed_in)
    ) -> Response:
        now = clock.now()
        today = scheme_today(now)
        shown = "ended" if status == "ended" else "active"
        listed = in_order((c for c in circle_source.circles() if c.status == shown), now, today)
        counts = {
            kind: sum(1 for c in circle_source.circles() if c.status == kind) for kind in ("active", "ended")
        }
        return page(
            request,
            "circles.html",
            session,
            title="Ended circles" if shown == "ended" else "Active circles",
            circles=listed,
            shown=shown,
            counts=counts,
            references=_references(facts.referrals()),
            today=today,
        )

    @app.get("/circles/{circle_id}", response_class=HTMLResponse)
    async def circle_page(
        request: Request,
        circle_id: str,
        done: str = "",
        session: Session = Depends(signed_in),
    ) -> Response:
        circle = circle_source.circle(circle_id)
        if circle is None:
            return page(request, "not_found.html", session, status=404, title="Circle not found")
        return circle_detail(request, session, circle, done=done)

    def circle_detail(
        request: Request,
        session: Session,
        circle: CircleView,
        *,
        done: str = "",
        errors: dict[str, list[str]] | None = None,
        form: dict[str, str] | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        now = clock.now()
        reference = _references(facts.referrals()).get(circle.referral_id, circle.circle_id)
        return page(
            request,
            "circle.html",
            session,
            status=status,
            title=f"Circle for referral {reference}",
            circle=circle,
            today=scheme_today(now),
            done=done,
            errors=errors or {},
            form=form or {},
            attendance=[a.value for a in CoreMemberAttendance],
            reasons=[r.value for r in EndReason],
        )

    async def circle_command(
        request: Request,
        session: Session,
        circle_id: str,
        csrf_token: str,
        what: str,
        form: dict[str, str],
        build: Callable[[CircleCommands, CircleView], Any],
    ) -> Response:
        if not csrf_ok(session, csrf_token):
            return form_expired(request, session)
        circle = circle_source.circle(circle_id)
        if circle is None:
            return page(request, "not_found.html", session, status=404, title="Circle not found")
        if commands is None:
            return page(request, "unavailable.html", session, status=503, title="Circles are not answering")
        try:
            await build(commands, circle)
        except ValidationError as invalid:
            return circle_detail(
                request, session, circle, errors={what: field_errors(invalid)}, form=form, status=422
            )
        except CircleErased as erased:
            return circle_detail(
                request, session, circle, errors={what: [str(erased)]}, form=form, status=409
            )
        except KafkaError:
            return page(request, "unavailable.html", session, status=503, title="Circles are not answering")
        log.info(
            "circle_command_requested", what=what, circle_id=circle.circle_id, account_id=session.account_id
        )
        return RedirectResponse(f"/circles/{circle.circle_id}?done={what}", status_code=303)

    @app.post("/circles/{circle_id}/meeting")
    async def record_meeting(
        request: Request,
        circle_id: str,
        held_on: str = Form(""),
        attendance: str = Form(""),
        volunteers: list[str] = Form(default=[]),  # noqa: B008
        csrf_token: str = Form(""),
        session: Session = Depends(signed_in),
    ) -> Response:
        form = {"held_on": held_on, "attendance": attendance}
        return await circle_command(
            request,
            session,
            circle_id,
            csrf_token,
            "meeting",
            form,
            lambda c, circle: c.meeting(
                circle.referral_id,
                f"coordinator:{session.account_id}",
                held_on=_date_or_raw(held_on),
                attendance=attendance,
                volunteer_ids=[v for v in volunteers if v in circle.volunteer_ids],
            ),
        )

    @app.post("/circles/{circle_id}/review")
    async def record_review(
        request: Request,
        circle_id: str,
        held_on: str = Form(""),
        csrf_token: str = Form(""),
        session: Session = Depends(signed_in),
    ) -> Response:
        return await circle_command(
            request,
            session,
            circle_id,
            csrf_token,
            "review",
            {"review_held_on": held_on},
            lambda c, circle: c.review(
                circle.referral_id, f"coordinator:{session.account_id}", held_on=_date_or_raw(held_on)
            ),
        )

    @app.post("/circles/{circle_id}/end")
    async def end_circle(
        request: Request,
        circle_id: str,
        outcome: str = Form(""),
        reason: str = Form(""),
        ended_on: str = Form(""),
        csrf_token: str = Form(""),
        session: Session = Depends(signed_in),
    ) -> Response:
        form = {"outcome": outcome, "reason": reason, "ended_on": ended_on}
        return await circle_command(
            request,
            session,
            circle_id,
            csrf_token,
            "end",
            form,
            lambda c, circle: c.end(
                circle.referral_id,
                f"coordinator:{session.account_id}",
                outcome=outcome,
                reason=(reason or None) if outcome == "ended_early" else None,
                ended_on=_date_or_raw(ended_on),
            ),
        )

    @app.post("/volunteers/{volunteer_id}/account", response_class=HTMLResponse)
    async def add_volunteer_account(
        request: Request,
        volunteer_id: str,
        csrf_token: str = Form(""),
        session: Session = Depends(signed_in),
    ) -> Response:
        """A volunteer's account for the volunteers' page; its one-time password is shown once, here."""
        if not csrf_ok(session, csrf_token):
            return form_expired(request, session)
        if volunteer_accounts is None:
            return page(request, "unavailable.html", session, status=503, title="Accounts are not answering")
        try:
            known = {v.volunteer_id for v in await matching.volunteers()}
        except MatchingUnavailable:
            return await unavailable(request, session)
        if volunteer_id not in known:
            return page(request, "not_found.html", session, status=404, title="Volunteer not found")
        password = generated_password()
        try:
            hashed = await asyncio.to_thread(hash_password, password)
            await volunteer_accounts.add(volunteer_id, hashed, session.account_id)
        except AccountExists as exists:
            return page(
                request, "error.html", session, status=409, title="Account exists", message=str(exists)
            )
        except KafkaError:
            return page(request, "unavailable.html", session, status=503, title="Accounts are not answering")
        log.info("volunteer_account_created", volunteer_id=volunteer_id, account_id=session.account_id)
        response = page(
            request,
            "volunteer_account.html",
            session,
            title="Volunteer account created",
            volunteer_id=volunteer_id,
            password=password,
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/operations", response_class=HTMLResponse)
    async def operations_page(request: Request, session: Session = Depends(signed_in)) -> Response:
        return page(request, "operations.html", session, title="Operations", ops=operations())

    @app.get("/operations/fragment", response_class=HTMLResponse)
    async def operations_fragment(
        request: Request,
        session: Session = Depends(signed_in_quietly),
    ) -> Response:
        ops = operations()
        if ops is None:
            return Response(status_code=204)
        return page(request, "_operations.html", session, ops=ops)

    @app.get("/live")
    async def live(request: Request, _: Session = Depends(signed_in_quietly)) -> Response:
        """Server-Sent Events: ``proposals`` whenever the set of open proposals changes."""

        async def stream() -> AsyncIterator[str]:
            last: tuple[str, ...] | None = None
            yield "retry: 2000\n\n"
            while not await request.is_disconnected():
                ids = await open_proposals.ids()
                if ids != last:
                    new = [i for i in ids if last is not None and i not in last]
                    yield f"event: proposals\ndata: {json.dumps({'open': len(ids), 'new': len(new)})}\n\n"
                    last = ids
                await asyncio.sleep(1.0)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    return app


def _references(progress: list[ReferralProgress]) -> dict[uuid.UUID, str]:
    """Each referral's agency reference, to name its circle on the page."""
    return {p.referral_id: p.agency_reference for p in progress if p.agency_reference}


def _date_or_raw(text: str) -> date | str:
    """A form's date, or the text as typed (the command's validation then says what is wrong with it)."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return text


def field_errors(invalid: ValidationError) -> list[str]:
    """Every field error of a refused command, in words for the page."""
    found = []
    for error in invalid.errors():
        where = ".".join(str(part) for part in error["loc"] if part not in ("body",))
        found.append(f"{where.replace('_', ' ')}: {error['msg']}" if where else str(error["msg"]))
    return found


def build_web(settings: CoordinatorSettings) -> FastAPI:
    """The page wired to Kafka (accounts, projection) and to the matching API."""
    bootstrap = settings.bootstrap_servers()
    accounts = AccountDirectory(settings)
    sessions = coordinator_sessions(settings)
    views = CoordinatorViews(bootstrap, settings.topic_prefix)
    sink = KafkaCommandSink(settings, "/circles/coordinator/web")
    volunteer_accounts = VolunteerAccountDirectory(settings)
    monitor = OperationsMonitor(bootstrap, settings.topic_prefix, settings.operations_poll_s)
    matching = MatchingClient(settings.matching_api_url, settings.coordinator_api_token)
    policy = load_policy(settings.matching_policy)
    targets = load_targets(settings.scheme_targets)
    publisher = Publisher(
        bootstrap,
        "/circles/coordinator/web",
        prefix=settings.topic_prefix,
        timeout_s=10,
        clock=clock_from_setting(settings.clock),
    )
    started = {"ready": False}

    async def record(made: SchemeRecord) -> None:
        await publisher.publish(made, publisher.envelope(made, str(made.record_id())))

    warn_without_session_secret(settings, log)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with running([accounts, publisher, sessions, views, sink, volunteer_accounts, monitor]):
            started["ready"] = True
            log.info("web_ready", referrals=len(views.referrals()))
            try:
                yield
            finally:
                await matching.close()

    clock = clock_from_setting(settings.clock)
    app = create_web(
        accounts=accounts,
        matching=matching,
        facts=views,
        circles=views,
        commands=CircleCommands(sink, clock),
        volunteer_accounts=volunteer_accounts,
        signer=SessionSigner(settings.session_secret, settings.session_hours),
        clock=clock,
        levels=settings.service_levels(),
        yearly_target=policy.yearly_target,
        target_year_starts_month=policy.target_year_starts_month,
        secure_cookies=settings.secure_cookies,
        operations=monitor.view,
        lifespan=lifespan,
        scheme_events=views.scheme_events,
        targets=targets,
        record=record,
        sign_in_limits=settings.sign_in_limits(),
        sessions=sessions,
        ready=lambda: supervision.healthy() and started["ready"],
    )
    install_metrics(app, Metrics(SERVICE))  # /metrics, as every process has (Prometheus scrapes it)
    return app
