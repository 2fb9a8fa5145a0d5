"""Synthetic sample data for `circles dev up`: invented people only.

The demonstration agencies (with their API keys), a coordinator account, a volunteer pool across the four
local authorities, and a handful of referrals from each kind of agency, some ineligible or deferred, sent
through the partner API exactly as an agency would; then two sample circles (``seed_circles``) and a
volunteers' page account for a volunteer of the active one (``seed_volunteers``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.runtime.settings import RuntimeSettings

if TYPE_CHECKING:
    import httpx

AREAS = {
    "hull": ("hull", ["HU5", "HU6", "HU7", "HU8", "HU9"]),
    "er": ("east-riding", ["HU17", "HU13", "YO16", "YO15", "DN14"]),
    "nl": ("north-lincolnshire", ["DN15", "DN16", "DN17", "DN18", "DN20"]),
    "nel": ("north-east-lincolnshire", ["DN31", "DN32", "DN33", "DN34", "DN35"]),
}
SKILLS = [["learning-disability"], [], ["mental-health"], [], ["language:polish"], [], [], [], [], []]


def demo_volunteers(per_area: int = 10) -> list[dict[str, Any]]:
    """Ten volunteers in each local authority: both genders, some experienced, some with skills the
    referrals need, and one per area still waiting for supervision (so a deferral can be shown)."""
    pool = []
    for short, (area, districts) in AREAS.items():
        for n in range(per_area):
            pool.append(
                {
                    "id": f"vol-{short}-{n + 1:02d}",
                    "g": "female" if n % 2 == 0 else "male",
                    "la": area,
                    "pd": districts[n % len(districts)],
                    "exp": n < 3,
                    "skills": SKILLS[n % len(SKILLS)],
                    "ready": n != per_area - 1,
                }
            )
    return pool


VOLUNTEERS = demo_volunteers()


def with_changes(body: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``body`` with nested values replaced: ``core_member__family_name="X"`` sets that one field."""
    for path, value in changes.items():
        target = body
        *parents, leaf = path.split("__")
        for parent in parents:
            target = target[parent]
        target[leaf] = value
    return body


def sample_referral(reference: str, today: date, **changes: Any) -> dict[str, Any]:
    """A referral for an invented core member; ``changes`` replace parts (``custody__in_custody`` style)."""
    body: dict[str, Any] = {
        "agency_reference": reference,
        "referrer": {"name": "Demo Referrer", "role": "Case manager", "email": "demo.referrer@example.org"},
        "core_member": {
            "given_name": "Demo",
            "family_name": "Personinvented",
            "date_of_birth": "1980-05-17",
            "gender": "male",
            "local_authority": "hull",
            "postcode_district": "HU5",
        },
        "offence": {
            "sexual_offence": True,
            "registered_sex_offender": True,
            "mappa_category": 1,
            "mappa_level": 2,
        },
        "risk": {"level": "high", "tool": "OASys"},
        "custody": {
            "in_custody": True,
            "establishment": "HMP Hull",
            "expected_release_date": (today + timedelta(days=90)).isoformat(),
        },
        "consent": {"given": True, "date": today.isoformat()},
        "needs": {"learning_disability": False, "mental_health": False, "interpreter_language": None},
        "exclusion_zones": ["HU3"],
        "notes": "Synthetic demonstration referral.",
    }
    return with_changes(body, changes)


def demo_referrals(today: date) -> list[tuple[str, dict[str, Any]]]:
    """(agency, body) pairs: something from each kind of agency, including ineligible and deferred ones."""
    far = (today + timedelta(days=400)).isoformat()
    return [
        ("mappa-humberside", sample_referral("MAPPA-DEMO-001", today, risk__level="very-high")),
        (
            "mappa-humberside",
            sample_referral(
                "MAPPA-DEMO-002",
                today,
                core_member__local_authority="east-riding",
                core_member__postcode_district="HU17",
                custody__in_custody=False,
                custody__expected_release_date=None,
            ),
        ),
        ("hmp-hull", sample_referral("HMP-DEMO-001", today)),
        ("hmp-hull", sample_referral("HMP-DEMO-002", today, custody__expected_release_date=far)),
        ("hmp-hull", sample_referral("HMP-DEMO-003", today, custody__expected_release_date=None)),
        (
            "probation-hull-east-riding",
            sample_referral(
                "PROB-DEMO-001",
                today,
                risk__level="medium",
                custody__in_custody=False,
                custody__expected_release_date=None,
            ),
        ),
        (
            "probation-north-ne-lincs",
            sample_referral(
                "PROB-DEMO-002",
                today,
                core_member__local_authority="north-lincolnshire",
                core_member__postcode_district="DN15",
                exclusion_zones=[],
            ),
        ),
        ("police-mosovo", sample_referral("POLICE-DEMO-001", today, risk__level="low")),
        (
            "safeguarding-hull",
            sample_referral(
                "SAFE-DEMO-001",
                today,
                core_member__local_authority="outside-humberside",
                core_member__postcode_district="YO1",
            ),
        ),
        ("safeguarding-ne-lincs", sample_referral("SAFE-DEMO-002", today, consent__given=False)),
    ]


@dataclass
class Credentials:
    """Secrets of the local demonstration, kept in the data directory so that a restart finds them."""

    path: Path
    values: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Credentials:
        values = json.loads(path.read_text()) if path.exists() else {}
        return cls(path, values)

    def save(self) -> None:
        self.path.write_text(json.dumps(self.values, indent=2) + "\n")
        self.path.chmod(0o600)

    def secret(self, name: str) -> str:
        if name not in self.values:
            from services.coordinator.domain.passwords import generated_password

            self.values[name] = generated_password() + generated_password()
            self.save()
        return str(self.values[name])

    @property
    def agencies(self) -> dict[str, str]:
        return dict(self.values.get("agencies", {}))


async def seed(
    settings: RuntimeSettings,
    credentials: Credentials,
    *,
    partner_api: str,
    matching_api: str,
    today: date,
    webhooks: str | None = None,
) -> list[str]:
    """Everything a first start needs; returns what it did, one line each. Safe to run again.

    ``webhooks``: the dev webhook receiver's address; each demo agency is registered with its own URL there
    (``<webhooks>/agencies/<agency id>``) and its webhook secret is kept in the credentials."""
    # Imported here, not with the module: a second start (nothing to seed) does not pay for them.
    import httpx

    from services.coordinator.accounts import add_account
    from services.coordinator.domain.passwords import generated_password
    from services.dev.seed_circles import seed_circles
    from services.dev.seed_volunteers import volunteer_account
    from services.referrals.agencies import list_agencies, register_agency
    from services.referrals.demo import DEMO_AGENCIES

    bootstrap, prefix = settings.bootstrap_servers(), settings.topic_prefix
    done = []
    known = {a.agency_id for a in await list_agencies(bootstrap, prefix=prefix)}
    keys = credentials.agencies
    created = await asyncio.gather(
        *(
            register_agency(
                bootstrap,
                demo.agency_id,
                name=demo.name,
                kind=demo.kind,
                local_authorities=list(demo.areas),
                contact_email=demo.contact_email,
                webhook_url=f"{webhooks}/agencies/{demo.agency_id}" if webhooks else None,
                prefix=prefix,
            )
            for demo in DEMO_AGENCIES
            if demo.agency_id not in known
        )
    )
    keys.update({agency.agency_id: agency.api_key for agency in created})
    credentials.values["agencies"] = keys
    signing = dict(credentials.values.get("kafka_signing_keys", {}))
    signing.update({agency.agency_id: agency.kafka_signing_key for agency in created})
    credentials.values["kafka_signing_keys"] = signing  # for trying a signed Kafka submission (README)
    secrets = dict(credentials.values.get("webhook_secrets", {}))
    secrets.update({agency.agency_id: agency.webhook_secret for agency in created if agency.webhook_secret})
    if secrets:
        credentials.values["webhook_secrets"] = secrets  # what the dev webhook receiver checks with
    credentials.save()
    if "coordinator_password" not in credentials.values:
        password = generated_password()
        await add_account(settings, "coordinator", "Demo Coordinator", password)
        credentials.values["coordinator_password"] = password
        credentials.save()
        done.append("coordinator account created")
    token = credentials.secret("coordinator_api_token")
    async with httpx.AsyncClient(
        base_url=matching_api, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as client:
        existing = {v["volunteer_id"] for v in (await client.get("/v1/volunteers")).json()}
        missing = [volunteer for volunteer in VOLUNTEERS if volunteer["id"] not in existing]
        # Each request waits for the matching worker: several volunteers at once, each one's steps in order.
        await _at_most(SEED_CONCURRENCY, [_add_volunteer(client, volunteer, today) for volunteer in missing])
        done.append(f"{len(VOLUNTEERS)} volunteers in the pool")
    async with httpx.AsyncClient(base_url=partner_api, timeout=60) as client:
        referrals = demo_referrals(today)
        for response in await asyncio.gather(
            *(
                client.post("/v1/referrals", json=body, headers={"Authorization": f"Bearer {keys[agency]}"})
                for agency, body in referrals
            )
        ):
            response.raise_for_status()
        done.append(f"{len(referrals)} sample referrals submitted through the partner API")
    async with httpx.AsyncClient(
        base_url=matching_api, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as client:
        done += await seed_circles(settings, client)
    if "volunteer_password" not in credentials.values:
        account = await volunteer_account(settings)
        if account is not None:
            credentials.values["volunteer_id"], credentials.values["volunteer_password"] = account
            credentials.save()
            done.append(f"a volunteers' page account for {account[0]}, a volunteer of the active circle")
    return done


SEED_CONCURRENCY = 8


async def _at_most(limit: int, steps: list[Coroutine[Any, Any, None]]) -> None:
    gate = asyncio.Semaphore(limit)

    async def gated(step: Coroutine[Any, Any, None]) -> None:
        async with gate:
            await step

    await asyncio.gather(*(gated(step) for step in steps))


async def _add_volunteer(client: httpx.AsyncClient, volunteer: dict[str, Any], today: date) -> None:
    body = {
        "volunteer_id": volunteer["id"],
        "name": f"Demo Volunteer {volunteer['id'][4:]}",
        "gender": volunteer["g"],
        "local_authority": volunteer["la"],
        "postcode_district": volunteer["pd"],
        "experienced": volunteer["exp"],
        "skills": volunteer["skills"],
        "availability": ["mon-eve", "wed-eve", "sat-am"],
    }
    (await client.post("/v1/volunteers", json=body)).raise_for_status()
    steps = [("vetting", today - timedelta(days=200)), ("training", today - timedelta(days=150))]
    if volunteer.get("ready", True):
        steps.append(("supervision", today - timedelta(days=10)))
    for path, day in steps:
        answer = await client.post(f"/v1/volunteers/{volunteer['id']}/{path}", json={"date": day.isoformat()})
        answer.raise_for_status()


def today_utc() -> date:
    return datetime.now(UTC).date()
