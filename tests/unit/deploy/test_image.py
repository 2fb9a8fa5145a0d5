"""The Dockerfile (which cannot be built here: no Docker engine) copies what exists and what the build
needs, runs a process of the registry as an unprivileged user, and the package it installs carries every
file the services read at run time."""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import tomllib

from services.processes import PROCESSES
from tests.unit.deploy.common import DEPLOY, ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()
INSTRUCTIONS = [
    line.strip()
    for line in DOCKERFILE.replace("\\\n", " ").splitlines()
    if line.strip() and not line.lstrip().startswith("#")
]


def instructions(keyword: str) -> list[str]:
    return [line.split(None, 1)[1] for line in INSTRUCTIONS if line.split(None, 1)[0] == keyword]


def test_both_stages_use_the_slim_python_311_image() -> None:
    assert [image.split()[0] for image in instructions("FROM")] == ["python:3.11-slim-bookworm"] * 2


def test_every_copied_path_exists_and_is_in_the_build_context() -> None:
    allowed = [
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    for copy in instructions("COPY"):
        words = [word for word in copy.split() if not word.startswith("--")]
        if "--from=" in copy:
            continue
        for source in words[:-1]:
            assert (ROOT / source).exists(), source
            assert any(source == path or source.startswith(path + "/") for path in allowed), source
    readme = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["readme"]
    assert any(readme in copy.split() for copy in instructions("COPY")), "the build needs the readme"


def test_it_runs_a_process_of_the_registry_as_an_unprivileged_user() -> None:
    (user,) = instructions("USER")
    assert user == "10001:10001"
    command = json.loads(instructions("CMD")[0])
    assert command[:2] == ["circles", "run"] and command[2] in PROCESSES
    entrypoint = json.loads(instructions("ENTRYPOINT")[0])
    assert entrypoint == ["/usr/local/bin/circles-entrypoint"]
    script = DEPLOY / "docker" / "entrypoint.sh"
    assert os.access(script, os.X_OK) and 'exec "$@"' in script.read_text()
    subprocess.run(["sh", "-n", str(script)], check=True)


def test_the_installed_package_carries_every_file_the_services_read() -> None:
    """The image installs the package (pip install .), not the source tree: templates, policies, static
    files and schemas must be package data."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["*"]
    for package in ("services", "schemas"):
        for path in (ROOT / package).rglob("*"):
            if path.is_file() and path.suffix not in (".py", ".pyc"):
                assert any(fnmatch.fnmatch(path.name, pattern) for pattern in patterns), path
