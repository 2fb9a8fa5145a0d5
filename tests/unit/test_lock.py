"""The lock files (deploy/lock.py, `make lock`) are made from the current pyproject.toml, pin every declared
dependency inside its range with hashes, and are what the image, `make` (so CI) and this environment
install."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from deploy.lock import DIGEST, LOCKS, ROOT, digest, inputs

PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s\\;]+)")


def pins(name: str) -> dict[str, tuple[str, int]]:
    """Each locked package (canonical name): its version and how many hashes it carries."""
    found: dict[str, tuple[str, int]] = {}
    current = ""
    for line in (ROOT / name).read_text().splitlines():
        if match := PIN.match(line):
            current = canonicalize_name(match.group(1))
            found[current] = (match.group(2), 0)
        elif line.strip().startswith("--hash=sha256:") and current:
            pinned, hashes = found[current]
            found[current] = (pinned, hashes + 1)
    return found


def declared(extras: tuple[str, ...]) -> list[Requirement]:
    made_from = inputs(extras)
    texts = made_from["build"] + made_from["dependencies"]
    texts += [text for extra in extras for text in made_from["extras"][extra]]
    return [Requirement(text) for text in texts]


@pytest.mark.parametrize(("lock", "extras"), LOCKS.items())
def test_each_lock_was_made_from_the_current_pyproject(lock: str, extras: tuple[str, ...]) -> None:
    first = (ROOT / lock).read_text().splitlines()[0]
    assert first == f"{DIGEST}{digest(extras)}", f"{lock} is stale: run `make lock`"


@pytest.mark.parametrize(("lock", "extras"), LOCKS.items())
def test_every_declared_dependency_is_pinned_in_its_range_with_hashes(
    lock: str, extras: tuple[str, ...]
) -> None:
    locked = pins(lock)
    assert locked and all(hashes for _, hashes in locked.values()), "every pin carries its hashes"
    for requirement in declared(extras):
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement} is not in {lock}: run `make lock`"
        assert requirement.specifier.contains(locked[name][0], prereleases=True), (requirement, locked[name])


def test_the_runtime_lock_is_the_dev_locks_runtime_part() -> None:
    """The image runs what the tests ran: the same versions of what both hold."""
    runtime, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    assert {name: pinned for name, (pinned, _) in runtime.items()} == {name: dev[name][0] for name in runtime}


def test_this_environment_is_installed_from_the_dev_lock() -> None:
    wrong = {}
    for name, (pinned, _) in pins("requirements-dev.lock").items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = "missing"
        if installed != pinned:
            wrong[name] = (pinned, installed)
    assert wrong == {}, "run `make .venv/.installed` (pinned, installed)"


def test_the_image_and_make_install_from_the_locks() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes -r requirements.lock" in dockerfile
    assert "--no-deps --no-build-isolation ." in dockerfile
    makefile = (ROOT / "Makefile").read_text()
    assert "$(INSTALLED): pyproject.toml requirements-dev.lock" in makefile
    assert "--require-hashes -r requirements-dev.lock" in makefile
    assert "--no-deps --no-build-isolation -e ." in makefile
