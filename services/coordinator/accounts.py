"""Coordinator accounts: created with `circles coordinator add`, checked at sign-in."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from schemas.events.coordinator import (
    CoordinatorAccount,
    CoordinatorAccountSet,
    PasswordHash,
    VolunteerAccount,
)
from schemas.topics import COORDINATOR_ACCOUNTS
from services.coordinator.domain.passwords import account_if_password, hash_password
from services.protection.sealer import Sealer, build_sealer
from services.runtime.kafka import CompactedView, Publisher, read_compacted
from services.runtime.settings import RuntimeSettings


def account_parser(sealer: Sealer) -> Callable[[bytes], CoordinatorAccount]:
    """Account records, their display names sealed with the coordinator's data key."""
    return lambda value: sealer.parse(CoordinatorAccountSet, value).account


class AccountExists(Exception):
    pass


class NoSuchAccount(Exception):
    pass


AnyAccount = TypeVar("AnyAccount", CoordinatorAccount, VolunteerAccount)


def disabled(account: AnyAccount, now: datetime) -> AnyAccount:
    """Disabled: it cannot sign in, and every session it has ends."""
    return account.model_copy(update={"disabled": True, "sessions_since": now, "updated_at": now})


def enabled(account: AnyAccount, now: datetime) -> AnyAccount:
    """Enabled again: it can sign in; the sessions that disabling ended stay ended."""
    return account.model_copy(update={"disabled": False, "updated_at": now})


def password_reset(account: AnyAccount, password: PasswordHash, now: datetime) -> AnyAccount:
    """A new password: every session signed in with the old one ends."""
    return account.model_copy(update={"password": password, "sessions_since": now, "updated_at": now})


async def add_account(
    settings: RuntimeSettings, account_id: str, display_name: str, password: str
) -> CoordinatorAccount:
    def new(existing: dict[str, CoordinatorAccount], now: datetime) -> CoordinatorAccount:
        if account_id in existing:
            raise AccountExists(f"coordinator {account_id} already has an account")
        return CoordinatorAccount(
            account_id=account_id,
            display_name=display_name,
            password=hash_password(password),
            created_at=now,
            updated_at=now,
        )

    return await _write(settings, account_id, new)


async def change_account(
    settings: RuntimeSettings,
    account_id: str,
    change: Callable[[CoordinatorAccount, datetime], CoordinatorAccount],
) -> CoordinatorAccount:
    """Apply ``change`` to the current account and publish the whole account again (the CLI is the only
    writer of the accounts topic, so read-change-write is safe from concurrent page processes)."""

    def changed(existing: dict[str, CoordinatorAccount], now: datetime) -> CoordinatorAccount:
        if account_id not in existing:
            raise NoSuchAccount(f"no coordinator account {account_id}")
        return change(existing[account_id], now)

    return await _write(settings, account_id, changed)


async def _write(
    settings: RuntimeSettings,
    account_id: str,
    make: Callable[[dict[str, CoordinatorAccount], datetime], CoordinatorAccount],
) -> CoordinatorAccount:
    """Read the accounts (their display names unsealed), ``make`` the account from them (or refuse), and
    publish it whole, sealed with the coordinator's data key."""
    bootstrap_servers, prefix = settings.bootstrap_servers(), settings.topic_prefix
    sealer = build_sealer(settings, ["coordinator"], client_id="circles-cli-keys")
    await sealer.start()
    try:
        topic = prefix + COORDINATOR_ACCOUNTS.name
        existing = await read_compacted(bootstrap_servers, topic, account_parser(sealer), sealer=sealer)
        account = make(existing, datetime.now(UTC))
        event = CoordinatorAccountSet(account=account)
        async with Publisher(
            bootstrap_servers, "/circles/coordinator/cli", prefix=prefix, sealer=sealer
        ) as publisher:
            await publisher.publish(event, publisher.envelope(event, f"account-{account_id}"))
        return account
    finally:
        await sealer.stop()


class AccountDirectory:
    """Accounts kept current from their compacted topic."""

    def __init__(self, settings: RuntimeSettings) -> None:
        self.sealer = build_sealer(
            settings,
            ["coordinator"],
            client_id="circles-accounts-keys",
            directory=settings.state_dir("coordinator-web"),
        )
        self.view: CompactedView[CoordinatorAccount] = CompactedView(
            settings.bootstrap_servers(),
            settings.topic_prefix + COORDINATOR_ACCOUNTS.name,
            account_parser(self.sealer),
            client_id="circles-accounts",
            sealer=self.sealer,
        )

    async def start(self) -> None:
        await self.sealer.start()
        await self.view.start()

    async def stop(self) -> None:
        await self.view.stop()
        await self.sealer.stop()

    def sign_in(self, account_id: str, password: str) -> CoordinatorAccount | None:
        """The account if the password is its own; the same scrypt work whether or not it exists.

        Blocking (scrypt takes tens of milliseconds): the page calls it off its event loop."""
        return account_if_password(self.view.get(account_id), password)

    def get(self, account_id: str) -> CoordinatorAccount | None:
        """The account as last set, disabled or not (``still_valid`` decides what that means)."""
        return self.view.get(account_id)
