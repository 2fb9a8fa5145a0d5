"""``circles coordinator add|disable|enable|reset-password``: accounts for the coordinator page;
``circles volunteer account add|disable|reset-password``: volunteers' accounts for the volunteers' page."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

import click
from pydantic import ValidationError

from schemas.events.coordinator import CoordinatorAccount, VolunteerAccount
from services.coordinator.accounts import (
    AccountExists,
    AnyAccount,
    NoSuchAccount,
    add_account,
    change_account,
    disabled,
    enabled,
    password_reset,
)
from services.coordinator.domain.passwords import WeakPassword, generated_password, hash_password
from services.coordinator.volunteer_accounts import add_volunteer_account, change_volunteer_account
from services.runtime.cli_support import CliError, echo_json, run, settings

Change = Callable[[AnyAccount, datetime], AnyAccount]


def _password_stdin(what: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return click.option(
        "--password-stdin", is_flag=True, help=f"Read {what} from standard input (else one is made)"
    )


def _password(password_stdin: bool) -> str:
    return sys.stdin.readline().rstrip("\n") if password_stdin else generated_password()


@contextmanager
def _refusals_in_one_line(*refusals: type[Exception]) -> Iterator[None]:
    """What the user can be refused (an unknown account, a weak password...): one line, exit status 1."""
    try:
        yield
    except refusals as refused:
        raise CliError(_one_line(refused)) from None


def _reset_to(password: str) -> Change[AnyAccount]:
    """The change to a new password, hashed now (a weak one is refused before Kafka is asked)."""
    hashed = hash_password(password)
    return lambda account, now: password_reset(account, hashed, now)


def _hand_over(
    key: str, account_id: str, password: str, password_stdin: bool, as_json: bool, done: str, label: str
) -> None:
    """Say what was done, with the password made (shown once) unless it was read from standard input."""
    shown = None if password_stdin else password
    if as_json:
        echo_json({key: account_id, "password": shown})
        return
    click.echo(done)
    if shown:
        click.echo(f"{label} (shown once): {shown}")


@click.group()
def coordinator() -> None:
    """Coordinator accounts for the coordinator page."""


@coordinator.command("add")
@click.argument("account_id")
@click.option("--name", "display_name", required=True, help="The name shown on the page")
@_password_stdin("the password")
@click.option("--json", "as_json", is_flag=True)
def add(account_id: str, display_name: str, password_stdin: bool, as_json: bool) -> None:
    """Create an account; without --password-stdin a password is generated and shown once."""
    password = _password(password_stdin)
    with _refusals_in_one_line(AccountExists, WeakPassword):
        run(add_account(settings(), account_id, display_name, password))
    done = f"Created coordinator account {account_id}."
    _hand_over("account_id", account_id, password, password_stdin, as_json, done, "Password")


@coordinator.command("disable")
@click.argument("account_id")
def disable(account_id: str) -> None:
    """Disable an account: it cannot sign in, and its sessions end on every page process."""
    with _refusals_in_one_line(NoSuchAccount):
        run(change_account(settings(), account_id, disabled))
    click.echo(f"Disabled coordinator account {account_id}; its sessions have ended.")


@coordinator.command("enable")
@click.argument("account_id")
def enable(account_id: str) -> None:
    """Enable a disabled account again (it signs in anew: the sessions that disabling ended stay ended)."""
    with _refusals_in_one_line(NoSuchAccount):
        run(change_account(settings(), account_id, enabled))
    click.echo(f"Enabled coordinator account {account_id}.")


@coordinator.command("reset-password")
@click.argument("account_id")
@_password_stdin("the new password")
@click.option("--json", "as_json", is_flag=True)
def reset_password(account_id: str, password_stdin: bool, as_json: bool) -> None:
    """Give an account a new password; every session signed in with the old one ends."""
    password = _password(password_stdin)
    with _refusals_in_one_line(NoSuchAccount, WeakPassword):
        reset: Change[CoordinatorAccount] = _reset_to(password)
        run(change_account(settings(), account_id, reset))
    done = f"New password set for coordinator account {account_id}; its sessions have ended."
    _hand_over("account_id", account_id, password, password_stdin, as_json, done, "Password")


@click.group("account")
def volunteer_account() -> None:
    """Volunteers' accounts for the volunteers' page (created by the coordinator)."""


@volunteer_account.command("add")
@click.argument("volunteer_id")
@_password_stdin("the password")
@click.option("--json", "as_json", is_flag=True)
def add_volunteer(volunteer_id: str, password_stdin: bool, as_json: bool) -> None:
    """Create a volunteer's account; without --password-stdin a one-time password is made and shown once."""
    password = _password(password_stdin)
    with _refusals_in_one_line(AccountExists, WeakPassword, ValidationError):
        run(add_volunteer_account(settings(), volunteer_id, password, created_by=None))
    done = f"Created an account for volunteer {volunteer_id} (the volunteers' page)."
    _hand_over("volunteer_id", volunteer_id, password, password_stdin, as_json, done, "One-time password")


@volunteer_account.command("disable")
@click.argument("volunteer_id")
def disable_volunteer(volunteer_id: str) -> None:
    """Disable a volunteer's account: it cannot sign in, and its sessions end."""
    with _refusals_in_one_line(NoSuchAccount):
        run(change_volunteer_account(settings(), volunteer_id, disabled))
    click.echo(f"Disabled the account of volunteer {volunteer_id}; its sessions have ended.")


@volunteer_account.command("reset-password")
@click.argument("volunteer_id")
@_password_stdin("the new password")
@click.option("--json", "as_json", is_flag=True)
def reset_volunteer_password(volunteer_id: str, password_stdin: bool, as_json: bool) -> None:
    """Give a volunteer's account a new password; its sessions end."""
    password = _password(password_stdin)
    with _refusals_in_one_line(NoSuchAccount, WeakPassword):
        reset: Change[VolunteerAccount] = _reset_to(password)
        run(change_volunteer_account(settings(), volunteer_id, reset))
    done = f"New password set for volunteer {volunteer_id}; their sessions have ended."
    _hand_over("volunteer_id", volunteer_id, password, password_stdin, as_json, done, "One-time password")


def _one_line(refused: Exception) -> str:
    if isinstance(refused, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in refused.errors())
    return str(refused)
