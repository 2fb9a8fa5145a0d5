"""``circles keys``: rotate the key-encryption key that wraps every data key.

Rotation in three steps, so that no process ever meets a data key wrapped by a KEK it does not hold:
``new-kek`` adds a new primary KEK to the file (the old ones stay); restart the processes (they read the
file at start); ``rewrap`` wraps every data key under the new primary. Once ``status`` shows an old KEK
wrapping nothing, it may leave the file.

``status`` and ``rewrap`` read and write every keys topic, which no service principal may: on a broker with
ACLs they run as ``circles-admin`` (the super user), never as ``circles-ops``.
"""

from __future__ import annotations

from pathlib import Path

import click

from services.protection.errors import KekError
from services.protection.keks import add_kek
from services.protection.sealer import Sealer, build_sealer
from services.runtime.cli_support import CliError, echo_json, run, settings


@click.group()
def keys() -> None:
    """Key-encryption keys: add a new one, re-wrap the data keys, see which KEK wraps what."""


@keys.command("new-kek")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--id", "kek_id", help="The new KEK's id (default: a random one)")
def new_kek(path: Path, kek_id: str | None) -> None:
    """Create the KEK file, or add a new primary KEK to it (readable by its owner only)."""
    try:
        added = add_kek(path, kek_id)
    except KekError as refused:
        raise CliError(str(refused)) from None
    click.echo(f"Added KEK {added} to {path} as the primary.")
    click.echo("Restart every process that reads this file, then run: circles keys rewrap")


async def _with_sealer(action: str) -> dict[str, dict[str, int]]:
    sealer: Sealer = build_sealer(
        settings(), ["referral", "volunteer", "coordinator"], client_id="circles-keys-admin"
    )
    await sealer.start()
    try:
        result = {}
        for store in sealer.keystores():
            rewrapped = await store.rewrap() if action == "rewrap" else None
            counts = {f"wrapped by {kek}": n for kek, n in sorted(store.kek_counts().items())}
            result[store.topic] = counts if rewrapped is None else {"rewrapped": rewrapped, **counts}
        return result
    finally:
        await sealer.stop()


def _show(action: str, as_json: bool) -> None:
    try:
        result = run(_with_sealer(action))
    except KekError as refused:
        raise CliError(str(refused)) from None
    if as_json:
        echo_json(result)
        return
    for topic, counts in result.items():
        figures = ", ".join(f"{name}: {n}" for name, n in counts.items()) or "no data keys"
        click.echo(f"{topic}  {figures}")


@keys.command("status")
@click.option("--json", "as_json", is_flag=True)
def status(as_json: bool) -> None:
    """How many data keys each KEK wraps, per keys topic."""
    _show("status", as_json)


@keys.command("rewrap")
@click.option("--json", "as_json", is_flag=True)
def rewrap(as_json: bool) -> None:
    """Wrap every data key under the primary KEK (after new-kek and a restart of the processes)."""
    _show("rewrap", as_json)
