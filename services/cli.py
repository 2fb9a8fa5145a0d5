"""The ``circles`` command. Each service contributes its own command group."""

from __future__ import annotations

import click

from services.devstack import dev


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Circles referral platform: partner agencies, volunteers, proposals and operations."""


main.add_command(dev)
