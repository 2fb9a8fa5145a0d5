"""Applying the coordinator's changes to volunteer records: one rule per kind of change."""

from __future__ import annotations

import uuid
from datetime import date

from schemas.common import Contract
from schemas.events.volunteers import (
    ChangeVolunteer,
    VolunteerAvailabilityChanged,
    VolunteerConflictDeclared,
    VolunteerEvent,
    VolunteerRecord,
    VolunteerRegistered,
    VolunteerSupervised,
    VolunteerTrained,
    VolunteerVetted,
    VolunteerWithdrawn,
)


class VolunteerRefused(Exception):
    """The change cannot apply; the message says why (ids and dates only)."""


class UnknownVolunteer(VolunteerRefused):
    pass


class VolunteerState(Contract):
    """The volunteer records table's value: the record, and the commands applied to it recently."""

    record: VolunteerRecord
    applied: list[uuid.UUID] = []


def apply_change(current: VolunteerRecord | None, command: ChangeVolunteer, today: date) -> VolunteerEvent:
    if command.change == "registered":
        if command.registration is None:
            raise VolunteerRefused("a registration needs the volunteer's record")
        if current is not None:
            raise VolunteerRefused(f"volunteer {command.volunteer_id} is already registered")
        return VolunteerRegistered(volunteer=command.registration)
    if current is None:
        raise UnknownVolunteer(f"no volunteer {command.volunteer_id}")
    if current.withdrawn_on is not None and command.change != "withdrawn":
        raise VolunteerRefused(f"volunteer {command.volunteer_id} has withdrawn")
    if command.on is not None and command.on > today:
        raise VolunteerRefused(f"the date {command.on} is in the future")
    if command.change in {"vetted", "trained", "supervised"} and command.on is None:
        raise VolunteerRefused(f"{command.change} needs the date")
    if command.change == "vetted":
        return VolunteerVetted(volunteer=current.model_copy(update={"dbs_checked_on": command.on}))
    if command.change == "trained":
        return VolunteerTrained(volunteer=current.model_copy(update={"trained_on": command.on}))
    if command.change == "supervised":
        assert command.on is not None
        latest = max(command.on, current.last_supervised_on or command.on)
        return VolunteerSupervised(volunteer=current.model_copy(update={"last_supervised_on": latest}))
    if command.change == "availability":
        if command.availability is None:
            raise VolunteerRefused("availability needs the slots")
        return VolunteerAvailabilityChanged(
            volunteer=current.model_copy(update={"availability": command.availability})
        )
    if command.change == "conflict":
        if command.conflict is None:
            raise VolunteerRefused("a conflict needs its details")
        conflicts = [*current.conflicts, command.conflict]
        return VolunteerConflictDeclared(volunteer=current.model_copy(update={"conflicts": conflicts}))
    if current.withdrawn_on is not None:
        raise VolunteerRefused(f"volunteer {command.volunteer_id} has withdrawn already")
    return VolunteerWithdrawn(volunteer=current.model_copy(update={"withdrawn_on": today}))
