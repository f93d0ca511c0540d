"""Every reader of a user file turns anything it is given into either data or one clear StudioError.

The reproductions of the probe (issue 14) come first, then a property-based fuzz test per reader: random bytes and
random JSON (recipes with the known keys given hostile values too) may only ever raise the project's own error.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin

from studio.core.copy_brief import load_brief
from studio.core.copy_export import import_ads
from studio.core.errors import BadInputError, StudioError
from studio.core.formats import audio, png_meta
from studio.core.formats.json_file import parse_json
from studio.core.formats.midi import read_midi
from studio.core.formats.palette import load_palette
from studio.core.formats.sheet import load_sheet
from studio.core.music_styles import load_style_file
from studio.core.recipe import check_recipe, palette_choice, parse_recipe, real_number, whole_number
from studio.core.settings import Settings, load_settings, settings_path

# STUDIO_FUZZ_EXAMPLES=2000 for a longer hunt than CI's
FUZZ = settings(max_examples=int(os.environ.get("STUDIO_FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
_FOLDER = Path(tempfile.mkdtemp(prefix="studio-fuzz-"))

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=20)
recipe_keys = ("kind", "model", "seed", "params", "steps", "guidance", "palette", "category", "bpm", "meter", "style")
recipes = st.dictionaries(st.sampled_from(recipe_keys), json_values | st.dictionaries(
    st.sampled_from(recipe_keys), json_values, max_size=6), max_size=6)
json_texts = st.one_of(json_values.map(json.dumps), recipes.map(json.dumps), st.text(max_size=200),
                       st.integers(1, 3000).map(lambda n: "[" * n), st.integers(1, 3000).map(lambda n: '{"a":' * n))


def only_studio_errors(read: Callable[[], Any]) -> Any:
    """Run a reader; a StudioError is an accepted answer, any other exception fails the test."""
    try:
        return read()
    except StudioError as exc:
        assert str(exc), "the message must say something"
        return None


def png_with_chunk(text: str | bytes, name: str = "r.png") -> Path:
    info = PngImagePlugin.PngInfo()
    info.add_text(png_meta.JSON_KEY, text if isinstance(text, str) else text.decode("latin-1"))
    path = _FOLDER / name
    Image.new("RGBA", (4, 4)).save(path, pnginfo=info)
    return path


def wav_with(comment: str | None, sidecar: bytes | None, name: str = "c.wav") -> Path:
    path = _FOLDER / name
    with sf.SoundFile(str(path), "w", 8000, 1, "PCM_16", format="WAV") as fh:
        if comment:
            fh.comment = comment
        fh.write(np.zeros(80, np.float32))
    side = audio.sidecar_path(path)
    side.unlink(missing_ok=True)
    if sidecar is not None:
        side.write_bytes(sidecar)
    return path


# --- the probe's reproductions ------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", ["[" * 5000, "[" * 100_000, '{"params": ' * 3000 + "1" + "}" * 3000])
def test_a_deeply_nested_png_recipe_is_a_clear_error_not_a_recursion_error(chunk: str) -> None:
    with pytest.raises(BadInputError, match=r"r\.png"):
        png_meta.read_recipe(png_with_chunk(chunk))


@pytest.mark.parametrize("params", ['"steps: 20"', "[1, 2, 3]", "7"])
def test_png_params_that_are_not_an_object_are_refused(params: str) -> None:
    with pytest.raises(BadInputError, match="'params' must be an object"):
        png_meta.read_recipe(png_with_chunk(f'{{"seed": 1, "params": {params}}}'))


def test_numbers_beyond_64_bits_and_widget_ranges_never_reach_a_widget() -> None:
    with pytest.raises(BadInputError, match="too large"):
        parse_recipe('{"seed": ' + "9" * 30 + "}", "x.png")
    recipe = parse_recipe('{"params": {"steps": 99999999999, "guidance": 1e308}}', "x.png")
    assert whole_number(recipe["params"]["steps"], 1, 1000) == 1000
    assert real_number(recipe["params"]["guidance"], 0.0, 20.0) == 20.0
    assert whole_number(True, 0, 5) is None and real_number(float("nan"), 0, 1) is None


@pytest.mark.parametrize(("comment", "sidecar"), [
    (None, b'[{"seed": 3}]'),  # a sidecar that is a list
    (None, b'"just a string"'),
    ('{"seed": 3, "params": "bpm 120"}', None),
    (None, b"\xff\xfe not utf-8"),
])
def test_a_hostile_audio_recipe_is_a_clear_error(comment, sidecar) -> None:
    with pytest.raises(BadInputError, match=r"recipe|JSON|UTF-8"):
        audio.read_audio_recipe(wav_with(comment, sidecar))


def test_a_comment_that_is_not_a_recipe_is_no_recipe() -> None:
    """Other programs write free text (or a JSON string) into the comment tag: that is not an error."""
    assert audio.read_audio_recipe(wav_with('"a JSON string"', None)) is None
    assert audio.read_audio_recipe(wav_with("recorded in the garage", None)) is None


def test_the_recipe_inside_the_audio_file_wins_over_a_stale_sidecar() -> None:
    path = wav_with(json.dumps({"seed": 2}), json.dumps({"seed": 1}).encode())
    assert audio.read_audio_recipe(path) == {"seed": 2}


def test_a_recipe_cannot_point_the_palette_anywhere_on_disk(tmp_path: Path) -> None:
    palette, problem = palette_choice("/etc/passwd.hex", trusted=[tmp_path])
    assert palette is None and "outside Studio's folders" in problem
    palette, problem = palette_choice("../../../../etc/x.gpl", trusted=[tmp_path])
    assert palette is None and problem
    mine = tmp_path / "palettes" / "mine.hex"
    assert palette_choice(str(mine), trusted=[tmp_path]) == (str(mine), "")
    assert palette_choice("auto-16", trusted=[]) == ("auto-16", "")
    assert palette_choice("/etc/passwd", trusted=[tmp_path])[0] is None  # not even a palette file name


def test_settings_of_the_wrong_types_keep_their_defaults(studio_home) -> None:
    settings_path().write_text(json.dumps({"cpu_threads": "four", "write_metadata": 0, "device": ["cpu"],
                                           "output_dir": "/tmp/out", "model_memory_budget_mb": 10**15}))
    loaded = load_settings()
    assert loaded.output_dir == "/tmp/out"
    assert (loaded.cpu_threads, loaded.write_metadata, loaded.device) == (0, True, "auto")
    assert loaded.model_memory_budget_mb == 1 << 20


# --- fuzz: random bytes and random JSON into every reader --------------------------------------------------------


@FUZZ
@given(json_texts)
def test_fuzz_recipe_text(text: str) -> None:
    recipe = only_studio_errors(lambda: parse_recipe(text, "fuzz.png"))
    if recipe is not None:
        assert isinstance(recipe, dict) and isinstance(recipe.get("params", {}), dict)


@FUZZ
@given(json_values)
def test_fuzz_recipe_values(value: Any) -> None:
    only_studio_errors(lambda: check_recipe(value, "fuzz.wav.json"))


@FUZZ
@given(json_texts | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_fuzz_png_recipe_chunk(text: str) -> None:
    only_studio_errors(lambda: png_meta.read_recipe(png_with_chunk(text)))


@FUZZ
@given(st.none() | json_texts, st.none() | st.binary(max_size=200) | json_texts.map(str.encode))
def test_fuzz_audio_comment_and_sidecar(comment: str | None, sidecar: bytes | None) -> None:
    comment = comment.replace("\x00", "") if comment else comment  # a C string cannot hold a NUL
    only_studio_errors(lambda: audio.read_audio_recipe(wav_with(comment, sidecar)))


def _file(name: str, data: bytes) -> Path:
    path = _FOLDER / name
    path.write_bytes(data)
    return path


@FUZZ
@given(st.binary(max_size=300) | json_texts.map(str.encode) | recipes.map(lambda r: json.dumps(r).encode()))
def test_fuzz_brief(data: bytes) -> None:
    only_studio_errors(lambda: load_brief(_file("brief.json", data)))


@FUZZ
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode), st.sampled_from([".hex", ".gpl"]))
def test_fuzz_palette(data: bytes, suffix: str) -> None:
    only_studio_errors(lambda: load_palette(_file("p" + suffix, data)))


@FUZZ
@given(st.binary(max_size=300) | json_texts.map(str.encode))
def test_fuzz_settings(studio_home, data: bytes) -> None:
    settings_path().write_bytes(data)
    assert isinstance(load_settings(), Settings)  # a damaged file never stops Studio from starting


@FUZZ
@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps({"frames": v, "meta": {"image": "s.png"}})
                                                 .encode()) | json_texts.map(str.encode))
def test_fuzz_sprite_sheet_json(data: bytes) -> None:
    Image.new("RGBA", (8, 8)).save(_FOLDER / "s.png")
    only_studio_errors(lambda: load_sheet(_file("s.json", data)))


@FUZZ
@given(st.binary(max_size=300) | json_texts.map(str.encode), st.sampled_from([".json", ".md", ".csv"]))
def test_fuzz_ad_import(data: bytes, suffix: str) -> None:
    only_studio_errors(lambda: import_ads(_file("ads" + suffix, data), "google-rsa" if suffix == ".csv" else None))


@FUZZ
@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps({"name": "x", "bpm": 100, "instruments": v,
                                                                      "melody": v}).encode())
       | json_texts.map(str.encode))
def test_fuzz_style_file(data: bytes) -> None:
    only_studio_errors(lambda: load_style_file(_file("style.json", data)))


@FUZZ
@given(st.binary(min_size=1, max_size=400).map(lambda b: b"MThd\x00\x00\x00\x06" + b if b[0] % 2 else b))
def test_fuzz_midi(data: bytes) -> None:
    only_studio_errors(lambda: read_midi(_file("t.mid", data)))


@FUZZ
@given(st.binary(max_size=300) | json_texts.map(str.encode))
def test_fuzz_json_reader(data: bytes) -> None:
    only_studio_errors(lambda: parse_json(data, "fuzz.json"))
