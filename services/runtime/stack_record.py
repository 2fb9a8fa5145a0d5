"""Where a running `circles dev up` (`make run`) says it is, so that every `circles` command run from the same
folder finds it with no exports.

The stack keeps its state in a data directory (``.circles/`` in the folder `make run` ran in) and, while it
runs, writes ``broker.json`` there: the broker's address and pid, the topic prefix, the key-encryption
key setting and the clock its processes were given. A setting not given in the environment takes the value
recorded here (``RuntimeSettings``); the data directory itself, when ``CIRCLES_DATA_DIR`` is not set, is the
nearest ``.circles`` from the current directory up, else ``$XDG_DATA_HOME/circles``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

LOCAL_DATA_DIR = ".circles"
"""What `make run` names the data directory in the repository folder."""
RECORD = "broker.json"


class StackRecord(BaseModel):
    bootstrap_servers: str
    pid: int | None = Field(default=None, description="The broker's process")
    topic_prefix: str = ""
    kek_file: Path | None = Field(default=None, description="CIRCLES_KEK_FILE the stack was given, if any")
    kek_inline: bool = Field(default=False, description="The stack was given its KEK as CIRCLES_KEK")
    webhook_allow_loopback_http: bool = Field(
        default=False, description="Its workers deliver webhooks to this host over http (test receivers)"
    )
    clock: str = Field(
        default="system", description="CIRCLES_CLOCK its processes were given (a rehearsal's moved time)"
    )

    def broker_alive(self) -> bool:
        """Whether the recorded broker process is still there (a killed stack leaves its record behind)."""
        if self.pid is None:
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # someone else's process: alive
            return True
        return True


def xdg_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "circles"


def local_data_dirs(start: Path | None = None) -> list[Path]:
    """Where a `make run` data directory would be: ``.circles`` in ``start`` (the current directory) and in
    each of its parents, nearest first."""
    here = (start or Path.cwd()).resolve()
    return [folder / LOCAL_DATA_DIR for folder in (here, *here.parents)]


def find_data_dir(start: Path | None = None) -> Path:
    """The nearest existing ``.circles`` directory, else the per-user one."""
    for candidate in local_data_dirs(start):
        with contextlib.suppress(OSError):
            if candidate.is_dir():
                return candidate
    return xdg_data_dir()


def read_record(data_dir: Path) -> StackRecord | None:
    """The stack's record in ``data_dir``; None when there is none (or it cannot be read)."""
    try:
        return StackRecord.model_validate_json((data_dir / RECORD).read_bytes())
    except (OSError, ValidationError):
        return None


def write_record(data_dir: Path, record: StackRecord) -> None:
    path = data_dir / RECORD
    temporary = path.with_suffix(".tmp")
    temporary.write_text(record.model_dump_json(exclude_none=True))
    temporary.replace(path)


def remove_record(data_dir: Path) -> None:
    (data_dir / RECORD).unlink(missing_ok=True)
