"""The coordinator page in a real browser (Debian's chromium driven by Playwright) over the whole
pipeline: sign in, see a proposal appear without a reload, open it, accept it, see the circle formed and
the target progress move; reject one and see the replacement; follow a circle after its formation (record
a meeting, a review, an ending, with the circles worker applying them) and give a volunteer an account for
the volunteers' page. Every page is screenshotted and checked with axe-core (no serious or critical
violations)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect, sync_playwright

from schemas.events.referrals import SubmitReferral
from schemas.topics import TOPICS
from services.referrals.domain.referral import referral_id_for
from services.runtime.kafka import create_topics
from tests.conftest import leaks
from tests.processes import ARTIFACTS, CIRCLES, ServiceProcess, free_port, sealing_publisher, service_env
from tests.samples import submission

pytestmark = pytest.mark.integration
expect.set_options(timeout=20_000)
"""Playwright's assertions wait 5 s by default; a page here waits on real processes (a proposal follows a
referral through two workers, a sample of the operations page comes each second) on a loaded machine. Single
waits that need longer say so."""
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = ARTIFACTS / "screenshots"
TOKEN = "synthetic-coordinator-api-token"
PASSWORD = "synthetic-coordinator-password"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Stack:
    env: dict[str, str]
    bootstrap: str
    prefix: str
    web_url: str
    matching_url: str
    processes: list[ServiceProcess]

    def submit(self, reference: str) -> uuid.UUID:
        body = submission(agency_reference=reference)
        referral_id = referral_id_for("mappa-humberside", reference)
        command = SubmitReferral(
            referral_id=referral_id,
            agency_id="mappa-humberside",
            submission=body,
            fingerprint=body.fingerprint(),
            received_at=datetime.now(UTC),
        )

        async def send() -> None:
            async with sealing_publisher(self.env, "/tests/agency") as publisher:
                await publisher.publish(command, publisher.envelope(command, f"corr-{reference}"))

        with ThreadPoolExecutor(1) as pool:  # sync Playwright keeps an event loop running in this thread
            pool.submit(asyncio.run, send()).result()
        return referral_id


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stage = page_env(
        kafka_bootstrap,
        tmp_path_factory.mktemp("coordinator"),
        "CIRCLES_WEB_PORT",
        CIRCLES_OPERATIONS_POLL_S="1",
    )
    created = subprocess.run(
        [
            str(CIRCLES),
            "coordinator",
            "add",
            "coordinator",
            "--name",
            "Synthetic Coordinator",
            "--password-stdin",
        ],
        input=PASSWORD + "\n",
        env=stage.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    names = [
        "referrals-worker",
        "matching-worker",
        "matching-api",
        "coordinator-worker",
        "coordinator-web",
        "circles-worker",
    ]
    with running_stack(stage, kafka_bootstrap, names, "coordinator-web") as up:
        yield up
    assert leaks("".join(process.logs() for process in up.processes)) == []


@dataclass
class PageEnv:
    env: dict[str, str]
    prefix: str
    matching_port: int
    web_port: int


def page_env(bootstrap: str, state: Path, web_port_setting: str, **settings: str) -> PageEnv:
    """The environment of a stack behind a page (``web_port_setting``: its port's setting), on topics of
    its own (a fresh prefix), with the matching API's port and token and a session secret."""
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is needed: `make test` installs it (apt-get install chromium)")
    prefix = f"t{uuid.uuid4().hex[:10]}."
    asyncio.run(create_topics(bootstrap, TOPICS, prefix=prefix))
    matching_port, web_port = free_port(), free_port()
    env = service_env(
        bootstrap,
        prefix,
        state,
        CIRCLES_MATCHING_API_PORT=str(matching_port),
        CIRCLES_COORDINATOR_API_TOKEN=TOKEN,
        CIRCLES_MATCHING_API_URL=f"http://127.0.0.1:{matching_port}",
        CIRCLES_SESSION_SECRET="synthetic-session-secret",
        **{web_port_setting: str(web_port)},
        **settings,
    )
    return PageEnv(env, prefix, matching_port, web_port)


@contextmanager
def running_stack(page: PageEnv, bootstrap: str, names: list[str], web: str) -> Iterator[Stack]:
    """The processes ``names`` started, the workers, the matching API and the page ``web`` ready, and the
    volunteers registered; stopped (last started first) on leaving."""
    env, matching_port, web_port = page.env, page.matching_port, page.web_port
    processes = [ServiceProcess(name, env).start() for name in names]
    matching_url, web_url = f"http://127.0.0.1:{matching_port}", f"http://127.0.0.1:{web_port}"
    try:
        for process in processes:
            if process.process.endswith("worker"):
                process.wait_for_log("worker_ready")
        processes[names.index("matching-api")].wait_http(f"{matching_url}/ready")
        processes[names.index(web)].wait_http(f"{web_url}/ready")
        register_volunteers(matching_url)
        yield Stack(env, bootstrap, page.prefix, web_url, matching_url, processes)
    finally:
        for process in reversed(processes):
            process.stop()


def register_volunteers(matching_url: str, first: int = 0) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=matching_url, headers=auth, timeout=30) as client:
        for i, gender in enumerate(["female", "male", "female", "male", "female"], start=first):
            volunteer_id = f"page-{i}"
            body: dict[str, Any] = {
                "volunteer_id": volunteer_id,
                "name": f"Synthetic Volunteer {i}",
                "gender": gender,
                "local_authority": "hull",
                "postcode_district": "HU7",
                "experienced": i % 5 == 0,
            }
            assert client.post("/v1/volunteers", json=body).status_code == 201
            for path, day in (
                ("vetting", "2026-01-05"),
                ("training", "2026-02-01"),
                ("supervision", "2026-11-10"),
            ):
                assert (
                    client.post(f"/v1/volunteers/{volunteer_id}/{path}", json={"date": day}).status_code
                    == 200
                )


def check(page: Page, name: str) -> None:
    """Screenshot the page (a PNG written now, not one an earlier run left), and fail on any serious or
    critical accessibility violation."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / f"{name}.png"
    shot.unlink(missing_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    results = Axe().run(page)
    serious = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in results.response["violations"]
        if v["impact"] in {"serious", "critical"}
    ]
    assert serious == [], f"{name}: {serious}"


@pytest.fixture
def page(stack: Stack) -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=stack.web_url)
        page = context.new_page()
        page.set_default_timeout(30_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()


def sign_in(page: Page) -> None:
    page.goto("/proposals")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    check(page, "01-sign-in")
    page.get_by_label("Account name").fill("coordinator")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not right")
    check(page, "02-sign-in-refused")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Match proposals")


def test_sign_in_see_a_proposal_arrive_accept_it_and_the_target_moves(stack: Stack, page: Page) -> None:
    sign_in(page)
    page.goto("/target")
    expect(page.locator("[data-circles-formed]")).to_have_text("0")
    check(page, "03-target-before")
    page.goto("/proposals")
    expect(page.get_by_text("No proposals are waiting for a decision.")).to_be_visible()
    check(page, "04-proposals-empty")

    stack.submit("PAGE-1")  # while the page is open: it must appear without a reload
    row = page.locator("tr[data-proposal-id]")
    expect(row).to_have_count(1, timeout=30_000)
    expect(row).to_contain_text("PAGE-1")
    expect(page.locator("#live-announcer")).to_contain_text("new proposal")
    check(page, "05-proposals-arrived")

    row.get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Proposal for referral PAGE-1")
    expect(page.get_by_role("heading", level=2, name="Proposed volunteers")).to_be_visible()
    expect(page.locator(".card")).to_have_count(4)
    expect(page.locator(".card").first).to_contain_text("Enhanced DBS check")
    check(page, "06-proposal")
    page.get_by_role("button", name="Accept and form the circle").click()
    expect(page.get_by_role("status").first).to_contain_text("Accepted")
    check(page, "07-proposal-accepted")

    page.goto("/target")
    for _ in range(60):  # the circle reaches the coordinator's projection a moment later
        if page.locator("[data-circles-formed]").inner_text() == "1":
            break
        page.wait_for_timeout(500)
        page.reload()
    expect(page.locator("[data-circles-formed]")).to_have_text("1")
    expect(page.get_by_role("rowheader", name="PAGE-1")).to_be_visible()
    check(page, "08-target-after")
    page.goto("/referrals")
    expect(page.get_by_role("heading", name="Circle formed (1)")).to_be_visible()
    check(page, "09-referrals")


def test_reject_one_volunteer_and_see_the_replacement(stack: Stack, page: Page) -> None:
    sign_in(page)
    stack.submit("PAGE-2")
    row = page.locator("tr[data-proposal-id]", has_text="PAGE-2")
    expect(row).to_have_count(1, timeout=30_000)
    row.get_by_role("link").click()
    rejected = page.locator(".checkbox input").first.get_attribute("value")
    assert rejected and rejected in page.locator(".card").all_inner_texts()[0]  # cards name "(volunteer-id)"
    page.locator(".checkbox input").first.check()
    page.get_by_label("Note (optional)").fill("Synthetic note: knows the family")
    page.get_by_role("button", name="Reject").click()
    expect(page.get_by_role("status").first).to_contain_text("Rejected")
    replacement = page.get_by_role("link", name="attempt 2 for PAGE-2")
    for _ in range(40):
        if replacement.count():
            break
        page.wait_for_timeout(500)
        page.reload()
    check(page, "10-proposal-rejected")
    replacement.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Proposal for referral PAGE-2")
    cards = page.locator(".card")
    expect(cards).to_have_count(4)
    assert not [text for text in cards.all_inner_texts() if f"({rejected})" in text], rejected
    check(page, "11-replacement")

    for path, name in (("/volunteers", "12-volunteers"), ("/report", "13-report")):
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        check(page, name)

    page.goto("/operations")
    services = page.get_by_role("table", name="Services")
    matching = services.get_by_role("row", name="matching")
    expect(matching).to_be_visible(timeout=15_000)  # the first sample comes a second after start
    expect(matching.get_by_role("cell").nth(0)).to_have_text("1")  # one worker
    referrals_row = services.get_by_role("row", name="referrals")
    expect(referrals_row.get_by_role("cell").nth(2)).to_have_text("0", timeout=15_000)  # lag drained
    page.wait_for_timeout(2_500)  # a few samples, so the throughput chart has points
    page.reload()
    expect(page.get_by_role("img", name="Events written per second")).to_be_visible()
    check(page, "14-operations")
    assert json.loads(httpx.get(f"{stack.web_url}/ready").text)["status"] == "ready"


def accept_proposal_for(stack: Stack, referral_id: uuid.UUID) -> list[str]:
    """Accept the referral's proposal over the matching API (as the page does); its volunteers."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=stack.matching_url, headers=auth, timeout=30) as client:
        for _ in range(120):
            found = [p for p in client.get("/v1/proposals").json() if p["referral_id"] == str(referral_id)]
            if found and found[0]["status"] == "open":
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"no open proposal for {referral_id}")
        answer = client.post(f"/v1/proposals/{found[0]['proposal_id']}/decision", json={"outcome": "accept"})
        assert answer.status_code in (200, 202), answer.text
    return [v["volunteer_id"] for v in found[0]["volunteers"]]


def reload_until(page: Page, ready: Callable[[], bool], tries: int = 80) -> None:
    """The circles worker and the coordinator's view take a moment: reload until the page shows it."""
    for _ in range(tries):
        if ready():
            return
        page.wait_for_timeout(500)
        page.reload()
    assert ready(), page.url


def test_a_circle_after_formation_meeting_review_and_ending(stack: Stack, page: Page) -> None:
    register_volunteers(stack.matching_url, first=5)  # the earlier tests' proposals hold the first five
    referral_id = stack.submit("PAGE-3")
    accept_proposal_for(stack, referral_id)
    sign_in(page)
    page.goto("/circles")
    row = page.locator(f'tr[data-circle="circle-{referral_id}"]')
    reload_until(page, lambda: row.count() == 1)
    expect(row).to_contain_text("PAGE-3")
    check(page, "15-circles-active")

    row.get_by_role("link", name="PAGE-3").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Circle for referral PAGE-3")
    expect(page.get_by_text("No meetings recorded.")).to_be_visible()
    check(page, "16-circle")
    page.get_by_label("Attended", exact=True).check()
    page.get_by_role("button", name="Record the meeting").click()
    expect(page.get_by_role("status").first).to_contain_text("Meeting sent")
    reload_until(page, lambda: page.locator("tr[data-meeting]").count() == 1)
    expect(page.locator("tr[data-meeting] td[data-minutes]")).to_contain_text("Due by")
    check(page, "17-circle-meeting-recorded")

    page.get_by_role("button", name="Record the review").click()
    expect(page.get_by_role("status").first).to_contain_text("Review sent")
    reload_until(page, lambda: page.get_by_text("No reviews yet.").count() == 0)

    page.get_by_label("Ended early", exact=True).check()
    page.get_by_role("button", name="End the circle").click()  # no reason: refused, with the field's error
    expect(page.get_by_role("alert")).to_contain_text("a circle ended early needs a reason")
    check(page, "18-circle-ending-refused")
    page.get_by_label("Reason, when ended early").select_option("moved_away")
    page.get_by_role("button", name="End the circle").click()
    expect(page.get_by_role("status").first).to_contain_text("Ending sent")
    reload_until(page, lambda: page.get_by_role("button", name="End the circle").count() == 0)
    expect(page.locator(".summary")).to_contain_text("ended early (moved away)")
    page.goto("/circles?status=ended")
    expect(page.locator(f'tr[data-circle="circle-{referral_id}"]')).to_contain_text(
        "Ended early (moved away)"
    )
    check(page, "19-circles-ended")


def test_a_volunteer_account_from_the_page_shows_its_password_once(stack: Stack, page: Page) -> None:
    sign_in(page)
    page.goto("/volunteers")
    page.get_by_role("button", name="Create an account for Synthetic Volunteer 4").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Volunteer account created")
    password = page.locator("[data-password]").inner_text()
    assert len(password) == 20
    check(page, "20-volunteer-account")
    page.goto("/volunteers")
    expect(page.get_by_role("row", name="Synthetic Volunteer 4")).to_contain_text("Has an account")


def test_record_for_the_return_and_see_the_figures_chart_and_csv(stack: Stack, page: Page) -> None:
    """Issue 12: the report shows the commissioner's return with its chart (and the chart's table), the
    forms record a MAPPA panel, a mentoring session and an audit, and the CSV downloads."""
    referral_id = stack.submit("RETURN-1")
    sign_in(page)
    page.goto("/referrals")
    for _ in range(60):  # the referral reaches the coordinator's projection a moment later
        if page.get_by_text("RETURN-1").count():
            break
        page.wait_for_timeout(500)
        page.reload()
    today = datetime.now(UTC).date().isoformat()
    page.goto(f"/report?start={today[:4]}-01-01&end={today}")
    expect(page.get_by_role("heading", name="The commissioner's return")).to_be_visible()
    chart = page.get_by_role("img", name="The commissioner's return against its targets")
    expect(chart).to_be_visible()
    expect(page.get_by_role("table", name="The return's figures")).to_be_visible()
    check(page, "21-return")

    panel = page.get_by_role("form", name="A MAPPA panel the scheme was asked to attend")
    panel.get_by_label("Referral id").fill(str(referral_id))
    panel.get_by_label("MAPPA level").select_option("3")
    panel.get_by_label("Date of the panel").fill("2999-01-01")
    panel.get_by_role("button", name="Record the panel").click()
    expect(page.get_by_role("alert")).to_contain_text("in the future")
    check(page, "22-return-refused")

    panel = page.get_by_role("form", name="A MAPPA panel the scheme was asked to attend")
    panel.get_by_label("Referral id").fill(str(referral_id))
    panel.get_by_label("MAPPA level").select_option("3")
    panel.get_by_role("button", name="Record the panel").click()
    expect(page.get_by_role("status").first).to_contain_text("Recorded: the MAPPA panel")
    session = page.get_by_role("form", name="A 1-1 mentoring session")
    session.get_by_label("Referral id").fill(str(referral_id))
    session.get_by_label("Length in minutes").fill("50")
    session.get_by_role("button", name="Record the session").click()
    expect(page.get_by_role("status").first).to_contain_text("Recorded: the mentoring session")
    audit = page.get_by_role("form", name="An audit of practice")
    audit.get_by_label("Area audited").fill("minutes")
    audit.get_by_label("Actions needed").check()
    audit.get_by_label("Number of actions (if any)").fill("2")
    audit.get_by_role("button", name="Record the audit").click()
    expect(page.get_by_role("status").first).to_contain_text("Recorded: the audit")

    figures = page.get_by_role("table", name="The return's figures")
    attended = figures.get_by_role("row", name="Level 3 panels: attended of asked")
    for _ in range(40):  # the records reach the page's view a moment later
        if attended.get_by_role("cell").inner_text() == "1 of 1":
            break
        page.wait_for_timeout(500)
        page.goto(f"/report?start={today[:4]}-01-01&end={today}")
    expect(attended.get_by_role("cell")).to_have_text("1 of 1")
    expect(figures.get_by_role("row", name="Mentoring sessions").get_by_role("cell")).to_have_text(
        "1 (50 minutes)"
    )
    expect(chart).to_contain_text("MAPPA panels attended")
    check(page, "23-return-recorded")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download the commissioner's return (CSV)").click()
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert rows[0] == ["section", "figure", "value"]
    table = {(section, figure): value for section, figure, value in rows[1:]}
    assert table[("mappa_panels", "by_level.3.attended")] == "1"
    assert table[("mentoring", "minutes")] == "50" and table[("audits", "with_actions")] == "1"
