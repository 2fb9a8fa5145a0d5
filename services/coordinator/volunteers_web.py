"""The volunteers' page (process ``volunteers-web``): a volunteer signs in with the account the coordinator
made, sees only their own circles and the meetings coming up, records a meeting with its minutes, sends
minutes late, and raises a concern.

Server-rendered HTML for a phone-sized screen, working without JavaScript. The same sign-in throttling and
server-side sessions as the coordinator page (``services.accounts``), of kind ``volunteer`` on their own
sessions topic; every form carries the session's CSRF token. Circles come from the coordinator service's
own view (``circles.coordinator.circles.v1``); what a volunteer records goes to the circles service as
commands, the minutes and summaries sealed under the referral's key (``circle_commands``). A circle that is
not the volunteer's own is "not found", as an unknown one is.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from aiokafka.errors import KafkaError
from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from schemas.events.circles import ConcernLevel, CoreMemberAttendance
from schemas.events.coordinator import VolunteerAccount
from services.accounts.sessions import EndedSessions, LocalSessions, SessionSigner, still_valid
from services.accounts.sign_in import SignIn, csrf_ok
from services.accounts.throttle import SignInThrottle, ThrottleLimits
from services.coordinator.circle_commands import CircleCommands, CircleErased, KafkaCommandSink
from services.coordinator.domain.circles import CircleView, next_meeting_on, of_volunteer
from services.coordinator.sessions import (
    VOLUNTEER_COOKIE,
    VOLUNTEER_KIND,
    Session,
    volunteer_sessions,
    warn_without_session_secret,
)
from services.coordinator.settings import CoordinatorSettings
from services.coordinator.views import CircleViews
from services.coordinator.volunteer_accounts import VolunteerAccountDirectory
from services.coordinator.web import _date_or_raw, field_errors
from services.referral_progress.workdays import local, scheme_today
from services.runtime import supervision
from services.runtime.clock import Clock, clock_from_setting
from services.runtime.http import PAGE_POLICY, Hardened, install_metrics, install_probes
from services.runtime.lifecycle import running
from services.runtime.logs import get_logger
from services.runtime.metrics import Metrics

log = get_logger(__name__)
HERE = Path(__file__).resolve().parent
SERVICE = "volunteers-web"
HOME = "/circles"
MAX_FORM_BODY = 256 * 1024
"""Minutes run to 20,000 characters (URL-encoded, up to about 180 KiB): more is refused with 413 unread."""


class _SignInFirst(Exception):
    pass


class _Refused(Exception):
    """A form the page itself refuses (a meeting that is not the circle's)."""


class Accounts(Protocol):
    def sign_in(self, account_id: str, password: str) -> VolunteerAccount | None: ...
    def get(self, account_id: str) -> VolunteerAccount | None: ...


class Circles(Protocol):
    def circles(self) -> list[CircleView]: ...
    def circle(self, circle_id: str) -> CircleView | None: ...


def create_volunteers_web(
    *,
    accounts: Accounts,
    circles: Circles,
    commands: CircleCommands | None,
    signer: SessionSigner,
    clock: Clock,
    meeting_every_days: int = 7,
    secure_cookies: bool = False,
    lifespan: Any = None,
    ready: Callable[[], bool] = lambda: True,
    sign_in_limits: ThrottleLimits | None = None,
    sessions: EndedSessions | None = None,
) -> FastAPI:
    if signer.kind != VOLUNTEER_KIND:
        raise ValueError("the volunteers' page signs volunteer sessions")
    app = FastAPI(
        title="Circles volunteers", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )
    app.mount("/static", StaticFiles(directory=HERE / "volunteers_static"), name="static")
    app.add_middleware(
        Hardened,
        policy=PAGE_POLICY,
        no_store=lambda path: not path.startswith("/static/"),  # every page may show personal data
        max_body=MAX_FORM_BODY,
    )
    templates = Jinja2Templates(directory=[HERE / "volunteers_templates", HERE / "shared_templates"])
    templates.env.filters["when"] = lambda moment: (
        local(moment).strftime("%-d %b %Y, %H:%M") if moment else ""
    )
    templates.env.filters["day"] = lambda day: day.strftime("%a %-d %b %Y") if day else ""
    ended_sessions: EndedSessions = sessions or LocalSessions()

    def session_of(request: Request) -> Session | None:
        session = signer.read(request.cookies.get(VOLUNTEER_COOKIE))
        if session is None or not still_valid(session, accounts.get(session.account_id), ended_sessions):
            return None
        return session

    def signed_in(request: Request) -> Session:
        session = session_of(request)
        if session is None:
            raise _SignInFirst()
        return session

    @app.exception_handler(_SignInFirst)
    async def sign_in_first(request: Request, _: _SignInFirst) -> Response:
        return RedirectResponse(f"/sign-in?next={quote(request.url.path)}", status_code=303)

    def page(
        request: Request, name: str, session: Session | None, status: int = 200, **context: Any
    ) -> HTMLResponse:
        return templates.TemplateResponse(
            request, name, {"session": session, "now": clock.now(), **context}, status_code=status
        )

    def message(request: Request, session: Session, status: int, title: str, text: str) -> HTMLResponse:
        return page(request, "message.html", session, status=status, title=title, message=text)

    def not_found(request: Request, session: Session) -> HTMLResponse:
        return message(request, session, 404, "Circle not found", "There is no such circle among yours.")

    def not_available(request: Request, session: Session) -> HTMLResponse:
        text = "Recording is not available just now. Try again in a few minutes."
        return message(request, session, 503, "Not available", text)

    def own_circle(session: Session, circle_id: str) -> CircleView | None:
        """The circle if it is the volunteer's own; an unknown circle and another's look the same."""
        circle = circles.circle(circle_id)
        return circle if circle is not None and session.account_id in circle.volunteer_ids else None

    install_probes(app, ready)

    SignIn(
        accounts=accounts,
        names=lambda found: (found.volunteer_id, found.volunteer_id),
        cookie=VOLUNTEER_COOKIE,
        signer=signer,
        throttle=SignInThrottle(sign_in_limits or ThrottleLimits()),
        ended=ended_sessions,
        secure_cookies=secure_cookies,
        not_right="The volunteer id or password is not right.",
        log=log,
        log_fields={"kind": VOLUNTEER_KIND},
    ).install(app, home=HOME, page=page, session_of=session_of)

    @app.get("/")
    async def home() -> RedirectResponse:
        return RedirectResponse(HOME, status_code=303)

    @app.get("/circles", response_class=HTMLResponse)
    async def my_circles(request: Request, session: Session = Depends(signed_in)) -> Response:
        now = clock.now()
        today = scheme_today(now)
        mine = of_volunteer(circles.circles(), session.account_id)
        upcoming = sorted(
            ((day, c) for c in mine if (day := next_meeting_on(c, today, meeting_every_days)) is not None),
            key=lambda pair: pair[0],
        )
        return page(
            request,
            "circles.html",
            session,
            title="Your circles",
            active=[c for c in mine if c.status == "active"],
            ended=[c for c in mine if c.status == "ended"],
            upcoming=upcoming,
            today=today,
        )

    def circle_page(
        request: Request,
        session: Session,
        circle: CircleView,
        *,
        done: str = "",
        errors: dict[str, list[str]] | None = None,
        form: dict[str, str] | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        today = scheme_today(clock.now())
        return page(
            request,
            "circle.html",
            session,
            status=status,
            title=f"Circle formed {circle.formed_on.strftime('%-d %b %Y')}",
            circle=circle,
            today=today,
            next_meeting=next_meeting_on(circle, today, meeting_every_days),
            done=done,
            errors=errors or {},
            form=form or {},
            attendance=[a.value for a in CoreMemberAttendance],
            levels=[level.value for level in ConcernLevel],
        )

    @app.get("/circles/{circle_id}", response_class=HTMLResponse)
    async def circle_detail(
        request: Request, circle_id: str, done: str = "", session: Session = Depends(signed_in)
    ) -> Response:
        circle = own_circle(session, circle_id)
        if circle is None:
            return not_found(request, session)
        return circle_page(request, session, circle, done=done)

    async def command(
        request: Request,
        session: Session,
        circle_id: str,
        csrf_token: str,
        what: str,
        form: dict[str, str],
        send: Callable[[CircleCommands, CircleView], Awaitable[Any]],
    ) -> Response:
        if not csrf_ok(session, csrf_token):
            text = "This form has expired or did not come from this page. Reload it and try again."
            return message(request, session, 403, "Form expired", text)
        circle = own_circle(session, circle_id)
        if circle is None:
            return not_found(request, session)
        if circle.status != "active":
            return circle_page(
                request, session, circle, errors={what: ["the circle has ended"]}, form=form, status=409
            )
        if commands is None:
            return not_available(request, session)
        try:
            await send(commands, circle)
        except ValidationError as invalid:
            return circle_page(
                request, session, circle, errors={what: field_errors(invalid)}, form=form, status=422
            )
        except _Refused as refused:
            return circle_page(request, session, circle, errors={what: [str(refused)]}, form=form, status=422)
        except CircleErased:
            return not_found(request, session)
        except KafkaError:
            return not_available(request, session)
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
        minutes: str = Form(""),
        csrf_token: str = Form(""),
        session: Session = Depends(signed_in),
    ) -> Response:
        form = {"held_on": held_on, "attendance": attendance, "minutes": minutes}
        return await command(
            request,
            session,
            circle_id,
            csrf_token,
            "meeting",
            form,
            lambda c, circle: c.meeting(
                circle.referral_id,
                f"volunteer:{session.account_id}",
                held_on=_date_or_raw(held_on),
                attendance=attendance,
                volunteer_ids=sorted(
                    {v for v in volunteers if v in circle.volunteer_ids} | {session.account_id}
                ),
                minutes=minutes.strip() or None,
            ),
        )

    @app.post("/circles/{circle_id}/minutes")
    async def send_minutes(
        request: Request,
        circle_id: str,
        meeting_id: str = Form(""),
        minutes: str = Form(""),
        csrf_token: str = Form(""),
        session: Session = Depends(signed_in),
    ) -> Response:
        form = {"late_minutes": minutes, "meeting_id": meeting_id}

        async def send(c: CircleCommands, circle: CircleView) -> Any:
            meeting = circle.meeting(_uuid_or_nil(meeting_id))
            if meeting is None:
                raise _Refused("meeting: choose one of this circle's meetings")
            return await c.minutes(
                circle.referral_id,
                f"volunteer:{session.account_id}",
                meeting_id=meeting.meeting_id,
                minutes=minutes.strip(),
            )

        return await command(request, session, circle_id, csrf_token, "minutes", form, send)

    @app.post("/circles/{circle_id}/concern")
    async def raise_concern(
        request: Request,
        circle_id: str,
        level: str = Form(""),
        summary: str = Form(""),
        csrf_token: str = Form(""),
        session: Session = Depends(signed_in),
    ) -> Response:
        form = {"level": level, "summary": summary}
        return await command(
            request,
            session,
            circle_id,
            csrf_token,
            "concern",
            form,
            lambda c, circle: c.concern(
                circle.referral_id,
                f"volunteer:{session.account_id}",
                level=level,
                summary=summary.strip(),
                raised_by=session.account_id,
            ),
        )

    return app


def _uuid_or_nil(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        return uuid.UUID(int=0)


def build_volunteers_web(settings: CoordinatorSettings) -> FastAPI:
    """The page wired to Kafka: volunteer accounts, their sessions, the circles view and the commands."""
    accounts = VolunteerAccountDirectory(settings, source="/circles/coordinator/volunteers-web")
    sessions = volunteer_sessions(settings)
    views = CircleViews(
        settings.bootstrap_servers(), settings.topic_prefix, client_id="circles-volunteers-web"
    )
    sink = KafkaCommandSink(settings, "/circles/coordinator/volunteers-web")
    clock = clock_from_setting(settings.clock)
    started = {"ready": False}
    warn_without_session_secret(settings, log)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with running([accounts, sessions, views, sink]):
            started["ready"] = True
            log.info("web_ready", circles=len(views.circles()))
            yield

    app = create_volunteers_web(
        accounts=accounts,
        circles=views,
        commands=CircleCommands(sink, clock),
        signer=SessionSigner(settings.session_secret, settings.session_hours, VOLUNTEER_KIND),
        clock=clock,
        meeting_every_days=settings.meeting_every_days,
        secure_cookies=settings.secure_cookies,
        lifespan=lifespan,
        ready=lambda: supervision.healthy() and started["ready"],
        sign_in_limits=settings.sign_in_limits(),
        sessions=sessions,
    )
    install_metrics(app, Metrics(SERVICE))
    return app
