"""Coordinator accounts: created with `circles coordinator add`, checked at sign-in."""

from __future__ import annotations

from datetime import UTC, datetime

from schemas.events.coordinator import CoordinatorAccount, CoordinatorAccountSet
from schemas.topics import COORDINATOR_ACCOUNTS
from services.coordinator.domain.passwords import hash_password, verify_password
from services.runtime.kafka import CompactedView, Publisher, read_compacted


def parse_account(value: bytes) -> CoordinatorAccount:
    return CoordinatorAccountSet.model_validate_json(value).account


class AccountExists(Exception):
    pass


async def add_account(
    bootstrap_servers: str, account_id: str, display_name: str, password: str, *, prefix: str = ""
) -> CoordinatorAccount:
    existing = await read_compacted(bootstrap_servers, prefix + COORDINATOR_ACCOUNTS.name, parse_account)
    if account_id in existing:
        raise AccountExists(f"coordinator {account_id} already has an account")
    now = datetime.now(UTC)
    account = CoordinatorAccount(
        account_id=account_id,
        display_name=display_name,
        password=hash_password(password),
        created_at=now,
        updated_at=now,
    )
    event = CoordinatorAccountSet(account=account)
    async with Publisher(bootstrap_servers, "/circles/coordinator/cli", prefix=prefix) as publisher:
        await publisher.publish(event, publisher.envelope(event, f"account-{account_id}"))
    return account


class AccountDirectory:
    """Accounts kept current from their compacted topic."""

    def __init__(self, bootstrap_servers: str, prefix: str = "") -> None:
        self.view: CompactedView[CoordinatorAccount] = CompactedView(
            bootstrap_servers, prefix + COORDINATOR_ACCOUNTS.name, parse_account, client_id="circles-accounts"
        )

    async def start(self) -> None:
        await self.view.start()

    async def stop(self) -> None:
        await self.view.stop()

    def sign_in(self, account_id: str, password: str) -> CoordinatorAccount | None:
        account = self.view.get(account_id)
        if account is None or account.disabled or not verify_password(password, account.password):
            return None
        return account

    def get(self, account_id: str) -> CoordinatorAccount | None:
        account = self.view.get(account_id)
        return None if account is None or account.disabled else account
