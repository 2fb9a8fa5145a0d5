"""``circles coordinator add``: accounts for the coordinator page."""

from __future__ import annotations

import sys

import click

from services.coordinator.accounts import AccountExists, add_account
from services.coordinator.domain.passwords import WeakPassword, generated_password
from services.runtime.cli_support import CliError, echo_json, run, settings


@click.group()
def coordinator() -> None:
    """Coordinator accounts for the coordinator page."""


@coordinator.command("add")
@click.argument("account_id")
@click.option("--name", "display_name", required=True, help="The name shown on the page")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (else one is made)"
)
@click.option("--json", "as_json", is_flag=True)
def add(account_id: str, display_name: str, password_stdin: bool, as_json: bool) -> None:
    """Create an account; without --password-stdin a password is generated and shown once."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else generated_password()
    try:
        run(add_account(settings(), account_id, display_name, password))
    except (AccountExists, WeakPassword) as refused:
        raise CliError(str(refused)) from None
    shown = None if password_stdin else password
    if as_json:
        echo_json({"account_id": account_id, "password": shown})
        return
    click.echo(f"Created coordinator account {account_id}.")
    if shown:
        click.echo(f"Password (shown once): {shown}")
