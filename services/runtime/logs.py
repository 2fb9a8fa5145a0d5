"""JSON logs through structlog, for our code and for the libraries' stdlib loggers alike.

Logs carry ids and correlation ids, never personal data. Code logs ids only; as a safety net the
``redact`` processor blanks any field named like personal data and any pydantic ``input_value`` quoted in
an exception, so a mistake elsewhere cannot print a name into a log.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import IO, Any

import structlog
from structlog.typing import EventDict, WrappedLogger

PERSONAL_KEYS = frozenset(
    {
        "name",
        "given_name",
        "family_name",
        "date_of_birth",
        "dob",
        "pnc_number",
        "email",
        "phone",
        "address",
        "notes",
        "reason",
        "referrer",
        "core_member",
        "submission",
    }
)
REDACTED = "[redacted]"
_INPUT_VALUE = re.compile(r"input_value=.*?(?=, input_type=|\]$|$)", re.MULTILINE)


def redact(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for key in PERSONAL_KEYS.intersection(event_dict):
        event_dict[key] = REDACTED
    for key in ("exception", "event"):
        value = event_dict.get(key)
        if isinstance(value, str) and "input_value=" in value:
            event_dict[key] = _INPUT_VALUE.sub(f"input_value={REDACTED}", value)
    return event_dict


def _service_adder(service: str) -> structlog.types.Processor:
    def add_service(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    return add_service


def configure_logging(service: str, level: str = "info", stream: IO[str] | None = None) -> None:
    """Route structlog and every stdlib logger (aiokafka, uvicorn) to one JSON stream."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _service_adder(service),
        structlog.processors.format_exc_info,
        redact,
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.JSONRenderer(),
        ],
    )
    # No line here says where it was logged from, or in which thread or process (the processors above add
    # none of them), so stdlib logging does not look them up for every line: the logging HOWTO's
    # "Optimization" settings (issue 13: the partner API logs a line per request).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The libraries' debug lines print record values (personal data), so they never go below INFO.
    library_level = logging.INFO if root.level <= logging.DEBUG else max(logging.WARNING, root.level)
    for library in ("aiokafka", "uvicorn.access"):
        logging.getLogger(library).setLevel(library_level)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)


@contextmanager
def log_context(**values: Any) -> Iterator[None]:
    """Bind ids (correlation id, event id...) to every log line written inside the block."""
    tokens = structlog.contextvars.bind_contextvars(**{k: v for k, v in values.items() if v is not None})
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


def bound_values() -> MutableMapping[str, Any]:
    return structlog.contextvars.get_contextvars()
