"""Sign-in and sign-out on a page, for accounts of any kind: the throttle checked before any password, the
password checked in a worker thread (scrypt never blocks the event loop), refusals logged with the account
id (only if it looks like one) and the client, never the password, and the session cookie set.

Each page brings its own account directory, cookie name, session signer (of its account kind), throttle and
sign-in form (the template ``sign_in.html``), and installs the routes ``/sign-in`` and ``/sign-out`` with
``SignIn.install``."""

from __future__ import annotations

import asyncio
import hmac
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.accounts.sessions import EndedSessions, Session, SessionSigner
from services.accounts.throttle import SignInThrottle

A = TypeVar("A")
A_co = TypeVar("A_co", covariant=True)

_ACCOUNT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class Page(Protocol):
    def __call__(
        self, request: Request, name: str, session: Session | None, status: int = ..., **context: Any
    ) -> HTMLResponse: ...


class Directory(Protocol[A_co]):
    def sign_in(self, account_id: str, password: str) -> A_co | None:
        """Blocking (scrypt): called in a worker thread, never on the event loop."""
        ...


def client_of(request: Request) -> str:
    """The client's address as the server sees it (behind a proxy, uvicorn's ``--forwarded-allow-ips``
    decides whether ``X-Forwarded-For`` is believed; a header the proxy did not set never is)."""
    return request.client.host if request.client else "unknown"


def loggable(account_id: str) -> str:
    """An account id as typed, for the log, only if it could be one: a password typed into the account
    field (it happens) never reaches the log."""
    return account_id if _ACCOUNT_ID.match(account_id) else "(not an account id)"


def in_words(seconds: int) -> str:
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def csrf_ok(session: Session, token: str) -> bool:
    """In constant time: how long a refusal takes tells nothing of how much of the token was right."""
    return bool(token) and hmac.compare_digest(token.encode(), session.csrf.encode())


@dataclass(frozen=True)
class SignIn(Generic[A]):
    """One page's sign-in: its account directory (``names``: a found account's id and display name for the
    session), the cookie its sessions go in, the signer of its account kind, its throttle, where ended
    sessions are recorded, what a wrong account or password is told, and its logger (``log_fields``: what
    the page adds to each line)."""

    accounts: Directory[A]
    names: Callable[[A], tuple[str, str]]
    cookie: str
    signer: SessionSigner
    throttle: SignInThrottle
    ended: EndedSessions
    secure_cookies: bool
    not_right: str
    log: Any
    log_fields: Mapping[str, str] = field(default_factory=dict)

    async def sign_in(
        self,
        request: Request,
        account: str,
        password: str,
        then: str,
        refused: Callable[[int, str], HTMLResponse],
    ) -> Response:
        """The answer to a posted sign-in form: 429 with ``Retry-After`` while throttled, 401 for a wrong
        account or password (both the form again, through ``refused``), else a redirect to ``then`` with a
        new session of the signer's kind in the cookie."""
        account_id, client = account.strip(), client_of(request)
        logged = {"account_id": loggable(account_id), "client": client, **self.log_fields}
        wait = self.throttle.retry_after(account_id, client, time.monotonic())
        if wait:
            self.log.warning("sign_in_throttled", retry_after_s=wait, **logged)
            throttled = refused(429, f"Too many failed sign-ins. Try again in {in_words(wait)}.")
            throttled.headers["Retry-After"] = str(wait)
            return throttled
        found = await asyncio.to_thread(self.accounts.sign_in, account_id, password)  # scrypt: off the loop
        if found is None:
            self.throttle.failed(account_id, client, time.monotonic())
            self.log.info("sign_in_refused", **logged)
            return refused(401, self.not_right)
        self.throttle.succeeded(account_id)
        found_id, display_name = self.names(found)
        issued, _ = self.signer.issue(found_id, display_name)
        response = RedirectResponse(then, status_code=303)
        response.set_cookie(
            self.cookie,
            issued,
            max_age=self.signer.max_age,
            httponly=True,
            samesite="strict",
            secure=self.secure_cookies,
            path="/",
        )
        self.log.info("signed_in", account_id=found_id, client=client, **self.log_fields)
        return response

    async def sign_out(self, session: Session | None, csrf_token: str) -> Response:
        """Ends the session on the server side (every page process refuses its cookie), then in the
        browser; without a session or its CSRF token, only back to the sign-in page."""
        response = RedirectResponse("/sign-in", status_code=303)
        if session is not None and csrf_ok(session, csrf_token):
            await self.ended.end(session)
            response.delete_cookie(self.cookie, path="/")
            self.log.info("signed_out", account_id=session.account_id, **self.log_fields)
        return response

    def install(
        self, app: FastAPI, *, home: str, page: Page, session_of: Callable[[Request], Session | None]
    ) -> None:
        """The routes: the sign-in form (``sign_in.html``; ``next``, where to go after, only within the
        site, else ``home``), its POST, and the sign-out POST."""

        def local(path: str) -> str:
            """Only redirect within this site (no open redirects)."""
            return path if path.startswith("/") and not path.startswith("//") else home

        @app.get("/sign-in", response_class=HTMLResponse)
        async def sign_in_page(request: Request, next: str = home) -> HTMLResponse:
            return page(request, "sign_in.html", None, title="Sign in", next=local(next), error=None)

        @app.post("/sign-in", response_class=HTMLResponse)
        async def sign_in(
            request: Request, account: str = Form(""), password: str = Form(""), next: str = Form(home)
        ) -> Response:
            def refused(status: int, error: str) -> HTMLResponse:
                return page(
                    request,
                    "sign_in.html",
                    None,
                    status=status,
                    title="Sign in",
                    next=local(next),
                    account=account,
                    error=error,
                )

            return await self.sign_in(request, account, password, local(next), refused)

        @app.post("/sign-out")
        async def sign_out(request: Request, csrf_token: str = Form("")) -> Response:
            return await self.sign_out(session_of(request), csrf_token)
