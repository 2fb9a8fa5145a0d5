"""The ``circles`` command. Each service contributes its own command group."""

from __future__ import annotations

import click

from services.circles.commands import circle
from services.coordinator.commands import coordinator, volunteer_account
from services.dev.stack import dev
from services.matching.commands import proposal, volunteer
from services.notifications.commands import notifications
from services.ops.commands import ops
from services.ops.topics import topics
from services.processes import PROCESSES
from services.protection.commands import keys
from services.referrals.commands import agency, audit, erase, retention
from services.security.commands import kafka


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="circles", message="circles %(version)s")
def main() -> None:
    """Circles referral platform: partner agencies, volunteers, proposals and operations."""


main.add_command(dev)
main.add_command(agency)
volunteer.add_command(volunteer_account)
main.add_command(volunteer)
main.add_command(proposal)
main.add_command(circle)
main.add_command(coordinator)
main.add_command(notifications)
main.add_command(ops)
main.add_command(kafka)
main.add_command(topics)
main.add_command(keys)
main.add_command(erase)
main.add_command(retention)
main.add_command(audit)


@main.command(name="run")
@click.argument("process", type=click.Choice(sorted(PROCESSES)))
def run_process(process: str) -> None:
    """Run one process of the system in the foreground (configured by CIRCLES_* variables)."""
    PROCESSES[process]()


if __name__ == "__main__":
    main()
