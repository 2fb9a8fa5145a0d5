"""``circles kafka acls ...``: the ACLs derived from the catalogue, shown or applied to the cluster."""

from __future__ import annotations

import logging

import click

from services.runtime.cli_support import bootstrap, echo_json, prefix, run
from services.security.acls import Acl, acls, managed, render
from services.security.admin import apply_acls

PREFIX_HELP = "Topic and group prefix (default: CIRCLES_TOPIC_PREFIX)"


@click.group()
def kafka() -> None:
    """The Kafka cluster's access control (run as the admin super-user to change it)."""
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


@kafka.group(name="acls")
def acls_group() -> None:
    """Per-service ACLs derived from the topic catalogue and the process registry."""


@acls_group.command()
@click.option("--prefix", "topic_prefix", default=None, help=PREFIX_HELP)
def show(topic_prefix: str | None) -> None:
    """Print the ACLs by principal (YAML, as deploy/kafka/acls.yaml holds them)."""
    click.echo(render(prefix() if topic_prefix is None else topic_prefix), nl=False)


@acls_group.command()
@click.option("--prefix", "topic_prefix", default=None, help=PREFIX_HELP)
@click.option("--dry-run", is_flag=True, help="Say what would change, change nothing")
@click.option("--keep-stale", is_flag=True, help="Keep our principals' ACLs no longer derived")
@click.option("--json", "as_json", is_flag=True)
def apply(topic_prefix: str | None, dry_run: bool, keep_stale: bool, as_json: bool) -> None:
    """Create the missing ACLs and delete stale ones of our principals (others' are left alone)."""
    chosen = prefix() if topic_prefix is None else topic_prefix
    changes = run(
        apply_acls(bootstrap(), acls(chosen), ours=managed(chosen), prune=not keep_stale, dry_run=dry_run)
    )
    if as_json:
        echo_json(
            {
                "dry_run": dry_run,
                "created": [_line(acl) for acl in changes.created],
                "deleted": [_line(acl) for acl in changes.deleted],
                "kept": changes.kept,
            }
        )
        return
    verb = ("would create", "would delete") if dry_run else ("created", "deleted")
    for acl in changes.created:
        click.echo(f"{verb[0]}: {_line(acl)}")
    for acl in changes.deleted:
        click.echo(f"{verb[1]}: {_line(acl)}")
    created, deleted = len(changes.created), len(changes.deleted)
    click.echo(f"{created} {verb[0]}, {deleted} {verb[1]}, {changes.kept} unchanged")


def _line(acl: Acl) -> str:
    return f"{acl.principal} {acl.operation.name} {acl.resource_type.name.lower()}:{acl.resource}"
