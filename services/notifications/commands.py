"""``circles notifications status REFERRAL_ID``: the delivery log of one referral's messages."""

from __future__ import annotations

import uuid

import click

from schemas.topics import NOTIFICATION_LOG
from services.notifications.domain.delivery import DeliveryEntry
from services.runtime.cli_support import CliError, bootstrap, echo_json, prefix, run
from services.runtime.kafka import read_compacted


def _parse(value: bytes) -> DeliveryEntry:
    return DeliveryEntry.model_validate_json(value)


async def referral_log(
    bootstrap_servers: str, referral_id: uuid.UUID, *, topic_prefix: str = ""
) -> list[DeliveryEntry]:
    """Every message about one referral, oldest first (read from the delivery log's changelog)."""
    entries = await read_compacted(bootstrap_servers, topic_prefix + NOTIFICATION_LOG.name, _parse)
    found = [entry for entry in entries.values() if entry.referral_id == referral_id]
    return sorted(found, key=lambda entry: (entry.requested_at, entry.template, entry.recipient.id))


def _row(entry: DeliveryEntry) -> dict[str, object]:
    return {
        "notification_id": str(entry.notification_id),
        "referral_id": str(entry.referral_id),
        "template": entry.template,
        "recipient_kind": entry.recipient.kind,
        "recipient_id": entry.recipient.id,
        "channel": entry.recipient.channel.value,
        "status": entry.status.value,
        "attempts": entry.attempts,
        "last_error": entry.last_error,
        "next_attempt_at": entry.next_attempt_at.isoformat() if entry.next_attempt_at else None,
        "requested_at": entry.requested_at.isoformat(),
        "updated_at": entry.updated_at.isoformat(),
        "sent_at": entry.sent_at.isoformat() if entry.sent_at else None,
        "dead_at": entry.dead_at.isoformat() if entry.dead_at else None,
    }


@click.group()
def notifications() -> None:
    """Messages to agencies and the coordinator: what was sent, what failed."""


@notifications.command("status")
@click.argument("referral_id")
@click.option("--json", "as_json", is_flag=True)
def status(referral_id: str, as_json: bool) -> None:
    """The delivery log of one referral's messages: status, attempts and last error of each."""
    try:
        wanted = uuid.UUID(referral_id)
    except ValueError:
        raise CliError(f"not a referral id: {referral_id!r}") from None
    entries = run(referral_log(bootstrap(), wanted, topic_prefix=prefix()))
    if not entries:
        raise CliError(f"no messages recorded for referral {wanted}")
    rows = [_row(entry) for entry in entries]
    if as_json:
        echo_json(rows)
        return
    click.echo(f"{'template':<28} {'to':<32} {'channel':<8} {'status':<8} {'tries':>5}  last error")
    for row in rows:
        to = f"{row['recipient_kind']}:{row['recipient_id']}"
        click.echo(
            f"{row['template']!s:<28} {to:<32} {row['channel']!s:<8} {row['status']!s:<8} "
            f"{row['attempts']!s:>5}  {row['last_error'] or ''}"
        )
