"""``circles coordinator add|disable|enable|reset-password``: accounts for the coordinator page."""

from __future__ import annotations

import sys

import click

from services.coordinator.accounts import (
    AccountExists,
    NoSuchAccount,
    add_account,
    change_account,
    disabled,
    enabled,
    password_reset,
)
from services.coordinator.domain.passwords import WeakPassword, generated_password, hash_password
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


@coordinator.command("disable")
@click.argument("account_id")
def disable(account_id: str) -> None:
    """Disable an account: it cannot sign in, and its sessions end on every page process."""
    try:
        run(change_account(settings(), account_id, disabled))
    except NoSuchAccount as refused:
        raise CliError(str(refused)) from None
    click.echo(f"Disabled coordinator account {account_id}; its sessions have ended.")


@coordinator.command("enable")
@click.argument("account_id")
def enable(account_id: str) -> None:
    """Enable a disabled account again (it signs in anew: the sessions that disabling ended stay ended)."""
    try:
        run(change_account(settings(), account_id, enabled))
    except NoSuchAccount as refused:
        raise CliError(str(refused)) from None
    click.echo(f"Enabled coordinator account {account_id}.")


@coordinator.command("reset-password")
@click.argument("account_id")
@click.option(
    "--password-stdin", is_flag=True, help="Read the new password from standard input (else one is made)"
)
@click.option("--json", "as_json", is_flag=True)
def reset_password(account_id: str, password_stdin: bool, as_json: bool) -> None:
    """Give an account a new password; every session signed in with the old one ends."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else generated_password()
    try:
        hashed = hash_password(password)
        run(change_account(settings(), account_id, lambda account, now: password_reset(account, hashed, now)))
    except (NoSuchAccount, WeakPassword) as refused:
        raise CliError(str(refused)) from None
    shown = None if password_stdin else password
    if as_json:
        echo_json({"account_id": account_id, "password": shown})
        return
    click.echo(f"New password set for coordinator account {account_id}; its sessions have ended.")
    if shown:
        click.echo(f"Password (shown once): {shown}")
