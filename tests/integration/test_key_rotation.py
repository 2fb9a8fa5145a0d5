"""KEK rotation over the real broker: ``circles keys new-kek``, ``rewrap``, then the old KEK can go.

Data sealed before the rotation must open with a KEK file that no longer holds the old KEK; that is what
makes retiring a KEK safe.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from schemas.partner_api import ReferralSubmission
from tests.processes import run_cli, sealer_for, service_env
from tests.samples import submission

pytestmark = pytest.mark.integration


async def seal(env: dict[str, str], document: dict[str, Any]) -> Any:
    sealer = sealer_for(env, ["referral"])
    await sealer.start()
    try:
        return await sealer.seal_json(ReferralSubmission, document, "referral:rotation-test")
    finally:
        await sealer.stop()


async def open_sealed(env: dict[str, str], sealed: Any) -> Any:
    sealer = sealer_for(env, ["referral"])
    await sealer.start()
    try:
        return sealer.open_json(ReferralSubmission, sealed)
    finally:
        await sealer.stop()


def test_new_kek_rewrap_then_the_old_kek_can_be_retired(
    kafka_bootstrap: str, topics: str, tmp_path: Path
) -> None:
    env = service_env(kafka_bootstrap, topics, tmp_path)
    kek_file = Path(env["CIRCLES_KEK_FILE"])
    old_kek = json.loads(kek_file.read_text())["primary"]
    document = submission(agency_reference="ROTATE-1").model_dump(mode="json")

    sealed = asyncio.run(seal(env, document))
    assert sealed["core_member"]["family_name"] != document["core_member"]["family_name"]

    added = run_cli(env, "keys", "new-kek", str(kek_file), "--id", "kek-2027").stdout
    assert "kek-2027" in added
    assert json.loads(kek_file.read_text())["primary"] == "kek-2027"

    status = json.loads(run_cli(env, "keys", "status", "--json").stdout)
    referral_keys = status[topics + "circles.referrals.keys.v1"]
    assert referral_keys == {f"wrapped by {old_kek}": 1}

    rewrapped = json.loads(run_cli(env, "keys", "rewrap", "--json").stdout)
    assert rewrapped[topics + "circles.referrals.keys.v1"] == {"rewrapped": 1, "wrapped by kek-2027": 1}
    again = json.loads(run_cli(env, "keys", "rewrap", "--json").stdout)
    assert again[topics + "circles.referrals.keys.v1"]["rewrapped"] == 0

    retired = json.loads(kek_file.read_text())
    del retired["keys"][old_kek]
    kek_file.write_text(json.dumps(retired))
    assert asyncio.run(open_sealed(env, sealed)) == document

    duplicate = run_cli(env, "keys", "new-kek", str(kek_file), "--id", "kek-2027", check=False)
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr
