"""The running APIs against the OpenAPI documents they serve, tried as an agency's or the coordinator page's
developer would: Schemathesis (a third-party OpenAPI tester) generates requests from each document, valid
and invalid, and sends them to the real partner API and matching API (with their workers, on the session's
broker). Its checks: no server error; every status, content type and body as the document says; and every
body the document calls valid accepted (a refusal of one, say a 422, means the document lacks a constraint
the API enforces). Bounded and derandomized (``schemathesis.toml``): the same few requests per operation
each run. It found the matching API answering 500 to a path that is no volunteer id.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from schemas.topics import TOPICS
from services.runtime.kafka import create_topics
from tests.conftest import leaks
from tests.processes import ServiceProcess, free_port, run_cli, service_env

pytestmark = pytest.mark.integration
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
TOKEN = "synthetic-coordinator-token-for-the-document-test"
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "positive_data_acceptance",
)
CONFIG = Path(__file__).with_name("schemathesis.toml")


@dataclass
class Apis:
    partner: str
    matching: str
    api_key: str


@pytest.fixture(scope="module")
def apis(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Apis]:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    asyncio.run(create_topics(kafka_bootstrap, TOPICS, prefix=prefix))
    partner_port, matching_port = free_port(), free_port()
    env = service_env(
        kafka_bootstrap,
        prefix,
        tmp_path_factory.mktemp("documents"),
        CIRCLES_API_PORT=str(partner_port),
        CIRCLES_MATCHING_API_PORT=str(matching_port),
        CIRCLES_COORDINATOR_API_TOKEN=TOKEN,
    )
    created = run_cli(env, "agency", "add", "mappa-humberside", "--name", "MAPPA (document test)", "--json")
    names = ("referrals-worker", "referrals-api", "matching-worker", "matching-api")
    processes = [ServiceProcess(name, env).start() for name in names]
    partner, matching = f"http://127.0.0.1:{partner_port}", f"http://127.0.0.1:{matching_port}"
    try:
        for process in processes:
            if process.process.endswith("worker"):
                process.wait_for_log("worker_ready")
        processes[1].wait_http(f"{partner}/ready")
        processes[3].wait_http(f"{matching}/ready")
        yield Apis(partner, matching, json.loads(created.stdout)["api_key"])
        for process in processes:
            assert process.alive(), f"{process.name} died:\n{process.tail()}"
    finally:
        for process in reversed(processes):
            process.stop()
    assert leaks("".join(process.logs() for process in processes)) == []


def schemathesis(url: str, token: str, report: Path) -> subprocess.CompletedProcess[str]:
    """``schemathesis run`` against the document served at ``url`` (settings: ``CONFIG``); its exit status
    says whether a check failed."""
    command = [
        str(SCHEMATHESIS), "--config-file", str(CONFIG), "run", f"{url}/openapi.json",
        "--header", f"Authorization: Bearer {token}",
        "--checks", ",".join(CHECKS),
        "--report", "junit", "--report-junit-path", str(report),
        "--no-color",
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize("api", ["partner", "matching"])
def test_the_running_api_answers_as_its_document_says(apis: Apis, api: str, tmp_path: Path) -> None:
    url, token = (apis.partner, apis.api_key) if api == "partner" else (apis.matching, TOKEN)
    started = time.monotonic()
    result = schemathesis(url, token, tmp_path / "junit.xml")
    seconds = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    tested = (tmp_path / "junit.xml").read_text().count("<testcase ")
    assert tested >= (9 if api == "partner" else 11), output[-3000:]  # every operation of the document
    cases = next((line.strip() for line in output.splitlines() if " generated, " in line), "")
    print(f"\nschemathesis, {api} API: {tested} operations, {cases}, in {seconds:.1f}s")
