"""``circles volunteer ...`` and ``circles proposal ...``: the coordinator's matching commands."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from schemas.common import SLUG_PATTERN, Gender, LocalAuthority
from schemas.coordinator_api import ConflictDeclaration, DecisionRequest
from schemas.events.circles import circle_id_of
from schemas.events.matching import CircleFormed, MatchDeferred, MatchProposed
from schemas.events.volunteers import ChangeVolunteer, Conflict, VolunteerChange, VolunteerRecord
from services.matching.domain.policy import load_policy
from services.matching.domain.workflow import scheme_day
from services.matching.operations import (
    NotApplied,
    Refused,
    change_volunteer,
    decide,
    decision_watcher,
    volunteer_watcher,
)
from services.matching.settings import MatchingSettings
from services.matching.views import MatchingState, read_state
from services.protection.sealer import build_sealer
from services.runtime.cli_support import CliError, bootstrap, echo_json, os_user_id, prefix, run
from services.runtime.clock import clock_from_setting
from services.runtime.kafka import OutcomeWatcher, Publisher

T = TypeVar("T")


def _today() -> date:
    """Today by ``CIRCLES_CLOCK`` (a rehearsal's moved clock), as the matching worker sees it."""
    return scheme_day(clock_from_setting(MatchingSettings().clock).now())


def _act(action: Callable[[MatchingState, Publisher, OutcomeWatcher], Awaitable[T]], watch: str) -> T:
    """Read the current state, then act with a publisher, waiting for the worker's answer; refusals and
    timeouts become one-line errors."""

    async def go() -> T:
        settings = MatchingSettings()
        sealer = build_sealer(settings, ["volunteer", "decision"], client_id="circles-cli-keys")
        await sealer.start()
        watcher = (volunteer_watcher if watch == "volunteers" else decision_watcher)(bootstrap(), prefix())
        try:
            state = await read_state(bootstrap(), load_policy(settings.matching_policy), sealer, prefix())
            await watcher.start()
            async with Publisher(
                bootstrap(),
                "/circles/matching/cli",
                prefix=prefix(),
                sealer=sealer,
                clock=clock_from_setting(settings.clock),
            ) as publisher:
                return await action(state, publisher, watcher)
        finally:
            await watcher.stop()
            await sealer.stop()

    try:
        return run(go())
    except (Refused, NotApplied) as problem:
        raise CliError(str(problem)) from None


async def _current_state() -> MatchingState:
    settings = MatchingSettings()
    sealer = build_sealer(settings, ["volunteer", "decision"], client_id="circles-cli-keys")
    await sealer.start()
    try:
        return await read_state(bootstrap(), load_policy(settings.matching_policy), sealer, prefix())
    finally:
        await sealer.stop()


def _split(values: str | None) -> list[str]:
    return [v.strip() for v in values.split(",") if v.strip()] if values else []


def _model(model: type[T], **values: Any) -> T:
    try:
        return model(**values)
    except ValidationError as error:
        fields = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or model.__name__}: {e['msg']}" for e in error.errors()
        )
        raise CliError(f"invalid input: {fields}") from None


BY_HELP = (
    "The coordinator account to record as who decided or asked (default: $CIRCLES_COORDINATOR_ID, else the "
    "OS user running the command, as cli-<user>)"
)


def _by(by: str | None = None) -> str:
    """Who decides or asks from the CLI: ``--by`` (a coordinator account id), else
    ``CIRCLES_COORDINATOR_ID``, else the OS user (``cli-<user>``): the login the system authenticated."""
    chosen = by or os.environ.get("CIRCLES_COORDINATOR_ID") or os_user_id()
    if not re.match(SLUG_PATTERN, chosen):
        raise CliError(f"--by {chosen!r}: an account id is lower-case letters, digits and hyphens")
    return chosen


def _change(volunteer_id: str, change: VolunteerChange, **details: Any) -> VolunteerRecord:
    command = _model(ChangeVolunteer, volunteer_id=volunteer_id, change=change, requested_by=_by(), **details)
    record = _act(
        lambda state, publisher, watcher: change_volunteer(state, publisher, watcher, command, _today()),
        "volunteers",
    )
    click.echo(f"Recorded: volunteer {volunteer_id} {change}.")
    return record


@click.group()
def volunteer() -> None:
    """Volunteer records: registration, vetting, training, supervision, conflicts, withdrawal."""


@volunteer.command("add")
@click.argument("volunteer_id")
@click.option("--name", required=True)
@click.option("--gender", required=True, type=click.Choice([g.value for g in Gender]))
@click.option("--local-authority", required=True, type=click.Choice([la.value for la in LocalAuthority]))
@click.option("--postcode-district", required=True)
@click.option("--experienced", is_flag=True, help="Has served in a circle before")
@click.option("--skills", help="Comma-separated, e.g. learning-disability,mental-health,language:polish")
@click.option("--max-circles", type=int)
@click.option("--availability", help="Comma-separated slots, e.g. mon-eve,sat-am")
def add(
    volunteer_id: str,
    name: str,
    gender: str,
    local_authority: str,
    postcode_district: str,
    experienced: bool,
    skills: str | None,
    max_circles: int | None,
    availability: str | None,
) -> None:
    """Register a volunteer."""
    registration = _model(
        VolunteerRecord,
        registered_on=_today(),
        volunteer_id=volunteer_id,
        name=name,
        gender=gender,
        local_authority=local_authority,
        postcode_district=postcode_district,
        experienced=experienced,
        skills=_split(skills),
        max_circles=max_circles,
        availability=_split(availability),
    )
    _change(volunteer_id, "registered", registration=registration)


@volunteer.command("vetted")
@click.argument("volunteer_id")
@click.option(
    "--dbs-date", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Date of the enhanced DBS check"
)
def vetted(volunteer_id: str, dbs_date: datetime) -> None:
    """Record an enhanced DBS check."""
    _change(volunteer_id, "vetted", on=dbs_date.date())


@volunteer.command("trained")
@click.argument("volunteer_id")
@click.option("--date", "day", required=True, type=click.DateTime(["%Y-%m-%d"]))
def trained(volunteer_id: str, day: datetime) -> None:
    """Record core training completed."""
    _change(volunteer_id, "trained", on=day.date())


@volunteer.command("supervised")
@click.argument("volunteer_id")
@click.option("--date", "day", required=True, type=click.DateTime(["%Y-%m-%d"]))
def supervised(volunteer_id: str, day: datetime) -> None:
    """Record a supervision session."""
    _change(volunteer_id, "supervised", on=day.date())


@volunteer.command("availability")
@click.argument("volunteer_id")
@click.option("--availability", required=True, help="Comma-separated slots, e.g. mon-eve,sat-am")
def availability(volunteer_id: str, availability: str) -> None:
    """Replace the volunteer's availability."""
    _change(volunteer_id, "availability", availability=_split(availability))


@volunteer.command("conflict")
@click.argument("volunteer_id")
@click.option("--postcode-district", help="An area the volunteer must not be matched to")
@click.option(
    "--referral", "referral_id", type=click.UUID, help="A referral the volunteer must not be matched to"
)
@click.option("--reason", required=True)
def conflict(
    volunteer_id: str, postcode_district: str | None, referral_id: uuid.UUID | None, reason: str
) -> None:
    """Declare a conflict (lives in an area, knows a core member)."""
    declared = _model(
        ConflictDeclaration, postcode_district=postcode_district, referral_id=referral_id, reason=reason
    )
    _change(volunteer_id, "conflict", conflict=Conflict(**declared.model_dump(), declared_on=_today()))


@volunteer.command("withdraw")
@click.argument("volunteer_id")
def withdraw(volunteer_id: str) -> None:
    """Record that the volunteer has left the scheme."""
    _change(volunteer_id, "withdrawn")


@volunteer.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_volunteers(as_json: bool) -> None:
    """The pool, with each volunteer's matchability and due dates."""
    views = run(_current_state()).volunteers(_today())
    if as_json:
        echo_json(views)
        return
    for view in views:
        standing = (
            "matchable" if view.matchable else "not matchable: " + ", ".join(view.not_matchable_because)
        )
        due = f"DBS until {view.dbs_expires_on or '-'}, supervision due {view.supervision_due_on or '-'}"
        held = f", held by {len(view.open_proposals)} proposal" if view.open_proposals else ""
        circles = f"{len(view.circles)} circle(s)"
        click.echo(
            f"{view.volunteer_id:<20} {view.local_authority.value:<24} {standing}; {due}; {circles}{held}"
        )


@click.group()
def proposal() -> None:
    """Match proposals: list them, accept or reject them."""


@proposal.command("list")
@click.option("--status", type=click.Choice(["open", "accepted", "rejected", "cancelled"]))
@click.option("--json", "as_json", is_flag=True)
def list_proposals(status: str | None, as_json: bool) -> None:
    """Proposals, open ones first in priority order, with the reasons for each volunteer."""
    views = run(_current_state()).proposals(status)
    if as_json:
        echo_json(views)
        return
    for view in views:
        volunteers = ", ".join(v.volunteer_id for v in view.volunteers)
        flags = f" [{', '.join(f.value for f in view.flags)}]" if view.flags else ""
        referral = f"referral {view.referral_id} ({view.risk_level.value})"
        decided = f" (decided by {view.decided_by})" if view.decided_by else ""
        click.echo(f"{view.proposal_id} {view.status:<9} {referral}: {volunteers}{flags}{decided}")


FORMED = {CircleFormed.event_type}
"""The follow-up that names the new circle, as `circles circle show` takes it."""
FOLLOW_UPS = {
    CircleFormed.event_type: "the circle is formed",
    MatchProposed.event_type: "a new proposal is made",
    MatchDeferred.event_type: "the referral waits for volunteers",
}


def _decide(proposal_id: uuid.UUID, request: DecisionRequest, by: str | None) -> None:
    decided_by = _by(by)
    decision, followed = _act(
        lambda state, publisher, watcher: decide(state, publisher, watcher, proposal_id, request, decided_by),
        "decisions",
    )
    then = "; ".join(
        FOLLOW_UPS.get(kind, kind) + (f" ({circle_id_of(decision.referral_id)})" if kind in FORMED else "")
        for kind in followed
    )
    then = then or "the matcher has not answered yet"
    click.echo(
        f"Recorded: {decision.outcome} proposal {proposal_id} (decision {decision.decision_id}): {then}."
    )


@proposal.command("accept")
@click.argument("proposal_id", type=click.UUID)
@click.option("--note")
@click.option("--by", help=BY_HELP)
def accept(proposal_id: uuid.UUID, note: str | None, by: str | None) -> None:
    """Accept a proposal: the circle forms."""
    _decide(proposal_id, _model(DecisionRequest, outcome="accept", note=note), by)


@proposal.command("reject")
@click.argument("proposal_id", type=click.UUID)
@click.option("--volunteer", "volunteers", multiple=True, help="Set aside only this volunteer (repeatable)")
@click.option("--note")
@click.option("--by", help=BY_HELP)
def reject(proposal_id: uuid.UUID, volunteers: tuple[str, ...], note: str | None, by: str | None) -> None:
    """Reject a proposal (or only some of its volunteers): a new one is made without them."""
    _decide(
        proposal_id,
        _model(DecisionRequest, outcome="reject", rejected_volunteer_ids=list(volunteers), note=note),
        by,
    )
