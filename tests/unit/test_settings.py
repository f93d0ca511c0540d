from __future__ import annotations

import os

import pytest

from studio.core.settings import Settings, load_settings, save_settings, settings_path


def test_settings_persist(studio_home) -> None:
    settings = Settings(device="cpu", write_metadata=False, output_dir="/tmp/out", cpu_threads=1)
    save_settings(settings)
    assert str(settings_path()).startswith(str(studio_home))
    assert load_settings() == settings


def test_damaged_settings_fall_back_to_defaults_and_keep_the_file(studio_home) -> None:
    settings_path().write_text("{not json")
    assert load_settings() == Settings()
    assert settings_path().with_suffix(".damaged.json").exists()


def test_unknown_values_are_sanitised(studio_home) -> None:
    settings_path().write_text('{"device": "tpu", "runtime": "x", "unknown_key": 1}')
    loaded = load_settings()
    assert loaded.device == "auto" and loaded.runtime == "auto"


@pytest.mark.parametrize(("cores", "setting", "expected"), [(2, 0, 1), (1, 0, 1), (8, 0, 7), (8, 3, 3), (None, 0, 1)])
def test_model_threads_leave_a_core_free_unless_set(monkeypatch, cores, setting, expected) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    assert Settings(cpu_threads=setting).model_threads == expected
