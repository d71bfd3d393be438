"""`civicgrid policy` finds a running platform's data dir from any directory (the running
`civicgrid up` records it), and says how to point at one when there is none."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from civicgrid.cli import running
from civicgrid.cli.main import embedded_platform


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "runtime"))
    (tmp_path / "runtime").mkdir()
    monkeypatch.delenv("CIVICGRID_NATS_PORT", raising=False)
    work = tmp_path / "somewhere-else"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path


def test_the_running_platforms_record_is_found_from_another_directory(elsewhere: Path) -> None:
    data_dir = elsewhere / "platform-data"
    data_dir.mkdir()
    running.record(data_dir, 4333)
    assert embedded_platform(None, None) == (data_dir.resolve(), 4333)
    assert embedded_platform(None, 5000) == (data_dir.resolve(), 5000)
    running.forget()
    assert running.recorded() is None


def test_a_record_of_a_stopped_platform_is_ignored_and_the_error_says_how(
    elsewhere: Path,
) -> None:
    document = {"data_dir": str(elsewhere), "nats_port": 4222, "pid": 2**22 + 12345}
    running.record_path().write_text(json.dumps(document))
    assert running.recorded() is None
    with pytest.raises(SystemExit) as stopped:
        embedded_platform(None, None)
    message = str(stopped.value)
    assert "no running civicgrid found" in message
    assert "--data-dir" in message and "--nats" in message and "civicgrid up" in message


def test_an_explicit_data_dir_wins(elsewhere: Path) -> None:
    given = elsewhere / "given"
    given.mkdir()
    (given / "credentials.json").write_text("{}")
    running.record(elsewhere / "recorded", 4333)
    assert embedded_platform(str(given), None) == (given, 4222)
    assert os.getpid() == json.loads(running.record_path().read_text())["pid"]
