"""Volunteer accounts for the volunteers' page: created by the coordinator (``circles volunteer account
add`` or the coordinator page), scrypt-hashed as the coordinator's are, kept on
``circles.coordinator.volunteer-accounts.v1`` (volunteer id and hash only: nothing to seal)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from schemas.events.coordinator import PasswordHash, VolunteerAccount, VolunteerAccountSet
from schemas.topics import VOLUNTEER_ACCOUNTS
from services.coordinator.accounts import AccountExists, NoSuchAccount
from services.coordinator.domain.passwords import account_if_password, hash_password
from services.runtime.codec import PLAIN
from services.runtime.kafka import CompactedView, Publisher, read_compacted
from services.runtime.settings import RuntimeSettings
from services.runtime.supervision import together

__all__ = [
    "AccountExists",
    "NoSuchAccount",
    "VolunteerAccountDirectory",
    "add_volunteer_account",
    "change_volunteer_account",
    "new_account",
]


def _parse(value: bytes) -> VolunteerAccount:
    return PLAIN.parse(VolunteerAccountSet, value).account


def new_account(
    volunteer_id: str, password: PasswordHash, created_by: str | None, now: datetime
) -> VolunteerAccount:
    return VolunteerAccount(
        volunteer_id=volunteer_id, password=password, created_by=created_by, created_at=now, updated_at=now
    )


async def _publish(publisher: Publisher, account: VolunteerAccount) -> None:
    event = VolunteerAccountSet(account=account)
    await publisher.publish(event, publisher.envelope(event, f"volunteer-account-{account.volunteer_id}"))


async def add_volunteer_account(
    settings: RuntimeSettings, volunteer_id: str, password: str, created_by: str | None = None
) -> VolunteerAccount:
    """From the command line: refused if the volunteer has an account already."""
    hashed = hash_password(password)  # a weak password is refused before anything is read

    def new(existing: dict[str, VolunteerAccount], now: datetime) -> VolunteerAccount:
        if volunteer_id in existing:
            raise AccountExists(f"volunteer {volunteer_id} already has an account")
        return new_account(volunteer_id, hashed, created_by, now)

    return await _write(settings, new)


async def change_volunteer_account(
    settings: RuntimeSettings,
    volunteer_id: str,
    change: Callable[[VolunteerAccount, datetime], VolunteerAccount],
) -> VolunteerAccount:
    def changed(existing: dict[str, VolunteerAccount], now: datetime) -> VolunteerAccount:
        if volunteer_id not in existing:
            raise NoSuchAccount(f"no account for volunteer {volunteer_id}")
        return change(existing[volunteer_id], now)

    return await _write(settings, changed)


async def _write(
    settings: RuntimeSettings, make: Callable[[dict[str, VolunteerAccount], datetime], VolunteerAccount]
) -> VolunteerAccount:
    """Read the volunteers' accounts, ``make`` the account from them (or refuse), and publish it whole."""
    bootstrap, prefix = settings.bootstrap_servers(), settings.topic_prefix
    existing = await read_compacted(bootstrap, prefix + VOLUNTEER_ACCOUNTS.name, _parse)
    account = make(existing, datetime.now(UTC))
    async with Publisher(bootstrap, "/circles/coordinator/cli", prefix=prefix) as publisher:
        await _publish(publisher, account)
    return account


class VolunteerAccountDirectory:
    """Volunteer accounts kept current from their compacted topic; the coordinator page adds them too."""

    def __init__(self, settings: RuntimeSettings, source: str = "/circles/coordinator/web") -> None:
        self.view: CompactedView[VolunteerAccount] = CompactedView(
            settings.bootstrap_servers(),
            settings.topic_prefix + VOLUNTEER_ACCOUNTS.name,
            _parse,
            client_id="circles-volunteer-accounts",
        )
        self.publisher = Publisher(
            settings.bootstrap_servers(), source, prefix=settings.topic_prefix, timeout_s=10.0
        )

    async def start(self) -> None:
        await together(self.publisher.start(), self.view.start())

    async def stop(self) -> None:
        await self.view.stop()
        await self.publisher.stop()

    def sign_in(self, account_id: str, password: str) -> VolunteerAccount | None:
        """Blocking (scrypt): the page calls it off its event loop; the same work for unknown accounts."""
        return account_if_password(self.view.get(account_id), password)

    def get(self, account_id: str) -> VolunteerAccount | None:
        return self.view.get(account_id)

    def ids(self) -> set[str]:
        return {account.volunteer_id for account in self.view.values()}

    async def add(self, volunteer_id: str, password: PasswordHash, created_by: str) -> VolunteerAccount:
        if self.view.get(volunteer_id) is not None:
            raise AccountExists(f"volunteer {volunteer_id} already has an account")
        account = new_account(volunteer_id, password, created_by, datetime.now(UTC))
        await _publish(self.publisher, account)
        return account
