"""``circles agency ...`` (partner agencies and their keys), ``circles erase referral`` and ``circles
retention apply`` (erasure of personal data), ``circles audit referral`` (the access log)."""

from __future__ import annotations

import uuid

import click

from schemas.common import LocalAuthority
from schemas.events.agencies import AgencyKind
from services.referrals.access import accesses_of
from services.referrals.agencies import (
    AgencyExists,
    AgencyNotFound,
    Credentials,
    list_agencies,
    register_agency,
    rotate_key,
)
from services.referrals.demo import DEMO_AGENCIES
from services.referrals.domain.retention import closed_on, due
from services.referrals.erasure import WAIT_SECONDS, ErasureDesk, Result
from services.referrals.settings import ReferralsSettings
from services.runtime.cli_support import CliError, bootstrap, echo_json, operator, prefix, run, settings
from services.runtime.destinations import DestinationRefused, check_url


def _show(credentials: Credentials, as_json: bool, what: str) -> None:
    if as_json:
        echo_json(
            {
                "agency_id": credentials.agency_id,
                "api_key": credentials.api_key,
                "webhook_secret": credentials.webhook_secret,
                "kafka_signing_key": credentials.kafka_signing_key,
            }
        )
        return
    click.echo(f"{what} {credentials.agency_id}.")
    click.echo(f"API key (shown once; only a salted hash is kept): {credentials.api_key}")
    click.echo(f"Kafka submission signing key (shown once): {credentials.kafka_signing_key}")
    if credentials.webhook_secret:
        click.echo(f"Webhook signing secret (shown once): {credentials.webhook_secret}")


@click.group()
def agency() -> None:
    """Partner agencies: register them, rotate their API keys."""


@agency.command("add")
@click.argument("agency_id")
@click.option("--name", required=True)
@click.option("--kind", type=click.Choice([k.value for k in AgencyKind]), default=AgencyKind.OTHER.value)
@click.option(
    "--local-authority",
    "areas",
    multiple=True,
    type=click.Choice([la.value for la in LocalAuthority]),
    help="Area the agency covers (repeatable): it is told when a circle forms there",
)
@click.option("--contact-email")
@click.option("--webhook-url")
@click.option("--json", "as_json", is_flag=True)
def add(
    agency_id: str,
    name: str,
    kind: str,
    areas: tuple[str, ...],
    contact_email: str | None,
    webhook_url: str | None,
    as_json: bool,
) -> None:
    """Register an agency and print its API key and Kafka signing key once."""
    if webhook_url:
        try:  # https, and no address of this host or a private network unless the settings allow
            check_url(webhook_url, settings().destinations())
        except DestinationRefused as refused:
            raise CliError(f"--webhook-url: {refused}") from None
    try:
        credentials = run(
            register_agency(
                bootstrap(),
                agency_id,
                name=name,
                kind=AgencyKind(kind),
                local_authorities=[LocalAuthority(area) for area in areas],
                contact_email=contact_email,
                webhook_url=webhook_url,
                prefix=prefix(),
            )
        )
    except AgencyExists as error:
        raise CliError(str(error)) from None
    _show(credentials, as_json, "Registered agency")


@agency.command("rotate-key")
@click.argument("agency_id")
@click.option("--json", "as_json", is_flag=True)
def rotate(agency_id: str, as_json: bool) -> None:
    """Print a new API key and Kafka signing key; the old ones stop working."""
    try:
        credentials = run(rotate_key(bootstrap(), agency_id, prefix=prefix()))
    except AgencyNotFound as error:
        raise CliError(str(error)) from None
    _show(credentials, as_json, "New key for")


@agency.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_command(as_json: bool) -> None:
    """The registered agencies (never their keys or secrets)."""
    agencies = run(list_agencies(bootstrap(), prefix=prefix()))
    rows = [
        {
            "agency_id": a.agency_id,
            "name": a.name,
            "kind": a.kind.value,
            "local_authorities": [la.value for la in a.local_authorities],
            "contact_email": a.contact_email,
            "webhook_url": a.webhook_url,
            "key_created_at": a.api_key.created_at.isoformat(),
        }
        for a in agencies
    ]
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(f"{row['agency_id']:<28} {row['kind']:<19} {row['name']}")


@agency.command("add-demo-set")
@click.option("--json", "as_json", is_flag=True)
def add_demo_set(as_json: bool) -> None:
    """Register the demonstration agencies that are not registered yet, printing their keys."""

    async def register_missing() -> list[Credentials]:
        known = {a.agency_id for a in await list_agencies(bootstrap(), prefix=prefix())}
        return [
            await register_agency(
                bootstrap(),
                demo.agency_id,
                name=demo.name,
                kind=demo.kind,
                local_authorities=list(demo.areas),
                contact_email=demo.contact_email,
                prefix=prefix(),
            )
            for demo in DEMO_AGENCIES
            if demo.agency_id not in known
        ]

    created = run(register_missing())
    if as_json:
        echo_json(
            [
                {
                    "agency_id": c.agency_id,
                    "api_key": c.api_key,
                    "webhook_secret": c.webhook_secret,
                    "kafka_signing_key": c.kafka_signing_key,
                }
                for c in created
            ]
        )
        return
    for credentials in created:
        click.echo(f"{credentials.agency_id:<28} {credentials.api_key}")
    if not created:
        click.echo("All demonstration agencies are already registered.")


def _referral_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise CliError(f"{value!r} is not a referral id (a UUID)") from None


def _desk() -> ErasureDesk:
    return run(ErasureDesk.load(ReferralsSettings(), operator()))


@click.group()
def erase() -> None:
    """Erase personal data: the referral's data keys are destroyed; ids, dates, outcomes and history stay."""


@erase.command("referral")
@click.argument("referral_id")
@click.option("--reason", "note", help="A reference for the request (e.g. DSR-2026-041), kept in the history")
def erase_referral(referral_id: str, note: str | None) -> None:
    """Erase one referral's personal data now (an open referral is withdrawn first)."""
    wanted = _referral_id(referral_id)
    desk = _desk()
    record = desk.find(wanted)
    if record is None:
        raise CliError(f"no referral {wanted}")
    if record.erased_at is not None:
        click.echo(f"Referral {wanted} was already erased at {record.erased_at.isoformat()}.")
        return
    [result] = run(desk.erase([record], "request", note))
    _refuse_unless_erased([result])
    click.echo(
        f"Erased referral {wanted} (agency {record.agency_id}, reference {record.agency_reference}): "
        "personal data and data keys destroyed; ids, dates, outcomes and history kept."
    )


@click.group()
def retention() -> None:
    """The retention policy: erase what has been kept long enough (CIRCLES_RETENTION_*_DAYS)."""


@retention.command("apply")
@click.option("--dry-run", is_flag=True, help="List what is due; erase nothing")
@click.option("--json", "as_json", is_flag=True)
def retention_apply(dry_run: bool, as_json: bool) -> None:
    """Erase every referral due under the retention policy as of now (CIRCLES_CLOCK)."""
    desk = _desk()
    policy = desk.settings.retention()
    now = desk.now()
    found = due(desk.records(), now, policy)
    results = [] if dry_run else run(desk.erase(found, "retention"))
    erased = [r.referral_id for r in results if r.outcome == "erased"]
    if as_json:
        echo_json(
            {
                "as_of": now.isoformat(),
                "dry_run": dry_run,
                "due": [str(record.referral_id) for record in found],
                "erased": [str(referral_id) for referral_id in erased],
                "failed": [
                    {"referral_id": str(r.referral_id), "outcome": r.outcome, "detail": r.detail}
                    for r in results
                    if r.outcome != "erased"
                ],
            }
        )
    else:
        click.echo(
            f"Due under the retention policy as of {now.date().isoformat()} (ineligible after "
            f"{policy.ineligible_days} days, closed after {policy.closed_days}): {len(found)}"
        )
        for record in found:
            closed = closed_on(record)
            click.echo(
                f"  {record.referral_id}  {record.status.value:<13} closed {closed}  "
                f"{record.agency_id} {record.agency_reference}"
            )
        click.echo("Dry run: nothing erased." if dry_run else f"Erased {len(erased)} of {len(found)}.")
    if not dry_run:
        _refuse_unless_erased(results)


def _refuse_unless_erased(results: list[Result]) -> None:
    failed = [r for r in results if r.outcome != "erased"]
    if not failed:
        return
    first = failed[0]
    if first.outcome == "unconfirmed":
        why = (
            f"sent, but the referrals worker has not confirmed within {WAIT_SECONDS:.0f} s (is it running? "
            "it will apply the request when it is)"
        )
    else:
        why = f"refused: {first.detail}"
    more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
    raise CliError(f"referral {first.referral_id} not erased{more}: {why}")


@click.group()
def audit() -> None:
    """The access log: who read or changed referrals, and when."""


@audit.command("referral")
@click.argument("referral_id")
@click.option("--json", "as_json", is_flag=True)
def audit_referral(referral_id: str, as_json: bool) -> None:
    """Every recorded access to one referral, oldest first: time, who, action, answer, correlation id."""
    wanted = _referral_id(referral_id)
    found = run(accesses_of(bootstrap(), wanted, prefix()))
    rows = [
        {
            "accessed_at": event.accessed_at.isoformat(),
            "actor": event.actor,
            "action": event.action,
            "status": event.status,
            "correlation_id": envelope.correlationid,
            "referrals_in_request": len(event.referral_ids),
        }
        for envelope, event in found
    ]
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        status = "-" if row["status"] is None else str(row["status"])
        when, who, action = row["accessed_at"], row["actor"], row["action"]
        click.echo(f"{when}  {who:<32} {action:<8} {status:<4} {row['correlation_id']}")
    click.echo(f"{len(rows)} access(es) to referral {wanted}.")
