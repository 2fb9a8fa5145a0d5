"""``circles circle ...``: circles after formation, for the coordinator.

``list`` and ``show`` read the circles worker's table (its compacted changelog) whole, as ``circles proposal
list`` reads matching's: no data key is needed, minutes and summaries stay sealed and are never shown. The
other commands check the request against that state (for a quick, clear refusal), write one command to
``circles.circles.commands.v1`` (minutes and summaries sealed with the referral's data key) and wait for the
worker's answer: its fact, or the dead letter saying why it was refused.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from schemas.envelope import describe
from schemas.events.circles import (
    CircleCommand,
    CircleOutcome,
    CircleStatus,
    ConcernLevel,
    CoreMemberAttendance,
    EndCircle,
    EndReason,
    RaiseConcern,
    RecordMeeting,
    RecordReview,
    SubmitMinutes,
    referral_id_of,
)
from schemas.personal import personal_paths
from schemas.topics import CIRCLES_COMMANDS, CIRCLES_EVENTS, CIRCLES_STATE
from services.circles.domain.circle import (
    Circle,
    CircleRefused,
    add_months,
    apply_command,
    detail,
    listing,
    scheme_day,
)
from services.circles.settings import CirclesSettings
from services.protection.sealer import build_sealer
from services.runtime.cli_support import CliError, bootstrap, echo_json, operator, prefix, run
from services.runtime.clock import clock_from_setting
from services.runtime.kafka import OutcomeWatcher, Publisher, read_compacted

C = TypeVar("C", bound=CircleCommand)
WAIT_SECONDS = 30.0
MAX_TEXT_BYTES = 64 * 1024


def _settings() -> CirclesSettings:
    return CirclesSettings()


def _now() -> datetime:
    return clock_from_setting(_settings().clock).now()


async def _circles() -> dict[str, Circle]:
    """Every circle, by circle id, as the worker's table holds it (sealed fields left sealed)."""
    found = await read_compacted(bootstrap(), prefix() + CIRCLES_STATE.name, Circle.model_validate_json)
    return {circle.circle_id: circle for circle in found.values()}


def _find(circles: dict[str, Circle], circle_id: str) -> Circle:
    try:
        referral_id_of(circle_id)
    except ValueError:
        raise CliError(f"{circle_id!r} is not a circle id (circle-<referral id>)") from None
    circle = circles.get(circle_id)
    if circle is None:
        raise CliError(f"no circle {circle_id}")
    if circle.erased_at is not None:
        raise CliError(f"circle {circle_id} was erased with its referral")
    return circle


def _text(path: Path, what: str) -> str:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise CliError(f"cannot read the {what} file {path}: {error.strerror}") from None
    if len(raw) > MAX_TEXT_BYTES:
        raise CliError(f"the {what} file {path} is over {MAX_TEXT_BYTES // 1024} KiB")
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise CliError(f"the {what} file {path} is not UTF-8 text") from None
    if not text:
        raise CliError(f"the {what} file {path} is empty")
    return text


def _command(kind: type[C], circle: Circle, now: datetime, **values: Any) -> C:
    try:
        return kind(
            command_id=uuid.uuid4(),
            referral_id=circle.referral_id,
            requested_by=operator(),
            requested_at=now,
            **values,
        )
    except ValidationError as error:
        raise CliError(f"invalid input: {describe(error)}") from None


def _send(build: Callable[[dict[str, Circle], datetime], CircleCommand]) -> tuple[CircleCommand, Circle]:
    """Build the command from the current state, check it there, send it and wait for the worker's answer;
    returns the command and the circle it applied to."""

    async def go() -> tuple[CircleCommand, Circle]:
        settings = _settings()
        now = _now()
        circles = await _circles()
        command = build(circles, now)
        circle = circles[command.circle_id]
        try:
            apply_command(circle, command, now, settings.periods)
        except CircleRefused as refused:
            raise CliError(str(refused)) from None
        sealer = None
        if personal_paths(type(command)):
            sealer = build_sealer(settings, ["referral"], client_id="circles-cli-keys")
            await sealer.start()
        watcher = OutcomeWatcher(
            bootstrap(), [prefix() + CIRCLES_EVENTS.name, prefix() + CIRCLES_COMMANDS.dlq]
        )
        try:
            await watcher.start()
            async with Publisher(
                bootstrap(),
                "/circles/circles/cli",
                prefix=prefix(),
                sealer=sealer,
                clock=clock_from_setting(settings.clock),
            ) as publisher:
                envelope = publisher.envelope(
                    command,
                    circle.correlation_id or f"circle-{circle.referral_id}",
                    event_id=command.command_id,
                )
                await publisher.publish(command, envelope)
                outcome = await watcher.wait(str(envelope.id), WAIT_SECONDS)
        finally:
            await watcher.stop()
            if sealer is not None:
                await sealer.stop()
        if outcome is None:
            raise CliError("the command was sent but not yet applied: is the circles worker running?")
        if outcome.refused:
            raise CliError(outcome.error.removeprefix("ProcessingError: ").removeprefix("CircleRefused: "))
        return command, circle

    return run(go())


def _day(value: datetime | None, default: date) -> date:
    return value.date() if value is not None else default


def _split(values: str | None) -> list[str]:
    return [v.strip() for v in values.split(",") if v.strip()] if values else []


DATE = click.DateTime(["%Y-%m-%d"])


@click.group()
def circle() -> None:
    """Circles after formation: meetings and minutes, concerns, reviews, ending."""


@circle.command("list")
@click.option("--status", type=click.Choice([s.value for s in CircleStatus]))
@click.option("--json", "as_json", is_flag=True)
def list_circles(status: str | None, as_json: bool) -> None:
    """Circles, with meetings held, minutes overdue, the next review and open concerns."""
    circles = [c for c in run(_circles()).values() if c.erased_at is None]
    rows = [row for row in listing(circles, _now()) if status is None or row["status"] == status]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("No circles.")
    for row in rows:
        outcome = f" {row['outcome']}" if row["outcome"] else ""
        click.echo(
            f"{row['circle_id']} {row['status']}{outcome}: formed {row['formed_on']}, "
            f"{row['meetings_held']} meeting(s), {row['minutes_overdue']} minutes overdue, "
            f"next review {row['next_review_due'] or '-'}, {row['open_concerns']} open concern(s)"
        )


@circle.command("show")
@click.argument("circle_id")
@click.option("--json", "as_json", is_flag=True)
def show(circle_id: str, as_json: bool) -> None:
    """One circle: meetings (minutes status), reviews and concerns (escalated first)."""
    found = _find(run(_circles()), circle_id)
    shown = detail(found, _now())
    if as_json:
        echo_json(shown)
        return
    volunteers = ", ".join(found.volunteer_ids)
    click.echo(f"{shown['circle_id']} ({shown['status']}) referral {shown['referral_id']}")
    click.echo(f"Formed {shown['formed_on']}, planned to {shown['planned_end_on']}; volunteers {volunteers}")
    click.echo(f"Next review due: {shown['next_review_due'] or '-'}; outcome: {shown['outcome'] or '-'}")
    for meeting in shown["meetings"]:  # type: ignore[attr-defined]
        click.echo(
            f"  meeting {meeting['meeting_id']} {meeting['held_on']} core member "
            f"{meeting['core_member_attendance']}: minutes {meeting['minutes']}"
        )
    for review in shown["reviews"]:  # type: ignore[attr-defined]
        click.echo(f"  review {review['review_id']} {review['held_on']}")
    for concern in shown["concerns"]:  # type: ignore[attr-defined]
        flag = " ESCALATED" if concern["escalated"] else ""
        click.echo(f"  concern {concern['concern_id']} {concern['level']} {concern['state']}{flag}")


def _done(as_json: bool, text: str, **values: object) -> None:
    if as_json:
        echo_json(
            {key: str(value) if isinstance(value, uuid.UUID) else value for key, value in values.items()}
        )
    else:
        click.echo(text)


@circle.command("meeting")
@click.argument("circle_id")
@click.option("--date", "day", required=True, type=DATE, help="The day the meeting was held (YYYY-MM-DD)")
@click.option("--core-member", required=True, type=click.Choice([a.value for a in CoreMemberAttendance]))
@click.option("--volunteers", help="Comma-separated ids of the volunteers who attended")
@click.option("--minutes-file", type=click.Path(path_type=Path, dir_okay=False), help="The minutes (UTF-8)")
@click.option("--json", "as_json", is_flag=True)
def meeting(
    circle_id: str,
    day: datetime,
    core_member: str,
    volunteers: str | None,
    minutes_file: Path | None,
    as_json: bool,
) -> None:
    """Record a meeting (its minutes now, or later with `circles circle minutes`)."""
    minutes = _text(minutes_file, "minutes") if minutes_file is not None else None
    meeting_id = uuid.uuid4()

    def build(circles: dict[str, Circle], now: datetime) -> CircleCommand:
        found = _find(circles, circle_id)
        return _command(
            RecordMeeting,
            found,
            now,
            meeting_id=meeting_id,
            held_on=day.date(),
            core_member_attendance=core_member,
            volunteer_ids=_split(volunteers),
            minutes=minutes,
        )

    command, found = _send(build)
    assert isinstance(command, RecordMeeting)
    due = apply_command(found, command, command.requested_at, _settings().periods).facts
    minutes_due_at = next((getattr(f, "minutes_due_at", None) for _, f in due), None)
    _done(
        as_json,
        f"Recorded: meeting {meeting_id} of {circle_id} on {day.date()}"
        + ("" if minutes else f"; minutes due by {minutes_due_at}"),
        meeting_id=meeting_id,
        circle_id=circle_id,
        held_on=day.date().isoformat(),
        minutes_received=minutes is not None,
        minutes_due_at=minutes_due_at.isoformat() if isinstance(minutes_due_at, datetime) else None,
    )


@circle.command("minutes")
@click.argument("meeting_id", type=click.UUID)
@click.option("--file", "minutes_file", required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
def minutes(meeting_id: uuid.UUID, minutes_file: Path, as_json: bool) -> None:
    """Submit a meeting's minutes."""
    text = _text(minutes_file, "minutes")

    def build(circles: dict[str, Circle], now: datetime) -> CircleCommand:
        found = next((c for c in circles.values() if c.meeting(meeting_id) is not None), None)
        if found is None:
            raise CliError(f"no meeting {meeting_id}")
        return _command(
            SubmitMinutes, _find(circles, found.circle_id), now, meeting_id=meeting_id, minutes=text
        )

    command, found = _send(build)
    meeting_held = found.meeting(meeting_id)
    assert meeting_held is not None
    on_time = min(command.requested_at, _now()) <= meeting_held.minutes_due_at
    _done(
        as_json,
        f"Recorded: minutes of meeting {meeting_id} ({'on time' if on_time else 'late'}).",
        meeting_id=meeting_id,
        circle_id=found.circle_id,
        on_time=on_time,
    )


@circle.command("concern")
@click.argument("circle_id")
@click.option("--level", required=True, type=click.Choice([level.value for level in ConcernLevel]))
@click.option("--summary-file", required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--raised-by", help="The volunteer who heard it")
@click.option("--json", "as_json", is_flag=True)
def concern(circle_id: str, level: str, summary_file: Path, raised_by: str | None, as_json: bool) -> None:
    """Raise a concern: the referring agency and the coordinator are told at once."""
    summary = _text(summary_file, "summary")
    concern_id = uuid.uuid4()

    def build(circles: dict[str, Circle], now: datetime) -> CircleCommand:
        return _command(
            RaiseConcern,
            _find(circles, circle_id),
            now,
            concern_id=concern_id,
            level=level,
            summary=summary,
            raised_by=raised_by,
        )

    _send(build)
    _done(
        as_json,
        f"Recorded: {level} concern {concern_id} on {circle_id}; open until the agency acknowledges it.",
        concern_id=concern_id,
        circle_id=circle_id,
        level=level,
        state="open",
    )


@circle.command("review")
@click.argument("circle_id")
@click.option("--date", "day", required=True, type=DATE)
@click.option("--json", "as_json", is_flag=True)
def review(circle_id: str, day: datetime, as_json: bool) -> None:
    """Record a periodic review."""
    review_id = uuid.uuid4()

    def build(circles: dict[str, Circle], now: datetime) -> CircleCommand:
        return _command(RecordReview, _find(circles, circle_id), now, review_id=review_id, held_on=day.date())

    _, found = _send(build)
    next_due = add_months(day.date(), _settings().review_every_months)
    _done(
        as_json,
        f"Recorded: review {review_id} of {found.circle_id} on {day.date()}; next due {next_due}.",
        review_id=review_id,
        circle_id=found.circle_id,
        held_on=day.date().isoformat(),
        next_review_due=next_due.isoformat(),
    )


@circle.command("end")
@click.argument("circle_id")
@click.option("--outcome", required=True, type=click.Choice([o.value for o in CircleOutcome]))
@click.option("--reason", type=click.Choice([r.value for r in EndReason]), help="Required for ended_early")
@click.option("--date", "day", type=DATE, help="The day it ended (default: today)")
@click.option("--json", "as_json", is_flag=True)
def end(circle_id: str, outcome: str, reason: str | None, day: datetime | None, as_json: bool) -> None:
    """End the circle (completed, or ended_early with a reason): its volunteers are free again."""
    if outcome == CircleOutcome.ENDED_EARLY and reason is None:
        raise click.UsageError("--reason is required with --outcome ended_early")
    if outcome == CircleOutcome.COMPLETED and reason is not None:
        raise click.UsageError("--reason goes only with --outcome ended_early")
    ended: list[date] = []

    def build(circles: dict[str, Circle], now: datetime) -> CircleCommand:
        ended.append(_day(day, scheme_day(now)))
        return _command(
            EndCircle, _find(circles, circle_id), now, outcome=outcome, reason=reason, ended_on=ended[0]
        )

    _send(build)
    _done(
        as_json,
        f"Recorded: {circle_id} ended {outcome}{f' ({reason})' if reason else ''} on {ended[0]}.",
        circle_id=circle_id,
        status="ended",
        outcome=outcome,
        reason=reason,
        ended_on=ended[0].isoformat(),
    )
