"""The referral aggregate: its record (the worker's state) and how commands and events change it.

Every function returns a ``Change``: the new entry (or ``None`` when nothing changes) and the events to
publish, each with an id derived from the id of what caused it. Processing the same command again
therefore finds its events already in the history and changes nothing; a *new* identical submission is
also a no-op, and a different body under a used ``agency_reference`` is a conflict.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, Field

from schemas.common import PERSONAL, AgencyId, Contract, Outcome, ReferralStatus
from schemas.envelope import Event
from schemas.events.circles import CircleEnded
from schemas.events.matching import CircleFormed, MatchDeferred, MatchProposed, ProposalCancelled
from schemas.events.referrals import (
    EraseReferral,
    ReassessReferral,
    ReferralAssessed,
    ReferralErased,
    ReferralSubmitted,
    ReferralWithdrawn,
    SubmitReferral,
    WithdrawReferral,
)
from schemas.partner_api import Decision, HistoryEntry, ReferralSubmission
from schemas.topics import EVENT_TYPES
from services.referrals.domain.eligibility import Assessment, assess
from services.referrals.domain.minimise import profile_of
from services.referrals.domain.policy import EligibilityPolicy
from services.referrals.domain.status import MatchingEvent, after_decision
from services.runtime.ids import derive_id

SCHEME_TIMEZONE = ZoneInfo("Europe/London")


class ReferralRecord(Contract):
    """Everything the referrals service knows about one referral. Private: holds personal data, sealed in
    Kafka with the referral's data key; once erased, ``submission``, ``fingerprint`` and
    ``withdrawal_reason`` are gone and the rest (ids, dates, decision, status, history) remains."""

    referral_id: uuid.UUID
    agency_id: AgencyId
    agency_reference: str
    version: int
    submission: ReferralSubmission | None
    fingerprint: Annotated[str, Field(json_schema_extra=PERSONAL)] | None
    status: ReferralStatus
    decision: Decision | None = None
    channel: str = "http"
    submitted_at: AwareDatetime
    updated_at: AwareDatetime
    withdrawal_reason: Annotated[str, Field(json_schema_extra=PERSONAL)] | None = None
    erased_at: AwareDatetime | None = None
    history: list[HistoryEntry] = []

    @property
    def erased(self) -> bool:
        return self.erased_at is not None

    def has_event(self, event_id: uuid.UUID) -> bool:
        return any(entry.event_id == event_id for entry in self.history)


class ParkedEvent(Contract):
    """A matching event that arrived before its referral's record (possible after a crash and restart)."""

    event_id: uuid.UUID
    type: str
    time: AwareDatetime
    data: dict[str, Any]


class ReferralEntry(Contract):
    """The table value: the record, and matching events parked until the record exists."""

    record: ReferralRecord | None = None
    parked: list[ParkedEvent] = []


@dataclass
class Change:
    entry: ReferralEntry | None = None
    events: list[tuple[uuid.UUID, Event]] = field(default_factory=list)


class SubmissionConflict(Exception):
    """The agency_reference is already used by a referral with a different body (use PUT to amend)."""


class UnknownReferral(Exception):
    pass


class ReferralWithdrawnError(Exception):
    """A withdrawn referral cannot be amended."""


class ReferralErasedError(Exception):
    """The referral's personal data was erased: it can be neither amended nor submitted again."""


def referral_id_for(agency_id: str, agency_reference: str) -> uuid.UUID:
    """One id per agency and reference, however the referral arrives (HTTP, Kafka, a retry)."""
    return derive_id("referral", agency_id, agency_reference)


def scheme_today(now: datetime) -> date:
    return now.astimezone(SCHEME_TIMEZONE).date()


def submit(
    entry: ReferralEntry | None,
    command: SubmitReferral,
    command_id: uuid.UUID,
    policy: EligibilityPolicy,
    now: datetime,
    detail_url: str,
) -> Change:
    current = entry.record if entry else None
    submitted_id = derive_id(command_id, "submitted")
    if current is not None and current.has_event(submitted_id):
        return Change()  # this very command was applied before (redelivery after a crash)
    if current is not None and current.erased:
        raise ReferralErasedError(f"referral {command.referral_id} was erased")
    if command.amend:
        if current is None:
            raise UnknownReferral(f"referral {command.referral_id} does not exist")
        if current.status is ReferralStatus.WITHDRAWN:
            raise ReferralWithdrawnError(f"referral {command.referral_id} is withdrawn")
        if command.fingerprint == current.fingerprint:
            return Change()
        version = current.version + 1
    else:
        if current is not None:
            if current.fingerprint == command.fingerprint:
                return Change()  # an identical resubmission: nothing new happens
            raise SubmissionConflict(
                f"agency_reference of referral {command.referral_id} is used with a different body"
            )
        version = 1

    today = scheme_today(now)
    profile = profile_of(command.submission, today)
    submitted = ReferralSubmitted(
        referral_id=command.referral_id,
        agency_id=command.agency_id,
        agency_reference=command.submission.agency_reference,
        version=version,
        submitted_at=command.received_at,
        profile=profile,
        detail_url=detail_url,
    )
    assessment = assess(command.submission, policy, today)
    decision = _decision(assessment, now)
    assessed = ReferralAssessed(
        referral_id=command.referral_id,
        agency_id=command.agency_id,
        agency_reference=command.submission.agency_reference,
        version=version,
        decision=decision,
        profile=profile,
    )
    assessed_id = derive_id(command_id, "assessed")
    how = "amended" if command.amend else f"received via {command.channel.upper()}"
    history = [
        *(current.history if current else []),
        HistoryEntry(
            event_id=submitted_id,
            type=ReferralSubmitted.event_type,
            time=now,
            summary=f"Referral {how} (version {version}).",
        ),
        HistoryEntry(
            event_id=assessed_id, type=ReferralAssessed.event_type, time=now, summary=_summary(decision)
        ),
    ]
    status = after_decision(current.status if current else None, decision.outcome)
    record = ReferralRecord(
        referral_id=command.referral_id,
        agency_id=command.agency_id,
        agency_reference=command.submission.agency_reference,
        version=version,
        submission=command.submission,
        fingerprint=command.fingerprint,
        status=status,
        decision=decision,
        channel=command.channel,
        submitted_at=current.submitted_at if current else command.received_at,
        updated_at=now,
        history=history,
    )
    parked = entry.parked if entry else []
    record = _apply_parked(record, parked)
    return Change(ReferralEntry(record=record), [(submitted_id, submitted), (assessed_id, assessed)])


def withdraw(
    entry: ReferralEntry | None, command: WithdrawReferral, command_id: uuid.UUID, now: datetime
) -> Change:
    current = entry.record if entry else None
    if current is None:
        raise UnknownReferral(f"referral {command.referral_id} does not exist")
    event_id = derive_id(command_id, "withdrawn")
    if current.status is ReferralStatus.WITHDRAWN or current.has_event(event_id):
        return Change()
    if current.erased:
        raise ReferralErasedError(f"referral {command.referral_id} was erased")
    event = ReferralWithdrawn(
        referral_id=current.referral_id,
        agency_id=current.agency_id,
        agency_reference=current.agency_reference,
        version=current.version,
        withdrawn_at=now,
    )
    record = current.model_copy(
        update={
            "status": ReferralStatus.WITHDRAWN,
            "withdrawal_reason": command.reason,
            "updated_at": now,
            "history": [
                *current.history,
                HistoryEntry(
                    event_id=event_id,
                    type=ReferralWithdrawn.event_type,
                    time=now,
                    summary="Referral withdrawn by the referring agency.",
                ),
            ],
        }
    )
    return Change(ReferralEntry(record=record), [(event_id, event)])


ERASED_BY = {"request": "data-protection", "retention": "retention-policy"}
"""Who asked, as ``ReferralErased`` (read by every service) says it: a role, never a person. The person
(the OS user who ran the command) is kept only in the private erase command and the access log."""

OPEN = frozenset(
    {
        ReferralStatus.RECEIVED,
        ReferralStatus.ELIGIBLE,
        ReferralStatus.NEEDS_INFORMATION,
        ReferralStatus.DEFERRED,
        ReferralStatus.PROPOSED,
        ReferralStatus.AWAITING_VOLUNTEERS,
    }
)
"""Statuses in which something may still happen to a referral."""


def erase(
    entry: ReferralEntry | None, command: EraseReferral, command_id: uuid.UUID, now: datetime
) -> Change:
    """Drop the personal data and record that it was erased; an open referral is withdrawn first, since
    nothing more can be done for a core member nobody can name. The worker then destroys the data keys."""
    current = entry.record if entry else None
    if current is None:
        raise UnknownReferral(f"referral {command.referral_id} does not exist")
    erased_id = derive_id(command_id, "erased")
    if current.erased:
        return _erasure_again(current, command, command_id) if current.has_event(erased_id) else Change()
    events: list[tuple[uuid.UUID, Event]] = []
    history = list(current.history)
    status = current.status
    if status in OPEN:
        withdrawn_id = derive_id(command_id, "withdrawn")
        withdrawn = ReferralWithdrawn(
            referral_id=current.referral_id,
            agency_id=current.agency_id,
            agency_reference=current.agency_reference,
            version=current.version,
            withdrawn_at=now,
        )
        events.append((withdrawn_id, withdrawn))
        summary = "Referral withdrawn because its personal data was erased."
        history.append(
            HistoryEntry(event_id=withdrawn_id, type=withdrawn.event_type, time=now, summary=summary)
        )
        status = ReferralStatus.WITHDRAWN
    erased = ReferralErased(
        referral_id=current.referral_id,
        agency_id=current.agency_id,
        agency_reference=current.agency_reference,
        erased_at=now,
        reason=command.reason,
        requested_by=ERASED_BY[command.reason],
    )
    events.append((erased_id, erased))
    why = "on request" if command.reason == "request" else "under the retention policy"
    if command.note:
        why = f"{why} ({command.note})"
    history.append(
        HistoryEntry(
            event_id=erased_id, type=erased.event_type, time=now, summary=f"Personal data erased {why}."
        )
    )
    record = current.model_copy(
        update={
            "submission": None,
            "fingerprint": None,
            "withdrawal_reason": None,
            "status": status,
            "erased_at": now,
            "updated_at": now,
            "history": history,
        }
    )
    return Change(ReferralEntry(record=record), events)


def _erasure_again(record: ReferralRecord, command: EraseReferral, command_id: uuid.UUID) -> Change:
    """This command erased the referral before a crash cut its events short: publish them again (same ids,
    so whoever received them already drops the copies); the record stays as it is."""
    assert record.erased_at is not None
    events: list[tuple[uuid.UUID, Event]] = []
    withdrawn_id = derive_id(command_id, "withdrawn")
    if record.has_event(withdrawn_id):
        withdrawn = ReferralWithdrawn(
            referral_id=record.referral_id,
            agency_id=record.agency_id,
            agency_reference=record.agency_reference,
            version=record.version,
            withdrawn_at=record.erased_at,
        )
        events.append((withdrawn_id, withdrawn))
    erased = ReferralErased(
        referral_id=record.referral_id,
        agency_id=record.agency_id,
        agency_reference=record.agency_reference,
        erased_at=record.erased_at,
        reason=command.reason,
        requested_by=ERASED_BY[command.reason],
    )
    events.append((derive_id(command_id, "erased"), erased))
    return Change(None, events)


class DecisionDates(BaseModel):
    reassess_on: date | None = None


class RecordDates(BaseModel):
    status: ReferralStatus
    decision: DecisionDates | None = None
    submission: dict[str, Any] | None = None


class ReassessmentView(BaseModel):
    """The fields of a table value (``ReferralEntry``) that say when it is due for re-assessment; none is
    personal, so they are read from the stored value without opening it (the re-assessment index)."""

    record: RecordDates | None = None


def reassessment_date(record: ReferralRecord | RecordDates) -> date | None:
    """When a deferred referral is to be assessed again (its release date comes into the window)."""
    if record.submission is None or record.status is not ReferralStatus.DEFERRED or record.decision is None:
        return None
    return record.decision.reassess_on


def due_for_reassessment(record: ReferralRecord, today: date) -> bool:
    due = reassessment_date(record)
    return due is not None and due <= today


def reassess(
    entry: ReferralEntry | None,
    command: ReassessReferral,
    command_id: uuid.UUID,
    policy: EligibilityPolicy,
    now: datetime,
) -> Change:
    current = entry.record if entry else None
    if current is None or not due_for_reassessment(current, command.as_of):
        return Change()  # no longer deferred, or not yet due: nothing to do
    event_id = derive_id(command_id, "assessed")
    assert current.submission is not None  # due_for_reassessment
    assessment = assess(current.submission, policy, command.as_of)
    decision = _decision(assessment, now)
    event = ReferralAssessed(
        referral_id=current.referral_id,
        agency_id=current.agency_id,
        agency_reference=current.agency_reference,
        version=current.version,
        decision=decision,
        profile=profile_of(current.submission, command.as_of),
    )
    record = current.model_copy(
        update={
            "status": after_decision(current.status, decision.outcome),
            "decision": decision,
            "updated_at": now,
            "history": [
                *current.history,
                HistoryEntry(
                    event_id=event_id,
                    type=ReferralAssessed.event_type,
                    time=now,
                    summary=f"Re-assessed as the release date came into the window. {_summary(decision)}",
                ),
            ],
        }
    )
    return Change(ReferralEntry(record=record), [(event_id, event)])


def on_matching_event(
    entry: ReferralEntry | None, event: MatchingEvent, event_id: uuid.UUID, time: datetime
) -> Change:
    """Follow the matching service: proposed, awaiting volunteers, circle formed (all recorded in history)."""
    current = entry.record if entry else None
    if current is None:
        parked = [*(entry.parked if entry else [])]
        if any(p.event_id == event_id for p in parked):
            return Change()
        parked.append(
            ParkedEvent(
                event_id=event_id, type=event.event_type, time=time, data=event.model_dump(mode="json")
            )
        )
        return Change(ReferralEntry(parked=parked))
    if current.has_event(event_id):
        return Change()
    return Change(ReferralEntry(record=_follow(current, event, event_id, time)))


def _follow(
    record: ReferralRecord, event: MatchingEvent, event_id: uuid.UUID, time: datetime
) -> ReferralRecord:
    status = record.status
    following = record.decision is not None and record.decision.outcome is Outcome.ELIGIBLE
    if isinstance(event, MatchProposed):
        summary = f"A circle of {len(event.volunteers)} volunteers was proposed to the coordinator."
        new_status = ReferralStatus.PROPOSED
    elif isinstance(event, MatchDeferred):
        codes = ", ".join(reason.code for reason in event.reasons)
        summary = f"Eligible; waiting for volunteers ({codes})."
        new_status = ReferralStatus.AWAITING_VOLUNTEERS
    elif isinstance(event, CircleFormed):
        summary = f"Circle formed with {len(event.volunteer_ids)} volunteers."
        new_status = ReferralStatus.CIRCLE_FORMED
    elif isinstance(event, CircleEnded):
        reason = f" ({event.reason})" if event.reason is not None else ""
        summary = f"Circle ended {event.outcome}{reason} on {event.ended_on.isoformat()}."
        new_status = ReferralStatus.CIRCLE_ENDED
    else:
        summary = f"The open proposal was cancelled ({event.reason})."
        new_status = status
    if following and status is not ReferralStatus.WITHDRAWN:
        status = new_status
    entry = HistoryEntry(event_id=event_id, type=event.event_type, time=time, summary=summary)
    return record.model_copy(
        update={"status": status, "updated_at": time, "history": [*record.history, entry]}
    )


def _apply_parked(record: ReferralRecord, parked: list[ParkedEvent]) -> ReferralRecord:
    for item in parked:
        if not record.has_event(item.event_id):
            event = EVENT_TYPES[item.type].model_validate(item.data)
            assert isinstance(
                event, MatchProposed | MatchDeferred | CircleFormed | ProposalCancelled | CircleEnded
            )
            record = _follow(record, event, item.event_id, item.time)
    return record


def _decision(assessment: Assessment, now: datetime) -> Decision:
    return Decision(
        outcome=assessment.outcome,
        reasons=list(assessment.reasons),
        policy_version=assessment.policy_version,
        decided_at=now,
        reassess_on=assessment.reassess_on,
    )


def _summary(decision: Decision) -> str:
    codes = ", ".join(reason.code for reason in decision.reasons)
    outcome = decision.outcome.value.replace("_", " ")
    text = f"Assessed {outcome} under eligibility policy {decision.policy_version}"
    return f"{text}: {codes}." if codes else f"{text}."
