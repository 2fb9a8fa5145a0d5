"""``circles --help`` imports no service: the groups are loaded when one runs (issue 13: 1-1.4 s before)."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from services.cli import COMMANDS, load, main

HEAVY = (
    "aiokafka",
    "aiohttp",
    "jinja2",
    "fastapi",
    "starlette",
    "uvicorn",
    "pydantic",
    "structlog",
    "rocksdict",
)
"""What the services need and printing the help does not (pydantic: every contract model is one)."""


def modules_after(*args: str) -> set[str]:
    """The modules a fresh interpreter has imported after running ``circles ARGS``."""
    script = (
        "import sys\n"
        "from services.cli import main\n"
        f"try:\n    main({list(args)!r})\nexcept SystemExit:\n    pass\n"
        "print('\\n'.join(sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert "Commands:" in done.stdout or "Usage:" in done.stdout, done.stdout
    return set(done.stderr.split())


@pytest.mark.parametrize("args", [("--help",), ("-h",)])
def test_the_help_imports_no_service_and_none_of_their_dependencies(args: tuple[str, ...]) -> None:
    imported = modules_after(*args)
    heavy = sorted(name for name in imported if name.split(".")[0] in HEAVY)
    services = sorted(
        name
        for name in imported
        if name.startswith(("services.", "schemas")) and name not in {"services.cli", "services.processes"}
    )
    assert heavy == [] and services == [], (heavy, services)


def test_a_group_is_imported_when_it_is_asked_for() -> None:
    imported = modules_after("ops", "--help")
    assert "services.ops.commands" in imported and "services.referrals.commands" not in imported


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_listed_group_is_the_one_named_and_its_help_line_is_its_own(name: str) -> None:
    group = load(name)
    assert isinstance(group, click.Group) and group.name == name
    assert (group.help or "").split("\n\n")[0] == COMMANDS[name][1]


def test_the_help_lists_every_group_and_a_group_runs_from_the_list() -> None:
    runner = CliRunner()
    listed = runner.invoke(main, ["--help"])
    assert listed.exit_code == 0
    for name in [*COMMANDS, "run"]:
        assert f"  {name} " in listed.output
    assert "Partner agencies: register them, rotate their API keys." in listed.output
    agency = runner.invoke(main, ["agency", "--help"])
    assert agency.exit_code == 0 and "add" in agency.output
    assert runner.invoke(main, ["nonsense"]).exit_code == 2


def test_a_process_with_settings_it_cannot_read_says_which_in_one_line_without_their_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CIRCLES_COMMIT_INTERVAL_S", "soon")
    monkeypatch.setenv("CIRCLES_SESSION_TIMEOUT_S", "never-synthetic")
    result = CliRunner().invoke(main, ["run", "referrals-worker"])
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0, result.output
    assert "setting commit_interval_s: Input should be a valid number" in result.output
    assert "setting session_timeout_s:" in result.output
    assert "never-synthetic" not in result.output and "Traceback" not in result.output
