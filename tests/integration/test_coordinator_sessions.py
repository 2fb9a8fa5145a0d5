"""Sessions end on the server side, on every coordinator page process (issue 14, finding 4): two real
`coordinator-web` processes on the shared broker; a session signed out on one is refused by the other,
and `circles coordinator disable|enable|reset-password` end sessions on both."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from schemas.topics import TOPICS
from services.coordinator.sessions import COOKIE
from services.runtime.kafka import create_topics
from tests.conftest import leaks
from tests.processes import ServiceProcess, free_port, run_cli, service_env

pytestmark = pytest.mark.integration
PASSWORD = "synthetic-coordinator-password"
NEW_PASSWORD = "synthetic-coordinator-password-2"
WAIT_S = 15.0


@pytest.fixture
def pages(kafka_bootstrap: str, tmp_path: Path) -> Iterator[tuple[dict[str, str], list[str]]]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    asyncio.run(create_topics(kafka_bootstrap, TOPICS, prefix=prefix))
    env = service_env(
        kafka_bootstrap,
        prefix,
        tmp_path,
        CIRCLES_SESSION_SECRET="synthetic-session-secret",
        CIRCLES_SIGN_IN_FAILURES_PER_ACCOUNT="1000",  # the polls below fail on purpose (throttling: unit)
    )
    run_cli(
        env, "coordinator", "add", "coordinator", "--name", "Synthetic Coordinator", "--password-stdin",
        input=PASSWORD + "\n",
    )  # fmt: skip
    ports = [free_port(), free_port()]
    processes = [
        ServiceProcess("coordinator-web", {**env, "CIRCLES_WEB_PORT": str(port)}, name=f"web-{i}").start()
        for i, port in enumerate(ports)
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for process, url in zip(processes, urls, strict=True):
            process.wait_http(f"{url}/ready")
        yield env, urls
    finally:
        for process in processes:
            process.stop()
    assert leaks("".join(process.logs() for process in processes)) == []


def sign_in(url: str, password: str = PASSWORD) -> httpx.Response:
    return httpx.post(
        f"{url}/sign-in", data={"account": "coordinator", "password": password}, follow_redirects=False
    )


def session(url: str, password: str = PASSWORD) -> str:
    response = sign_in(url, password)
    assert response.status_code == 303, response.text
    return response.cookies[COOKIE]


def accepted(url: str, cookie: str) -> bool:
    response = httpx.get(f"{url}/referrals", cookies={COOKIE: cookie}, follow_redirects=False)
    assert response.status_code in (200, 303), response.status_code
    return response.status_code == 200


def refused_everywhere(urls: list[str], cookie: str) -> bool:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if not any(accepted(url, cookie) for url in urls):
            return True
        time.sleep(0.2)
    return False


def test_sign_out_and_disabling_end_sessions_on_every_page_process(
    pages: tuple[dict[str, str], list[str]],
) -> None:
    env, (one, other) = pages
    cookie = session(one)
    assert accepted(one, cookie) and accepted(other, cookie)
    page = httpx.get(f"{one}/referrals", cookies={COOKIE: cookie}).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    signed_out = httpx.post(
        f"{one}/sign-out", data={"csrf_token": csrf}, cookies={COOKIE: cookie}, follow_redirects=False
    )
    assert signed_out.status_code == 303
    assert not accepted(one, cookie)  # at once where it was signed out
    assert refused_everywhere([one, other], cookie)  # and on the other process within seconds

    cookie = session(other)
    assert accepted(one, cookie)
    run_cli(env, "coordinator", "disable", "coordinator")
    assert refused_everywhere([one, other], cookie)
    assert sign_in(one).status_code == 401 and sign_in(other).status_code == 401
    run_cli(env, "coordinator", "enable", "coordinator")
    deadline = time.monotonic() + WAIT_S
    while sign_in(other).status_code != 303:
        assert time.monotonic() < deadline, "enabled account still refused"
        time.sleep(0.2)
    assert not accepted(one, cookie) and not accepted(other, cookie)  # enabling revives no old session

    cookie = session(one)
    run_cli(
        env, "coordinator", "reset-password", "coordinator", "--password-stdin", input=NEW_PASSWORD + "\n"
    )
    assert refused_everywhere([one, other], cookie)
    assert sign_in(one).status_code == 401
    assert accepted(other, session(other, NEW_PASSWORD))
    missing = run_cli(env, "coordinator", "disable", "nobody", check=False)
    assert missing.returncode != 0 and "no coordinator account nobody" in missing.stderr
