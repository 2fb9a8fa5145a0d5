"""`make lock`: the lock files every install of the project uses, made from pyproject.toml's ranges.

* ``requirements.lock``: the runtime dependencies (the Docker image);
* ``requirements-dev.lock``: with the ``dev`` and ``bench`` extras (``make test``, CI, ``make run``).

Each pins exact versions with the sha256 of every distribution of them (``pip install --require-hashes``),
resolved for CPython 3.11 on Linux x86_64 (the image and this machine), and includes the build backend
(setuptools, wheel) so the project itself is then installed from pinned parts
(``pip install --no-deps --no-build-isolation``). The ranges stay in pyproject.toml for library users.

Existing pins are kept unless ``--upgrade`` (``make lock LOCK_ARGS=--upgrade``) or a range excludes them.
Each file starts with a digest of the inputs it was made from; ``tests/unit/test_lock.py`` fails when
pyproject.toml has changed since.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LOCKS: dict[str, tuple[str, ...]] = {"requirements.lock": (), "requirements-dev.lock": ("dev", "bench")}
"""Each lock file and the extras it holds besides the runtime dependencies."""
PYTHON_VERSION = "3.11"
PLATFORM = "x86_64-unknown-linux-gnu"
DIGEST = "# pyproject.toml inputs sha256: "


def inputs(extras: tuple[str, ...], pyproject: Path = ROOT / "pyproject.toml") -> dict[str, Any]:
    """What a lock is made from: the build backend, the Python range, the dependencies and the extras'."""
    data = tomllib.loads(pyproject.read_text())
    project = data["project"]
    return {
        "build": data["build-system"]["requires"],
        "python": project["requires-python"],
        "dependencies": project["dependencies"],
        "extras": {extra: project["optional-dependencies"][extra] for extra in extras},
        "target": [PYTHON_VERSION, PLATFORM],
    }


def digest(extras: tuple[str, ...], pyproject: Path = ROOT / "pyproject.toml") -> str:
    return hashlib.sha256(json.dumps(inputs(extras, pyproject), sort_keys=True).encode()).hexdigest()


def make_lock(name: str, extras: tuple[str, ...], upgrade: bool) -> None:
    target = ROOT / name
    build = "\n".join(inputs(extras)["build"]) + "\n"
    command = [
        str(Path(sys.executable).parent / "uv"),
        "pip",
        "compile",
        "pyproject.toml",
        "-",  # the build backend, from standard input
        *(f"--extra={extra}" for extra in extras),
        "--generate-hashes",
        f"--python-version={PYTHON_VERSION}",
        f"--python-platform={PLATFORM}",
        "--custom-compile-command=make lock",
        "--quiet",
        f"--output-file={name}",
        *(["--upgrade"] if upgrade else []),
    ]
    subprocess.run(command, cwd=ROOT, input=build, text=True, check=True)
    target.write_text(f"{DIGEST}{digest(extras)}\n" + target.read_text())
    print(f"{name}: {sum(1 for line in target.read_text().splitlines() if '==' in line)} pins")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--upgrade", action="store_true", help="newest versions the ranges allow")
    upgrade = parser.parse_args().upgrade
    for name, extras in LOCKS.items():
        make_lock(name, extras, upgrade)


if __name__ == "__main__":
    main()
