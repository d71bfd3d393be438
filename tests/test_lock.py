"""uv.lock is the one source of every installed version: current, complete, hashed."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def uv() -> str:
    pinned = REPO / ".tools" / "uv"
    found = os.environ.get("UV") or (str(pinned) if pinned.exists() else shutil.which("uv"))
    if not found:
        pytest.skip("no uv here: `make venv` fetches the pinned one into .tools/uv")
    return found


def test_the_lock_matches_every_pyproject() -> None:
    # Fails, naming the change, when a pyproject.toml was edited without `make lock`.
    result = subprocess.run(
        [uv(), "lock", "--check", "--offline"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_every_package_is_a_workspace_member_and_every_download_is_hashed() -> None:
    root = tomllib.loads((REPO / "pyproject.toml").read_text())
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    packages = {
        tomllib.loads(path.read_text())["project"]["name"]
        for path in [*REPO.glob("libs/*/pyproject.toml"), *REPO.glob("services/*/pyproject.toml")]
    }
    assert set(lock["manifest"]["members"]) == packages | {root["project"]["name"]}
    for name in packages:
        assert root["tool"]["uv"]["sources"][name] == {"workspace": True}, name
    for package in lock["package"]:
        if "registry" in package["source"]:
            files = [package.get("sdist", {}), *package.get("wheels", [])]
            assert all(f.get("hash", "").startswith("sha256:") for f in files if f), package["name"]
