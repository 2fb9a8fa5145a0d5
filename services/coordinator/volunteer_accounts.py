"""Volunteer accounts for the volunteers' page: created by the coordinator (``circles volunteer account
add`` or the coordinator page), scrypt-hashed as the coordinator's are, kept on
``circles.coordinator.volunteer-accounts.v1`` (volunteer id and hash only: nothing to seal)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from schemas.events.coordinator import PasswordHash, VolunteerAccount, VolunteerAccountSet
from schemas.topics import VOLUNTEER_ACCOUNTS
from services.coordinator.accounts import AccountExists, NoSuchAccount
from services.coordinator.domain.passwords import hash_password, verify_nothing, verify_password
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
    bootstrap, prefix = settings.bootstrap_servers(), settings.topic_prefix
    hashed = hash_password(password)  # a weak password is refused before anything is read
    existing = await read_compacted(bootstrap, prefix + VOLUNTEER_ACCOUNTS.name, _parse)
    if volunteer_id in existing:
        raise AccountExists(f"volunteer {volunteer_id} already has an account")
    account = new_account(volunteer_id, hashed, created_by, datetime.now(UTC))
    async with Publisher(bootstrap, "/circles/coordinator/cli", prefix=prefix) as publisher:
        await _publish(publisher, account)
    return account


async def change_volunteer_account(
    settings: RuntimeSettings,
    volunteer_id: str,
    change: Callable[[VolunteerAccount, datetime], VolunteerAccount],
) -> VolunteerAccount:
    bootstrap, prefix = settings.bootstrap_servers(), settings.topic_prefix
    existing = await read_compacted(bootstrap, prefix + VOLUNTEER_ACCOUNTS.name, _parse)
    if volunteer_id not in existing:
        raise NoSuchAccount(f"no account for volunteer {volunteer_id}")
    account = change(existing[volunteer_id], datetime.now(UTC))
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
        account = self.view.get(account_id)
        if account is None or account.disabled:
            verify_nothing(password)
            return None
        return account if verify_password(password, account.password) else None

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
