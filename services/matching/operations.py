"""What the coordinator can do, for the CLI and the HTTP API alike: change volunteer records and decide on
proposals. Each operation checks the request against the current state (for a quick, clear refusal),
publishes one command, and reports what the matching worker made of it."""

from __future__ import annotations

import uuid
from datetime import date

from schemas.coordinator_api import DecisionRequest
from schemas.events.matching import MatchDecided
from schemas.events.volunteers import ChangeVolunteer, VolunteerRecord, VolunteerRegistered
from schemas.topics import MATCHING_EVENTS, VOLUNTEER_COMMANDS, VOLUNTEERS
from services.matching.domain.records import UnknownVolunteer, VolunteerRefused, apply_change
from services.matching.views import MatchingState
from services.runtime.kafka import OutcomeWatcher, Publisher

WAIT_SECONDS = 20.0


class Refused(Exception):
    """The request cannot apply; the message says why (ids and codes only)."""

    status = 422


class NotFound(Refused):
    status = 404


class Conflicting(Refused):
    status = 409


class NotApplied(Exception):
    """The command was sent but the matching worker has not answered in time."""


def volunteer_watcher(bootstrap_servers: str, prefix: str = "") -> OutcomeWatcher:
    return OutcomeWatcher(bootstrap_servers, [prefix + VOLUNTEERS.name, prefix + VOLUNTEER_COMMANDS.dlq])


def decision_watcher(bootstrap_servers: str, prefix: str = "") -> OutcomeWatcher:
    return OutcomeWatcher(
        bootstrap_servers, [prefix + MATCHING_EVENTS.name, prefix + "circles.matching.inbox.v1.dlq"]
    )


async def change_volunteer(
    state: MatchingState,
    publisher: Publisher,
    watcher: OutcomeWatcher,
    command: ChangeVolunteer,
    today: date,
) -> VolunteerRecord:
    """Send a change to one volunteer record and wait until it is applied (or refused, with why)."""
    try:
        apply_change(state.records.get(command.volunteer_id), command, today)
    except UnknownVolunteer as unknown:
        raise NotFound(str(unknown)) from None
    except VolunteerRefused as refused:
        status = Conflicting if "already" in str(refused) or "withdrawn" in str(refused) else Refused
        raise status(str(refused)) from None
    envelope = publisher.envelope(command, f"volunteer-{command.volunteer_id}")
    await publisher.publish(command, envelope)
    outcome = await watcher.wait(str(envelope.id), WAIT_SECONDS)
    if outcome is None:
        raise NotApplied("the change was sent but not yet applied: is the matching worker running?")
    if outcome.refused:
        raise Refused(outcome.error)
    await publisher.codec.prepare([outcome.record.value])  # its sealing codec: it sent a sealed command
    return publisher.codec.parse(VolunteerRegistered, outcome.record.value).volunteer


async def decide(
    state: MatchingState,
    publisher: Publisher,
    watcher: OutcomeWatcher,
    proposal_id: uuid.UUID,
    request: DecisionRequest,
    decided_by: str,
) -> tuple[MatchDecided, list[str]]:
    """Decide on an open proposal; returns the decision and what followed (event types), when known."""
    found = state.proposal(proposal_id)
    if found is None:
        raise NotFound(f"no proposal {proposal_id}")
    case, proposal = found
    if proposal.status != "open":
        raise Conflicting(f"proposal {proposal_id} is already {proposal.status}")
    in_proposal = {v.volunteer_id for v in proposal.volunteers}
    strangers = sorted(set(request.rejected_volunteer_ids) - in_proposal)
    if strangers:
        raise Refused(f"volunteers {', '.join(strangers)} are not in proposal {proposal_id}")
    if request.outcome == "accept" and request.rejected_volunteer_ids:
        raise Refused("an acceptance names no rejected volunteers")
    decision = MatchDecided(
        referral_id=case.referral_id,
        agency_id=case.agency_id,
        decision_id=uuid.uuid4(),
        proposal_id=proposal_id,
        outcome=request.outcome,
        rejected_volunteer_ids=request.rejected_volunteer_ids,
        note=request.note,
        decided_by=decided_by,
        decided_at=publisher.clock.now(),  # CIRCLES_CLOCK: a rehearsal's moved clock dates the circle
    )
    envelope = publisher.envelope(decision, case.correlation_id or f"decision-{decision.decision_id}")
    await publisher.publish(decision, envelope)
    outcome = await watcher.wait(str(envelope.id), WAIT_SECONDS)
    if outcome is not None and outcome.refused:
        raise Refused(outcome.error)
    followed = [dict(outcome.record.headers or ()).get("ce_type", b"").decode()] if outcome else []
    return decision, followed
