"""The ``circles`` command. Each service contributes its own command group.

The groups are imported only when one is run: importing them all pulls in every service's dependencies
(aiokafka, aiohttp, pydantic models, Jinja) and took 1-1.4 s before ``circles --help`` could print
(issue 13). The list below carries each group's one-line help so that ``circles --help`` imports none of
them; a unit test holds those lines equal to the groups' own.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

import click

from services.processes import PROCESSES

if TYPE_CHECKING:
    from pydantic import ValidationError

COMMANDS: dict[str, tuple[str, str]] = {
    "dev": ("services.dev.stack:dev", "Run the system on this machine (development and demonstration)."),
    "agency": (
        "services.referrals.commands:agency",
        "Partner agencies: register them, rotate their API keys.",
    ),
    "volunteer": (
        "services.matching.commands:volunteer",
        "Volunteer records: registration, vetting, training, supervision, conflicts, withdrawal.",
    ),
    "proposal": ("services.matching.commands:proposal", "Match proposals: list them, accept or reject them."),
    "circle": (
        "services.circles.commands:circle",
        "Circles after formation: meetings and minutes, concerns, reviews, ending.",
    ),
    "coordinator": (
        "services.coordinator.commands:coordinator",
        "Coordinator accounts for the coordinator page.",
    ),
    "notifications": (
        "services.notifications.commands:notifications",
        "Messages to agencies and the coordinator: what was sent, what failed.",
    ),
    "ops": ("services.ops.commands:ops", "Operations: pipeline status and dead letters."),
    "kafka": (
        "services.security.commands:kafka",
        "The Kafka cluster's access control (run as the admin super-user to change it).",
    ),
    "topics": ("services.ops.topics:topics", "Kafka topics of the catalogue (schemas/topics.py)."),
    "keys": (
        "services.protection.commands:keys",
        "Key-encryption keys: add a new one, re-wrap the data keys, see which KEK wraps what.",
    ),
    "erase": (
        "services.referrals.commands:erase",
        "Erase personal data: the referral's data keys are destroyed; ids, dates, outcomes and history stay.",
    ),
    "retention": (
        "services.referrals.commands:retention",
        "The retention policy: erase what has been kept long enough (CIRCLES_RETENTION_*_DAYS).",
    ),
    "audit": (
        "services.coordinator.scheme_commands:audit",  # the referrals' group, with `audit record` added
        "The access log: who read or changed referrals, and when.",
    ),
    "mappa": (
        "services.coordinator.scheme_commands:mappa",
        "MAPPA panels the scheme was asked to attend (levels 2 and 3), and whether it did.",
    ),
    "mentoring": (
        "services.coordinator.scheme_commands:mentoring",
        "1-1 mentoring sessions with service users.",
    ),
    "report": (
        "services.coordinator.scheme_commands:report",
        "The commissioner's return and the compliance pack, for any period.",
    ),
}
"""Command name -> (``module:attribute`` of its click group, its help's first paragraph)."""


SUBCOMMANDS: dict[str, tuple[str, ...]] = {
    "volunteer": ("services.coordinator.commands:volunteer_account",),
}
"""Groups another service adds to a command: ``circles volunteer account ...`` (the volunteers' page accounts,
the coordinator service's) beside matching's volunteer records."""


def _attribute(path: str) -> click.Command:
    module, _, attribute = path.partition(":")
    command: click.Command = getattr(importlib.import_module(module), attribute)
    return command


def load(name: str) -> click.Command:
    """The command group ``name``, imported now (with the groups other services add to it)."""
    command = _attribute(COMMANDS[name][0])
    if isinstance(command, click.Group):
        for path in SUBCOMMANDS.get(name, ()):
            command.add_command(_attribute(path))
    return command


class LazyGroup(click.Group):
    """A group whose listed subcommands are imported when one is run, not to print the help."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            return load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(len(name) for name in self.list_commands(ctx))
        rows = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name) or click.Command(name, help=COMMANDS[name][1])
            rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="circles", message="circles %(version)s")
def main() -> None:
    """Circles referral platform: partner agencies, volunteers, proposals and operations."""


@main.command(name="run")
@click.argument("process", type=click.Choice(sorted(PROCESSES)))
def run_process(process: str) -> None:
    """Run one process of the system in the foreground (configured by CIRCLES_* variables)."""
    from pydantic import ValidationError

    try:
        PROCESSES[process]()
    except ValidationError as error:
        if not error.title.endswith("Settings"):
            raise
        raise SystemExit(f"circles run {process}: {settings_problems(error)}") from None


def settings_problems(error: ValidationError) -> str:
    """Every setting a process could not read, on one line, without the values (some are secrets)."""
    problems = error.errors(include_input=False, include_url=False)
    return "; ".join(f"setting {'.'.join(map(str, p['loc']))}: {p['msg']}" for p in problems)


if __name__ == "__main__":
    main()
