"""What every ``circles`` command shares: settings, async bridging, and one-line errors."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import re
from collections.abc import Coroutine
from typing import Any, TypeVar

import click
from aiokafka.errors import KafkaConnectionError, KafkaError
from pydantic import BaseModel, ValidationError

from schemas.envelope import describe
from services.runtime.kafka_security import KafkaSecurityError
from services.runtime.settings import ConfigurationError, RuntimeSettings

T = TypeVar("T")


class CliError(click.ClickException):
    """Exit status 1 with a one-line reason."""


class OneLineCommand(click.Command):
    """A command whose usage errors are one line (``Error: ...``, exit status 2), without the usage text."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as error:
            error.ctx = None
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as error:
            error.ctx = None
            raise


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; turn the failures users can cause into one line each."""
    try:
        return asyncio.run(coroutine)
    except ValidationError as error:
        raise CliError(f"invalid input: {describe(error)}") from None
    except (ConfigurationError, KafkaSecurityError) as error:
        raise CliError(str(error)) from None
    except KafkaConnectionError:
        where = f"{bootstrap()} ({settings().bootstrap_origin()})"
        raise CliError(f"cannot reach Kafka at {where}: is the system running (make run)?") from None
    except KafkaError as error:
        raise CliError(f"Kafka refused: {type(error).__name__}") from None
    except LookupError as error:
        raise CliError(str(error).strip("'\"")) from None


def settings() -> RuntimeSettings:
    return RuntimeSettings()


def bootstrap() -> str:
    try:
        return settings().bootstrap_servers()
    except (ConfigurationError, KafkaSecurityError) as error:
        raise CliError(str(error)) from None


def prefix() -> str:
    return settings().topic_prefix


def operator() -> str:
    """Who runs this command, as audit records and erasure requests name them: ``cli:<OS user>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except OSError:  # no name for this uid (a bare container)
        return f"cli:uid-{os.getuid()}"


def os_user_id() -> str:
    """The OS user running the command as an id (``cli-<user>``, lower-case letters, digits and hyphens)."""
    try:
        user = getpass.getuser()
    except OSError:  # no name for this uid (a bare container)
        user = f"uid-{os.getuid()}"
    slug = re.sub(r"[^a-z0-9-]+", "-", user.lower()).strip("-") or "unknown"
    return f"cli-{slug}"[:63]


def echo_json(value: Any) -> None:
    """Stable JSON for scripts: models by field name, sorted keys, one document."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [item.model_dump(mode="json") if isinstance(item, BaseModel) else item for item in value]
    click.echo(json.dumps(value, indent=2, sort_keys=True, default=str))
