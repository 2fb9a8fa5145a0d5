"""The pages' session check is one helper (issue 15, item 8): every route but sign-in, the probes and the
static files depends on it, so a new page cannot forget it; signed out, pages redirect and what scripts
fetch answers 401."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from tests.unit.coordinator.test_web import coordinator_web

PUBLIC = {"/sign-in", "/sign-out", "/", "/health", "/ready"}
"""Sign-out works (and does nothing) without a session; the rest is open by nature."""


def app() -> FastAPI:
    return coordinator_web()


def test_every_page_depends_on_the_one_session_check() -> None:
    web = app()
    routes = [r for r in web.routes if isinstance(r, APIRoute) and r.path not in PUBLIC]
    assert len(routes) >= 12
    for route in routes:
        checks = {d.call.__name__ for d in route.dependant.dependencies if d.call is not None}
        assert checks & {"signed_in", "signed_in_quietly"}, route.path


def test_signed_out_pages_redirect_and_fetches_answer_401() -> None:
    client = TestClient(app(), raise_server_exceptions=False)
    proposal = "/proposals/00000000-0000-4000-8000-000000000000"
    for path in ("/proposals", proposal, "/volunteers", "/referrals", "/target", "/report", "/operations"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == f"/sign-in?next={path}"
    for path in ("/proposals/list", "/report.csv", "/report.svg", "/operations/fragment", "/live"):
        assert client.get(path).status_code == 401, path
    decision = client.post(f"{proposal}/decision", data={"outcome": "accept"}, follow_redirects=False)
    assert decision.status_code == 303 and decision.headers["location"].startswith("/sign-in")
