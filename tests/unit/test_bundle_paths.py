"""Running from the bundle (PyInstaller sets ``sys.frozen``): child processes, the machine's own programs, hints."""

from __future__ import annotations

import sys

import pytest

from studio.core import paths


def test_child_processes_run_the_bundles_own_executable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert paths.self_command() == (sys.executable, "-m", "studio")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert paths.self_command() == (sys.executable,)  # the bundle has no Python to pass -m to


def test_the_machines_programs_get_their_own_library_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LD_LIBRARY_PATH", "/opt/studio/_internal")
    monkeypatch.setenv("LD_LIBRARY_PATH_ORIG", "/usr/local/lib")
    assert paths.system_environment()["LD_LIBRARY_PATH"] == "/opt/studio/_internal"  # not frozen: untouched
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    env = paths.system_environment()
    assert env["LD_LIBRARY_PATH"] == "/usr/local/lib" and "LD_LIBRARY_PATH_ORIG" not in env
    monkeypatch.delenv("LD_LIBRARY_PATH_ORIG")
    assert "LD_LIBRARY_PATH" not in paths.system_environment()


def test_damaged_shipped_files_say_what_to_do_where_studio_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "git checkout -- models" in paths.reinstall_hint()
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert paths.reinstall_hint().startswith("unpack the Studio archive again")
