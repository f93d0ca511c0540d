from __future__ import annotations

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
