"""`circles` beside `make run`: with no CIRCLES_*/KAFKA_* variables, the settings find the running stack from
the folder's ``.circles/broker.json`` (broker, topic prefix, KEK file); with no stack, the error says where
it looked. The end-to-end version (a real `make run` in a fresh copy of the repository) is in
tests/integration/test_run_command.py."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from services.cli import main
from services.protection.sealer import keks_of
from services.runtime.settings import ConfigurationError, RuntimeSettings
from services.runtime.stack_record import StackRecord, write_record


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No CIRCLES_*/KAFKA_* variables, a per-user data directory of the test's own, and a repository
    folder as the current directory."""
    for name in list(os.environ):
        if name.startswith(("CIRCLES_", "KAFKA_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    repository = tmp_path / "repository"
    (repository / "services").mkdir(parents=True)
    monkeypatch.chdir(repository / "services")  # a sub-folder finds the stack too
    return repository


def a_dead_pid() -> int:
    finished = subprocess.Popen(["true"])
    finished.wait()
    return finished.pid


def test_settings_follow_the_stack_running_in_the_folder(clean: Path) -> None:
    data = clean / ".circles"
    data.mkdir()
    kek = data / "other-kek.json"
    write_record(
        data,
        StackRecord(bootstrap_servers="127.0.0.1:39092", pid=os.getpid(), topic_prefix="demo.", kek_file=kek),
    )
    settings = RuntimeSettings()
    assert settings.data_dir == data
    assert settings.bootstrap_servers() == "127.0.0.1:39092"
    assert settings.topic_prefix == "demo."
    assert settings.kek_file == kek
    assert str(data / "broker.json") in settings.bootstrap_origin()


def test_the_environment_wins_over_the_record(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = clean / ".circles"
    data.mkdir()
    write_record(data, StackRecord(bootstrap_servers="127.0.0.1:39092", pid=None, topic_prefix="demo."))
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("CIRCLES_TOPIC_PREFIX", "")
    settings = RuntimeSettings()
    assert settings.bootstrap_servers() == "127.0.0.1:1"
    assert settings.topic_prefix == ""
    assert settings.bootstrap_origin() == "from KAFKA_BOOTSTRAP_SERVERS"


def test_no_stack_anywhere_says_where_it_looked(clean: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as raised:
        RuntimeSettings().bootstrap_servers()
    message = str(raised.value)
    assert "KAFKA_BOOTSTRAP_SERVERS is not set" in message
    assert f"no .circles/ in {clean / 'services'} or its parents" in message
    assert str(tmp_path / "xdg" / "circles" / "broker.json") in message


def test_a_stopped_or_killed_stack_is_named(clean: Path) -> None:
    data = clean / ".circles"
    data.mkdir()
    with pytest.raises(ConfigurationError, match=r"\.circles \(the nearest \.circles\) has no broker\.json"):
        RuntimeSettings().bootstrap_servers()
    write_record(data, StackRecord(bootstrap_servers="127.0.0.1:39092", pid=a_dead_pid()))
    with pytest.raises(ConfigurationError, match=r"broker\.json names a broker that has stopped"):
        RuntimeSettings().bootstrap_servers()


def test_a_stack_given_an_inline_kek_is_not_opened_with_another(clean: Path) -> None:
    data = clean / ".circles"
    data.mkdir()
    (data / "kek.json").write_text("{}")  # left by an earlier start: not the key the stack uses now
    write_record(data, StackRecord(bootstrap_servers="127.0.0.1:39092", pid=None, kek_inline=True))
    with pytest.raises(ConfigurationError, match="was given CIRCLES_KEK; set the same CIRCLES_KEK here"):
        keks_of(RuntimeSettings())


def test_the_command_says_where_it_looked_in_one_line(clean: Path) -> None:
    result = CliRunner().invoke(main, ["agency", "list"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "no Kafka broker" in lines[0] and "no .circles/ in" in lines[0], result.output


def test_commands_beside_a_rehearsal_read_its_clock(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stack started with ``CIRCLES_CLOCK=file:...`` (time moved for a rehearsal): the commands beside it
    read the same "now" (else `circles circle meeting --date <moved today>` is refused as in the future);
    the environment still wins, and a stopped stack's clock is not followed."""
    data = clean / ".circles"
    data.mkdir()
    clock = f"file:{data / 'clock'}"
    write_record(data, StackRecord(bootstrap_servers="127.0.0.1:39092", pid=os.getpid(), clock=clock))
    assert RuntimeSettings().clock == clock
    monkeypatch.setenv("CIRCLES_CLOCK", "system")
    assert RuntimeSettings().clock == "system"
    monkeypatch.delenv("CIRCLES_CLOCK")
    write_record(data, StackRecord(bootstrap_servers="127.0.0.1:39092", pid=a_dead_pid(), clock=clock))
    assert RuntimeSettings().clock == "system"
