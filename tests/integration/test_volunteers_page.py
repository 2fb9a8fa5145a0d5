"""The volunteers' page in a real browser (Debian's chromium driven by Playwright) on a phone-sized screen,
over the real broker and workers: a circle formed from an accepted proposal, an account made for one of its
volunteers with `circles volunteer account add`; the volunteer signs in (a wrong password refused), sees
their circle and the meeting coming up, records a meeting with its minutes, raises an urgent concern, and
sees both applied by the circles service. A volunteer outside the circle sees nothing of it (404). The
minutes and the summary travel sealed: their text is in no record of the commands topic nor in any log.
Every screen is screenshotted and checked with axe-core (no serious or critical violations)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import Page, ViewportSize, expect, sync_playwright

from schemas.topics import CIRCLES_COMMANDS
from tests.conftest import leaks
from tests.integration.test_coordinator_page import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    Stack,
    accept_proposal_for,
    check,
    page_env,
    reload_until,
    running_stack,
)
from tests.kafka_helpers import consume_all
from tests.processes import run_cli

pytestmark = pytest.mark.integration
expect.set_options(timeout=20_000)
PASSWORD = "synthetic-volunteer-password"
OUTSIDER_PASSWORD = "synthetic-outsider-password"
MINUTES = "Synthetic minutes MINUTESSENTINEL7 of the circle's second meeting"
SUMMARY = "Synthetic concern SUMMARYSENTINEL7 heard at the meeting"
PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stage = page_env(kafka_bootstrap, tmp_path_factory.mktemp("volunteers"), "CIRCLES_VOLUNTEERS_WEB_PORT")
    names = [
        "referrals-worker",
        "matching-worker",
        "matching-api",
        "coordinator-worker",
        "circles-worker",
        "volunteers-web",
    ]
    with running_stack(stage, kafka_bootstrap, names, "volunteers-web") as up:
        yield up
    logs = "".join(process.logs() for process in up.processes)
    assert leaks(logs) == []
    assert "SENTINEL7" not in logs


@pytest.fixture
def phone(stack: Stack) -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        context = browser.new_context(
            viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2, base_url=stack.web_url
        )
        page = context.new_page()
        page.set_default_timeout(30_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()


def sign_in(page: Page, volunteer_id: str, password: str) -> None:
    page.goto("/circles")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    page.get_by_label("Volunteer id").fill(volunteer_id)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your circles")


def fits_the_screen(page: Page) -> None:
    """Nothing wider than the phone: no sideways scrolling (WCAG 1.4.10, reflow)."""
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_a_volunteer_records_a_meeting_with_minutes_and_raises_a_concern(stack: Stack, phone: Page) -> None:
    referral_id = stack.submit("VOL-1")
    volunteers = accept_proposal_for(stack, referral_id)
    member = volunteers[0]
    outsider = next(f"page-{i}" for i in range(5) if f"page-{i}" not in volunteers)
    made = run_cli(
        stack.env, "volunteer", "account", "add", member, "--password-stdin", input=PASSWORD + "\n"
    )
    assert member in made.stdout and PASSWORD not in made.stdout
    shown = run_cli(stack.env, "volunteer", "account", "add", outsider, "--json")
    assert '"password"' in shown.stdout
    outsider_password = json.loads(shown.stdout)["password"]
    again = run_cli(
        stack.env,
        "volunteer",
        "account",
        "add",
        member,
        "--password-stdin",
        input=PASSWORD + "\n",
        check=False,
    )
    assert again.returncode != 0 and "already has an account" in again.stderr

    page = phone
    page.goto("/circles")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    check(page, "v01-sign-in")
    page.get_by_label("Volunteer id").fill(member)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not right")
    check(page, "v02-sign-in-refused")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your circles")

    circle = page.locator(f'[data-circle="circle-{referral_id}"]')
    reload_until(page, lambda: circle.count() == 1)  # the circles worker, then the coordinator's view
    expect(page.locator("[data-upcoming] li")).to_have_count(1)
    fits_the_screen(page)
    check(page, "v03-circles")

    circle.get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Circle formed")
    fits_the_screen(page)
    check(page, "v04-circle")
    page.get_by_label("Late", exact=True).check()
    page.get_by_label("Minutes", exact=True).fill(MINUTES)
    page.get_by_role("button", name="Record the meeting").click()
    expect(page.get_by_role("status").first).to_contain_text("Meeting sent")
    reload_until(page, lambda: page.locator("[data-meeting]").count() == 1)
    expect(page.locator("[data-meeting] [data-minutes]")).to_have_attribute("data-minutes", "received")
    check(page, "v05-meeting-recorded")

    page.get_by_label("Urgent", exact=True).check()
    page.get_by_label("What did you see or hear?").fill(SUMMARY)
    page.get_by_role("button", name="Raise the concern").click()
    expect(page.get_by_role("status").first).to_contain_text("Concern sent")
    check(page, "v06-concern-sent")
    page.goto("/circles")
    reload_until(page, lambda: "1 open concern" in circle.inner_text())
    check(page, "v07-circles-with-concern")

    page.get_by_role("button", name=f"Sign out ({member})").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    page.goto(f"/circles/circle-{referral_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")

    sign_in(page, outsider, outsider_password)
    expect(page.get_by_text("You are not in an active circle.")).to_be_visible()
    check(page, "v08-outsider")
    answer = page.goto(f"/circles/circle-{referral_id}")
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Circle not found")
    check(page, "v09-not-yours")

    with ThreadPoolExecutor(1) as pool:  # sync Playwright keeps an event loop running in this thread
        records = pool.submit(
            asyncio.run, consume_all(stack.bootstrap, stack.prefix + CIRCLES_COMMANDS.name)
        ).result()
    assert len(records) >= 2
    raw = b"".join(record.value or b"" for record in records)
    assert b"SENTINEL7" not in raw  # sealed under the referral's key
