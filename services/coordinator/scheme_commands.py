"""The scheme's records against its targets (``circles mappa panel``, ``circles mentoring session``,
``circles audit record``) and the commissioner's return and compliance pack (``circles report ...``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import click

from schemas.events.coordinator import SchemeRecord
from schemas.topics import COORDINATOR_REFERRALS
from services.coordinator.domain import records
from services.coordinator.domain.evidence import evidence_pack
from services.coordinator.domain.report import Period
from services.coordinator.domain.scheme_return import (
    SchemeHistory,
    return_csv,
    return_rows,
    scheme_return,
)
from services.coordinator.domain.targets import SchemeTargets, load_targets
from services.coordinator.records import publish_record
from services.coordinator.scheme import load_history
from services.coordinator.settings import CoordinatorSettings
from services.referral_progress.progress import ReferralProgress
from services.referral_progress.workdays import scheme_today
from services.referrals.commands import audit
from services.runtime.cli_support import (
    CliError,
    OneLineCommand,
    bootstrap,
    echo_json,
    operator,
    prefix,
    run,
    settings,
)
from services.runtime.clock import clock_from_setting
from services.runtime.kafka import read_compacted

DAY = click.DateTime(formats=["%Y-%m-%d"])


def now() -> datetime:
    return clock_from_setting(settings().clock).now()


def referral_option(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a referral id") from None


async def _record(record_of_referral: uuid.UUID | None, record: SchemeRecord) -> None:
    servers, topic_prefix = bootstrap(), prefix()
    if record_of_referral is not None:
        known = await read_compacted(
            servers, topic_prefix + COORDINATOR_REFERRALS.name, ReferralProgress.model_validate_json
        )
        if str(record_of_referral) not in known:
            raise LookupError(f"no referral {record_of_referral}")
    await publish_record(servers, topic_prefix, record, "/circles/coordinator/cli")


def _write(referral_id: uuid.UUID | None, make: Callable[[], SchemeRecord], as_json: bool, said: str) -> None:
    try:
        record = make()
    except records.RecordRefused as refused:
        raise CliError(str(refused)) from None
    run(_record(referral_id, record))
    if as_json:
        echo_json(records.record_view(record))
    else:
        click.echo(f"Recorded {said} {record.record_id()}.")


@click.group()
def mappa() -> None:
    """MAPPA panels the scheme was asked to attend (levels 2 and 3), and whether it did."""


@mappa.command("panel", cls=OneLineCommand)
@click.option("--referral", "referral", required=True, help="The referral the panel was about")
@click.option("--level", type=click.Choice(["2", "3"]), required=True, help="MAPPA level of the panel")
@click.option("--date", "held_on", type=DAY, required=True, help="The panel's date (YYYY-MM-DD)")
@click.option("--attended", type=click.Choice(["yes", "no"]), required=True)
@click.option("--json", "as_json", is_flag=True)
def panel(referral: str, level: str, held_on: datetime, attended: str, as_json: bool) -> None:
    """Record a MAPPA panel the scheme was asked to attend; an attended panel is not in the future."""
    referral_id = referral_option(referral)
    _write(
        referral_id,
        lambda: records.mappa_panel(
            referral_id=referral_id,
            level=int(level),
            held_on=held_on.date(),
            attended=attended == "yes",
            recorded_by=operator(),
            now=now(),
        ),
        as_json,
        "MAPPA panel",
    )


@click.group()
def mentoring() -> None:
    """1-1 mentoring sessions with service users."""


@mentoring.command("session", cls=OneLineCommand)
@click.option("--referral", "referral", required=True, help="The referral whose core member was mentored")
@click.option("--date", "held_on", type=DAY, required=True, help="The session's date (YYYY-MM-DD)")
@click.option("--minutes", type=click.IntRange(1, 24 * 60), required=True, help="Length in minutes")
@click.option("--json", "as_json", is_flag=True)
def session(referral: str, held_on: datetime, minutes: int, as_json: bool) -> None:
    """Record a 1-1 mentoring session that has been held."""
    referral_id = referral_option(referral)
    _write(
        referral_id,
        lambda: records.mentoring_session(
            referral_id=referral_id,
            held_on=held_on.date(),
            minutes=minutes,
            recorded_by=operator(),
            now=now(),
        ),
        as_json,
        "mentoring session",
    )


@click.command("record", cls=OneLineCommand)
@click.option("--date", "held_on", type=DAY, required=True, help="The audit's date (YYYY-MM-DD)")
@click.option("--area", required=True, help="What was audited, as a short code (e.g. supervision)")
@click.option("--result", type=click.Choice(["met", "actions"]), required=True)
@click.option("--actions", type=click.IntRange(0, 1000), default=None, help="Actions it left (for 'actions')")
@click.option("--json", "as_json", is_flag=True)
def audit_record(held_on: datetime, area: str, result: str, actions: int | None, as_json: bool) -> None:
    """Record an audit of practice and its result."""
    _write(
        None,
        lambda: records.audit(
            held_on=held_on.date(),
            area=area,
            result=result,
            actions=actions,
            recorded_by=operator(),
            now=now(),
        ),
        as_json,
        "audit",
    )


def period_of(start: datetime, end: datetime) -> Period:
    if start > end:
        raise click.UsageError(f"--from {start.date()} is after --to {end.date()}")
    return Period(start=start.date(), end=end.date())


def _history() -> tuple[SchemeHistory, SchemeTargets]:
    config = CoordinatorSettings()
    try:
        targets = load_targets(config.scheme_targets)
    except (OSError, ValueError) as problem:
        raise CliError(
            f"cannot read the targets ({config.scheme_targets}): {problem}".splitlines()[0]
        ) from None
    today = scheme_today(clock_from_setting(config.clock).now())
    return run(load_history(config, today)), targets


@click.group()
def report() -> None:
    """The commissioner's return and the compliance pack, for any period."""


@report.command("return", cls=OneLineCommand)
@click.option("--from", "start", type=DAY, required=True, help="First day of the period (YYYY-MM-DD)")
@click.option("--to", "end", type=DAY, required=True, help="Last day of the period (YYYY-MM-DD)")
@click.option("--json", "as_json", is_flag=True, help="The return as one JSON document")
@click.option("--csv", "as_csv", is_flag=True, help="CSV: a header row, one row per figure")
def return_(start: datetime, end: datetime, as_json: bool, as_csv: bool) -> None:
    """Every figure of the contract's return for the period, from the event history."""
    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    period = period_of(start, end)
    history, targets = _history()
    figures = scheme_return(history, period, targets)
    if as_json:
        echo_json(figures.as_json())
    elif as_csv:
        click.echo(return_csv(figures), nl=False)
    else:
        for section, figure, value in return_rows(figures):
            click.echo(f"{section:<16} {figure:<36} {value}")


@report.command("evidence", cls=OneLineCommand)
@click.option("--from", "start", type=DAY, required=True, help="First day of the period (YYYY-MM-DD)")
@click.option("--to", "end", type=DAY, required=True, help="Last day of the period (YYYY-MM-DD)")
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory to write the pack into (made if missing)",
)
@click.option("--json", "as_json", is_flag=True, help="Print the files written as JSON")
def evidence(start: datetime, end: datetime, out: Path, as_json: bool) -> None:
    """The compliance pack for an auditor of practice: CSV files and a one-page summary (ids and dates)."""
    period = period_of(start, end)
    history, targets = _history()
    files = evidence_pack(history, period, targets)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            (out / name).write_text(content, newline="")
    except OSError as problem:
        raise CliError(f"cannot write the pack to {out}: {problem.strerror}") from None
    if as_json:
        echo_json({"directory": str(out), "files": sorted(files)})
    else:
        click.echo(f"Wrote {len(files)} files to {out}: {', '.join(sorted(files))}")


audit.add_command(audit_record)
"""``circles audit record`` beside the access log's ``circles audit referral`` (the ``circles`` command
loads the ``audit`` group from here)."""
