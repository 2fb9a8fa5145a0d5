"""Sign-in and sign-out on a page, for accounts of any kind: the throttle checked before any password, the
password checked in a worker thread (scrypt never blocks the event loop), refusals logged with the account
id (only if it looks like one) and the client, never the password, and the session cookie set.

Each page brings its own account directory, cookie name, session signer (of its account kind), throttle and
sign-in form (``refused`` renders it again with a status and an error)."""

from __future__ import annotations

import asyncio
import hmac
import math
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.accounts.sessions import EndedSessions, Session, SessionSigner
from services.accounts.throttle import SignInThrottle

A = TypeVar("A")
A_co = TypeVar("A_co", covariant=True)

_ACCOUNT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


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


async def sign_in(
    request: Request,
    *,
    account: str,
    password: str,
    then: str,
    accounts: Directory[A],
    names: Callable[[A], tuple[str, str]],
    cookie: str,
    signer: SessionSigner,
    throttle: SignInThrottle,
    secure_cookies: bool,
    refused: Callable[[int, str], HTMLResponse],
    not_right: str,
    log: Any,
    log_fields: Mapping[str, str],
) -> Response:
    """The answer to a posted sign-in form: 429 with ``Retry-After`` while throttled, 401 for a wrong
    account or password (both the form again, through ``refused``), else a redirect to ``then`` with a new
    session of the signer's kind in ``cookie``. ``names``: the session's account id and display name of a
    found account; ``log``, ``log_fields``: the page's logger and what it adds to every line."""
    account_id, client = account.strip(), client_of(request)
    logged = {"account_id": loggable(account_id), "client": client, **log_fields}
    wait = throttle.retry_after(account_id, client, time.monotonic())
    if wait:
        log.warning("sign_in_throttled", retry_after_s=wait, **logged)
        throttled = refused(429, f"Too many failed sign-ins. Try again in {in_words(wait)}.")
        throttled.headers["Retry-After"] = str(wait)
        return throttled
    found = await asyncio.to_thread(accounts.sign_in, account_id, password)  # scrypt: off the loop
    if found is None:
        throttle.failed(account_id, client, time.monotonic())
        log.info("sign_in_refused", **logged)
        return refused(401, not_right)
    throttle.succeeded(account_id)
    found_id, display_name = names(found)
    issued, _ = signer.issue(found_id, display_name)
    response = RedirectResponse(then, status_code=303)
    response.set_cookie(
        cookie,
        issued,
        max_age=signer.max_age,
        httponly=True,
        samesite="strict",
        secure=secure_cookies,
        path="/",
    )
    log.info("signed_in", account_id=found_id, client=client, **log_fields)
    return response


async def sign_out(
    session: Session | None,
    csrf_token: str,
    *,
    cookie: str,
    ended: EndedSessions,
    log: Any,
    log_fields: Mapping[str, str],
) -> Response:
    """Ends the session on the server side (every page process refuses its cookie), then in the browser;
    without a session or its CSRF token, only back to the sign-in page."""
    response = RedirectResponse("/sign-in", status_code=303)
    if session is not None and csrf_ok(session, csrf_token):
        await ended.end(session)
        response.delete_cookie(cookie, path="/")
        log.info("signed_out", account_id=session.account_id, **log_fields)
    return response
