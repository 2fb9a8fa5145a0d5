"""The agency's view of its circles: the rules that build it from the circles facts, and the partner API's
``circle`` object, ``circle_ended`` status and ``/v1/concerns`` (with fakes for Kafka)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from schemas.common import ReferralStatus
from schemas.events.circles import (
    AcknowledgeConcern,
    CircleActivated,
    CircleEnded,
    CircleExtended,
    CircleFact,
    CircleOutcome,
    CircleStatus,
    ConcernAcknowledged,
    ConcernEscalated,
    ConcernLevel,
    ConcernRaised,
    ConcernState,
    EndReason,
    MeetingRecorded,
    MinutesOverdue,
    RaiseConcern,
    ReviewRecorded,
    circle_id_of,
)
from schemas.events.matching import CircleFormed
from schemas.events.referrals import SubmitReferral
from services.referrals.api import create_api
from services.referrals.circleview import CircleIndex
from services.referrals.domain import circles
from services.referrals.domain.circles import CircleEntry
from services.referrals.domain.policy import load_policy
from services.referrals.domain.referral import ReferralEntry, on_matching_event, referral_id_for, submit
from services.referrals.readmodel import ReferralIndex
from services.runtime.clock import FixedClock
from tests.samples import SUMMARY_SENTINEL, sample, submission
from tests.unit.referrals.test_api import NOW, Keys, Recorder, auth

SUMMARY = SUMMARY_SENTINEL
AGENCY = "mappa"


def facts_for(referral_id: uuid.UUID, agency_id: str = AGENCY) -> dict[str, Any]:
    return {"referral_id": referral_id, "circle_id": circle_id_of(referral_id), "agency_id": agency_id}


def replay(entry: CircleEntry | None, *items: CircleFact | RaiseConcern) -> CircleEntry | None:
    for item in items:
        changed = (
            circles.add_summary(entry, item)
            if isinstance(item, RaiseConcern)
            else circles.apply_fact(entry, item)
        )
        entry = changed or entry
    return entry


RID = uuid.UUID("00000000-0000-4000-8000-0000000000aa")
ACTIVATED = sample(CircleActivated).model_copy(update=facts_for(RID))
MEETING = sample(MeetingRecorded).model_copy(update=facts_for(RID))
RAISED = sample(ConcernRaised).model_copy(update=facts_for(RID))
RAISE = sample(RaiseConcern).model_copy(update={"referral_id": RID})


# -- the rules ---------------------------------------------------------------------------------------------


def test_a_circle_is_shown_once_activated_with_its_meetings_reviews_and_concerns() -> None:
    assert circles.circle_view(replay(None, MEETING)) is None  # not activated (yet): nothing to show
    second = MEETING.model_copy(update={"meeting_id": uuid.uuid4(), "held_on": date(2026, 11, 9)})
    review = sample(ReviewRecorded).model_copy(update=facts_for(RID))
    entry = replay(None, ACTIVATED, MEETING, second, MEETING, review, RAISED)
    view = circles.circle_view(entry)
    assert view is not None
    assert view.circle_id == circle_id_of(RID) and view.status is CircleStatus.ACTIVE
    assert view.formed_on == ACTIVATED.formed_on
    assert view.meetings_held == 2  # the same meeting twice counts once
    assert view.last_meeting_on == MEETING.held_on  # the later of the two, whatever the order
    assert view.next_review_due == review.next_review_due
    assert view.open_concerns == 1 and view.outcome is None


def test_facts_seen_again_or_not_shown_change_nothing() -> None:
    entry = replay(None, ACTIVATED, MEETING, RAISED)
    assert circles.apply_fact(entry, MEETING) is None
    assert circles.apply_fact(entry, RAISED) is None
    for quiet in (sample(MinutesOverdue), sample(CircleExtended)):
        assert circles.apply_fact(entry, quiet.model_copy(update=facts_for(RID))) is None


def test_a_summary_joins_its_concern_whichever_comes_first() -> None:
    summary_first = replay(None, ACTIVATED, RAISE, RAISED)
    fact_first = replay(None, ACTIVATED, RAISED, RAISE)
    for entry in (summary_first, fact_first):
        assert entry is not None
        concern = entry.concern(RAISED.concern_id)
        assert concern is not None and concern.raised and concern.summary == SUMMARY
    only_summary = replay(None, ACTIVATED, RAISE)
    assert only_summary is not None and only_summary.raised_concerns() == []  # not raised: not shown
    other = RAISE.model_copy(update={"summary": "another text"})
    assert circles.add_summary(summary_first, other) is None  # the first summary stays


def test_acknowledged_and_escalated_concerns() -> None:
    later = NOW + timedelta(hours=5)
    escalated = sample(ConcernEscalated).model_copy(update={**facts_for(RID), "escalated_at": later})
    acknowledged = sample(ConcernAcknowledged).model_copy(
        update={**facts_for(RID), "acknowledged_at": later + timedelta(minutes=1)}
    )
    entry = replay(None, ACTIVATED, RAISED, escalated)
    assert entry is not None
    concern = entry.concern(RAISED.concern_id)
    assert concern is not None and concern.escalated_at == later and concern.state is ConcernState.OPEN
    entry = replay(entry, acknowledged)
    assert entry is not None
    concern = entry.concern(RAISED.concern_id)
    assert concern is not None and concern.state is ConcernState.ACKNOWLEDGED
    view = circles.circle_view(entry)
    assert view is not None and view.open_concerns == 0


def test_an_ended_circle_makes_a_formed_referral_circle_ended() -> None:
    ended = sample(CircleEnded).model_copy(
        update={**facts_for(RID), "outcome": CircleOutcome.ENDED_EARLY, "reason": EndReason.MOVED_AWAY}
    )
    active = replay(None, ACTIVATED)
    entry = replay(active, ended)
    view = circles.circle_view(entry)
    assert view is not None and view.status is CircleStatus.ENDED
    assert view.outcome is CircleOutcome.ENDED_EARLY and view.end_reason is EndReason.MOVED_AWAY
    assert view.next_review_due is None and view.ended_on == ended.ended_on
    assert circles.referral_status(ReferralStatus.CIRCLE_FORMED, entry) is ReferralStatus.CIRCLE_ENDED
    assert circles.referral_status(ReferralStatus.CIRCLE_FORMED, active) is ReferralStatus.CIRCLE_FORMED
    assert circles.referral_status(ReferralStatus.WITHDRAWN, entry) is ReferralStatus.WITHDRAWN
    assert circles.referral_status(ReferralStatus.CIRCLE_FORMED, None) is ReferralStatus.CIRCLE_FORMED


# -- the partner API ---------------------------------------------------------------------------------------


class World:
    def __init__(self) -> None:
        self.index, self.circles, self.recorder = ReferralIndex(), CircleIndex(), Recorder()
        app = create_api(
            authenticator=Keys(),
            index=self.index,
            publisher=self.recorder,
            access_log=self.recorder,
            circles=self.circles,
            base_url="http://partners.test",
            clock=FixedClock(NOW),
        )
        self.client = TestClient(app, raise_server_exceptions=False)

    def formed_referral(self, agency_id: str = AGENCY, reference: str = "MAPPA-1") -> uuid.UUID:
        """A referral of ``agency_id`` whose circle is formed, in the referral read model."""
        body = submission(agency_reference=reference)
        referral_id = referral_id_for(agency_id, reference)
        command = SubmitReferral(
            referral_id=referral_id,
            agency_id=agency_id,
            submission=body,
            fingerprint=body.fingerprint(),
            received_at=NOW,
        )
        change = submit(None, command, uuid.uuid4(), load_policy(), NOW, "u")
        formed = sample(CircleFormed).model_copy(update={"referral_id": referral_id, "agency_id": agency_id})
        after = on_matching_event(change.entry, formed, uuid.uuid4(), NOW)
        entry = after.entry or change.entry
        assert isinstance(entry, ReferralEntry) and entry.record is not None
        self.index.apply(entry.record)
        return referral_id

    def circle(self, referral_id: uuid.UUID, *items: CircleFact | RaiseConcern) -> None:
        key = str(referral_id)
        current = self.circles._entries.get(referral_id)
        self.circles.apply(key, replay(current, *items))

    def raise_concern(self, referral_id: uuid.UUID, agency_id: str = AGENCY, **changes: Any) -> uuid.UUID:
        concern_id = uuid.uuid4()
        fact = RAISED.model_copy(
            update={**facts_for(referral_id, agency_id), "concern_id": concern_id, **changes}
        )
        raise_ = RAISE.model_copy(update={"referral_id": referral_id, "concern_id": concern_id})
        self.circle(referral_id, fact, raise_)
        return concern_id


@pytest.fixture
def world() -> World:
    return World()


def active(world: World, agency_id: str = AGENCY, reference: str = "MAPPA-1") -> uuid.UUID:
    referral_id = world.formed_referral(agency_id, reference)
    world.circle(referral_id, ACTIVATED.model_copy(update=facts_for(referral_id, agency_id)))
    return referral_id


def test_get_referral_has_its_circle_and_circle_ended_status(world: World) -> None:
    referral_id = world.formed_referral()
    before = world.client.get(f"/v1/referrals/{referral_id}", headers=auth()).json()
    assert before["status"] == "circle_formed" and before["circle"] is None  # not activated yet
    world.circle(referral_id, ACTIVATED.model_copy(update=facts_for(referral_id)))
    world.circle(referral_id, MEETING.model_copy(update=facts_for(referral_id)))
    world.raise_concern(referral_id)
    body = world.client.get(f"/v1/referrals/{referral_id}", headers=auth()).json()
    assert body["circle"] == {
        "circle_id": circle_id_of(referral_id),
        "status": "active",
        "formed_on": ACTIVATED.formed_on.isoformat(),
        "meetings_held": 1,
        "last_meeting_on": MEETING.held_on.isoformat(),
        "next_review_due": ACTIVATED.next_review_due.isoformat(),
        "open_concerns": 1,
        "outcome": None,
        "end_reason": None,
        "ended_on": None,
    }
    world.circle(referral_id, sample(CircleEnded).model_copy(update=facts_for(referral_id)))
    ended = world.client.get(f"/v1/referrals/{referral_id}", headers=auth()).json()
    assert ended["status"] == "circle_ended" and ended["circle"]["outcome"] == "completed"
    listed = world.client.get("/v1/referrals?status=circle_ended", headers=auth()).json()["referrals"]
    assert [r["referral_id"] for r in listed] == [str(referral_id)]
    assert world.client.get("/v1/referrals?status=circle_formed", headers=auth()).json()["referrals"] == []


def test_concerns_listed_read_and_acknowledged_once(world: World) -> None:
    referral_id = active(world)
    urgent = world.raise_concern(referral_id)
    routine = world.raise_concern(
        referral_id, level=ConcernLevel.ROUTINE, raised_at=NOW - timedelta(days=1), escalation_due_at=None
    )
    listed = world.client.get("/v1/concerns?state=open", headers=auth()).json()["concerns"]
    assert [c["concern_id"] for c in listed] == [str(urgent), str(routine)]  # newest first
    assert listed[0] == {
        "concern_id": str(urgent),
        "referral_id": str(referral_id),
        "circle_id": circle_id_of(referral_id),
        "level": "urgent",
        "raised_at": RAISED.raised_at.isoformat().replace("+00:00", "Z"),
        "state": "open",
        "acknowledged_at": None,
        "escalated_at": None,
        "links": {
            "self": f"http://partners.test/v1/concerns/{urgent}",
            "acknowledgement": f"http://partners.test/v1/concerns/{urgent}/acknowledgement",
            "referral": f"http://partners.test/v1/referrals/{referral_id}",
        },
    }
    assert all("summary" not in c for c in listed)  # the list never carries a summary
    one = world.client.get(f"/v1/concerns/{urgent}", headers=auth()).json()
    assert one["summary"] == SUMMARY and one["state"] == "open"

    first = world.client.post(
        f"/v1/concerns/{urgent}/acknowledgement", json={"note": "passed to the OM"}, headers=auth()
    )
    assert first.status_code == 200 and first.json()["state"] == "acknowledged"
    assert first.json()["acknowledged_at"] == NOW.isoformat().replace("+00:00", "Z")
    again = world.client.post(f"/v1/concerns/{urgent}/acknowledgement", json={}, headers=auth())
    assert again.status_code == 200 and again.json() == first.json()
    commands = [c for c, _ in world.recorder.commands]
    assert len(commands) == 1
    command = commands[0]
    assert isinstance(command, AcknowledgeConcern)
    assert command.concern_id == urgent and command.agency_id == AGENCY and command.note == "passed to the OM"
    assert command.referral_id == referral_id and command.requested_by == "agency:mappa"

    assert [
        c["concern_id"]
        for c in world.client.get("/v1/concerns?state=open", headers=auth()).json()["concerns"]
    ] == [str(routine)]
    acknowledged = world.client.get("/v1/concerns?state=acknowledged", headers=auth()).json()["concerns"]
    assert [c["concern_id"] for c in acknowledged] == [str(urgent)]
    circle = world.client.get(f"/v1/referrals/{referral_id}", headers=auth()).json()["circle"]
    assert circle["open_concerns"] == 1

    # the circles service confirms (its time is the request's): the same answer, still no new command
    confirmed = sample(ConcernAcknowledged).model_copy(
        update={**facts_for(referral_id), "concern_id": urgent, "acknowledged_at": NOW}
    )
    world.circle(referral_id, confirmed)
    assert world.circles.acknowledged_at(urgent) is None  # nothing laid over the facts any more
    third = world.client.post(f"/v1/concerns/{urgent}/acknowledgement", json={"note": "x"}, headers=auth())
    assert third.status_code == 200 and third.json() == first.json()
    assert len(world.recorder.commands) == 1


def test_another_agencys_circle_and_concern_are_404(world: World) -> None:
    theirs = active(world, "police-mosovo", "POL-1")
    concern_id = world.raise_concern(theirs, "police-mosovo")
    mine = active(world)
    world.raise_concern(mine)
    police = auth("key-police")
    assert world.client.get(f"/v1/concerns/{concern_id}", headers=police).status_code == 200
    for method, path, body in (
        ("GET", f"/v1/concerns/{concern_id}", None),
        ("POST", f"/v1/concerns/{concern_id}/acknowledgement", {"note": "mine now"}),
        ("GET", f"/v1/concerns/{uuid.uuid4()}", None),
        ("POST", f"/v1/concerns/{uuid.uuid4()}/acknowledgement", {}),
        ("GET", f"/v1/referrals/{theirs}", None),
    ):
        response = world.client.request(method, path, json=body, headers=auth())
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"
    listed = world.client.get("/v1/concerns", headers=auth()).json()["concerns"]
    assert {c["referral_id"] for c in listed} == {str(mine)}
    assert world.recorder.commands == []


def test_bad_concern_requests_are_problems_with_every_field_error(world: World) -> None:
    referral_id = active(world)
    concern_id = world.raise_concern(referral_id)
    bad = world.client.post(
        f"/v1/concerns/{concern_id}/acknowledgement",
        json={"note": "x" * 1001, "extra": 1},
        headers=auth(),
    )
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert {tuple(e["loc"]) for e in bad.json()["errors"]} == {("body", "note"), ("body", "extra")}
    assert "x" * 50 not in bad.text  # the values are not echoed
    assert world.client.get("/v1/concerns?state=closed", headers=auth()).status_code == 422
    assert world.client.get("/v1/concerns/not-an-id", headers=auth()).status_code == 422
    assert (
        world.client.post(
            f"/v1/concerns/{concern_id}/acknowledgement", content=b"x", headers=auth()
        ).status_code
        == 415
    )
    assert world.client.get("/v1/concerns").status_code == 401
    assert world.recorder.commands == []


def test_concern_requests_are_in_the_access_log(world: World) -> None:
    referral_id = active(world)
    concern_id = world.raise_concern(referral_id)
    world.client.get(f"/v1/concerns/{concern_id}", headers=auth())
    world.client.post(f"/v1/concerns/{concern_id}/acknowledgement", json={}, headers=auth())
    world.client.get("/v1/concerns", headers=auth())
    recorded = [
        (access.action, list(access.referral_ids), status)
        for _, access, _, _, status in world.recorder.accesses
    ]
    assert recorded == [
        ("concern", [referral_id], 200),
        ("acknowledge_concern", [referral_id], 200),
        ("concerns", [referral_id], 200),
    ]


def test_the_openapi_document_has_the_concern_operations() -> None:
    from services.referrals.api import openapi_document

    paths = openapi_document()["paths"]
    assert set(paths["/v1/concerns"]) == {"get"}
    assert set(paths["/v1/concerns/{concern_id}"]) == {"get"}
    assert set(paths["/v1/concerns/{concern_id}/acknowledgement"]) == {"post"}
    view = openapi_document()["components"]["schemas"]["ReferralView"]["properties"]
    assert "circle" in view
    statuses = openapi_document()["components"]["schemas"]["ReferralStatus"]["enum"]
    assert "circle_ended" in statuses
