"""``circles agency ...``: register partner agencies and manage their keys."""

from __future__ import annotations

import click

from schemas.common import LocalAuthority
from schemas.events.agencies import AgencyKind
from services.referrals.agencies import (
    AgencyExists,
    AgencyNotFound,
    Credentials,
    list_agencies,
    register_agency,
    rotate_key,
)
from services.referrals.demo import DEMO_AGENCIES
from services.runtime.cli_support import CliError, bootstrap, echo_json, prefix, run


def _show(credentials: Credentials, as_json: bool, what: str) -> None:
    if as_json:
        echo_json(
            {
                "agency_id": credentials.agency_id,
                "api_key": credentials.api_key,
                "webhook_secret": credentials.webhook_secret,
            }
        )
        return
    click.echo(f"{what} {credentials.agency_id}.")
    click.echo(f"API key (shown once; only a salted hash is kept): {credentials.api_key}")
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
    """Register an agency and print its API key once."""
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
    """Print a new API key; the old one stops working."""
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
                {"agency_id": c.agency_id, "api_key": c.api_key, "webhook_secret": c.webhook_secret}
                for c in created
            ]
        )
        return
    for credentials in created:
        click.echo(f"{credentials.agency_id:<28} {credentials.api_key}")
    if not created:
        click.echo("All demonstration agencies are already registered.")
