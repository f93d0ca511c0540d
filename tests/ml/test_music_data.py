"""Music data: ABC and MIDI import (hand-written fixtures), corrupt files, the data folder and its windows."""

from __future__ import annotations

import builtins
import json
import re
from pathlib import Path

import numpy as np
import pytest

from studio.core.errors import BadInputError
from studio.ml.data import music_corpus
from studio.ml.data.music import MusicData, build_dataset, read_user_clip, split_of, tune_group, write_split
from studio.ml.music import tokens
from studio.ml.music.constraints import Grammar
from tests.ml.music_fixtures import ABC_JIG, ABC_TWO_TUNES, synthetic_data, write_midi


def music21_or_skip() -> None:
    pytest.importorskip("music21", reason="ABC reading needs the train extra (music21)")


# -- ABC ----------------------------------------------------------------------------------------------------------


def test_abc_tune_becomes_grid_events(tmp_path: Path) -> None:
    music21_or_skip()
    path = tmp_path / "jig.abc"
    path.write_text(ABC_JIG, encoding="utf-8")
    (record,) = music_corpus.read_abc(path)
    assert (record["meter"], record["tonic"], record["mode"], record["tempo"]) == ("6/8", 9, "dorian", "fast")
    events = [tokens.Event(*e) for e in record["events"]]
    assert events[0] == tokens.Event(0, 30, 64, 6)  # the pickup E sits at the end of bar 1
    bar2 = [e for e in events if e.bar == 1]
    assert [(e.pos, e.pitch, e.dur) for e in bar2] == [(0, 69, 12), (12, 71, 6), (18, 72, 12), (30, 74, 6)]
    bar3 = [e for e in events if e.bar == 2]
    assert [(e.pos, e.pitch, e.dur) for e in bar3] == [(0, 76, 30), (30, 74, 6)]  # tied e3-e2 merged
    bar4 = [e for e in events if e.bar == 3]
    assert bar4[0] == tokens.Event(3, 0, 76, 6)  # the chord [ce] keeps its top note
    assert [e.dur for e in bar4[3:6]] == [4, 4, 4]  # the triplet sits on the grid
    bar6 = [e for e in events if e.bar == 5]
    assert [(e.pos, e.pitch) for e in bar6] == [(0, 69), (18, 69), (30, 76)]  # end of part A + pickup share a bar
    assert record["bars"] == 8


def test_several_tunes_in_one_abc_file(tmp_path: Path) -> None:
    music21_or_skip()
    path = tmp_path / "two.abc"
    path.write_text(ABC_TWO_TUNES, encoding="utf-8")
    first, second = music_corpus.read_abc(path)
    assert (first["meter"], first["tonic"], first["mode"], first["tempo"]) == ("3/4", 7, "major", "slow")
    assert (second["meter"], second["tonic"], second["mode"]) == ("2/4", 2, "minor")
    assert first["bars"] == 4 and second["bars"] == 4
    clip = read_user_clip(path)
    assert clip.meter == "3/4" and clip.bpm == 70 and clip.notes[0]["pitch"] == 67


def test_bad_abc_files_get_clear_messages(tmp_path: Path) -> None:
    music21_or_skip()
    garbage = tmp_path / "garbage.abc"
    garbage.write_text("X: 1\nT: nothing\nK: C\n%%%%\n", encoding="utf-8")
    with pytest.raises(BadInputError, match="no readable ABC tune"):
        read_user_clip(garbage)
    binary = tmp_path / "binary.abc"
    binary.write_bytes(b"\xff\xfe\x00\x81" * 10)
    with pytest.raises(BadInputError, match="not a text file"):
        read_user_clip(binary)
    with pytest.raises(BadInputError, match="no such file"):
        read_user_clip(tmp_path / "missing.abc")


def test_abc_without_music21_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_music21(name: str, *args, **kwargs):
        if name == "music21" or name.startswith("music21."):
            raise ImportError("No module named 'music21'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_music21)
    path = tmp_path / "tune.abc"
    path.write_text(ABC_TWO_TUNES, encoding="utf-8")
    with pytest.raises(BadInputError, match=r"music21.*pip install"):
        read_user_clip(path)


def test_tempo_words_and_marks() -> None:
    assert music_corpus.tempo_from_text("X:1\nQ:1/4=150\nK:C\n") == "very_fast"
    assert music_corpus.tempo_from_text('X:1\nN: "Very slow"\nK:C\n') == "slow"
    assert music_corpus.tempo_from_text("X:1\nR: reel\nK:C\n") == "very_fast"
    assert music_corpus.tempo_from_text("X:1\nT: Some Jig\nK:C\n") == "fast"
    assert music_corpus.tempo_from_text("X:1\nT: Untitled\nK:C\n") == "moderate"


def test_abc_files_are_split_per_tune() -> None:
    assert len(music_corpus.split_abc(ABC_TWO_TUNES)) == 2
    assert music_corpus.split_abc("no tunes here") == []


# -- MIDI ---------------------------------------------------------------------------------------------------------


def test_midi_clip_is_read_with_its_key_meter_and_tempo(tmp_path: Path) -> None:
    notes = [(64, 0.0, 1.0), (67, 1.0, 0.5), (71, 1.5, 0.5), (76, 2.0, 1.0), (64, 3.0, 3.0)]
    clip = read_user_clip(write_midi(tmp_path / "clip.mid", notes))
    assert (clip.meter, clip.tonic, clip.mode, clip.bpm) == ("3/4", 4, "minor", pytest.approx(100.0))
    assert [(n["pitch"], n["start"], n["duration"]) for n in clip.notes] == notes
    assert {n["part"] for n in clip.notes} == {"melody"}


def test_midi_without_a_key_gets_an_estimated_one(tmp_path: Path) -> None:
    d_major = [(62, 0.0, 1.0), (66, 1.0, 1.0), (69, 2.0, 1.0), (74, 3.0, 1.0), (73, 4.0, 1.0), (71, 5.0, 1.0),
               (69, 6.0, 1.0), (62, 7.0, 1.0)]
    clip = read_user_clip(write_midi(tmp_path / "nokey.mid", d_major, key=None, meter=(4, 4)))
    assert (clip.tonic, clip.mode) == (2, "major")


def test_corrupt_midi_files_are_refused_clearly(tmp_path: Path) -> None:
    good = write_midi(tmp_path / "good.mid", [(60, 0.0, 1.0)])
    truncated = tmp_path / "truncated.mid"
    truncated.write_bytes(good.read_bytes()[:30])
    noise = tmp_path / "noise.mid"
    noise.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8)))
    empty = tmp_path / "empty.mid"
    empty.write_bytes(b"")
    for path in (truncated, noise, empty):
        with pytest.raises(BadInputError, match=re.escape(path.name)):
            read_user_clip(path)
    with pytest.raises(BadInputError, match=r"MIDI.*ABC"):
        read_user_clip(tmp_path / "song.mp3")


def test_midi_in_an_unsupported_meter_is_refused(tmp_path: Path) -> None:
    path = write_midi(tmp_path / "five.mid", [(60, 0.0, 1.0)], meter=(5, 8))
    with pytest.raises(BadInputError, match="meter"):
        read_user_clip(path)


# -- the data folder ----------------------------------------------------------------------------------------------


def test_build_from_user_files_only(tmp_path: Path) -> None:
    files = [write_midi(tmp_path / f"t{i}.mid", [(60 + (i + k) % 12, k * 0.5, 0.5) for k in range(24)])
             for i in range(6)]
    manifest = build_dataset(tmp_path / "set", corpus_sources=(), extra_files=files)
    assert manifest["vocab"] == tokens.VOCAB_VERSION
    assert sum(s["sequences"] for s in manifest["splits"].values()) == 6
    assert manifest["splits"]["val"]["sequences"] >= 1
    saved = json.loads((tmp_path / "set" / "manifest.json").read_text())
    assert saved["splits"] == manifest["splits"]
    train = MusicData.load(tmp_path / "set", "train")
    tune = train.tune(0)
    assert tune.header.meter == "3/4" and tune.source == "user" and len(tune.notes()) == 24


def test_split_is_by_tune_and_stable() -> None:
    assert tune_group("bach/bwv1.6:bass") == tune_group("bach/bwv1.6") == "bach/bwv1.6"
    assert tune_group("oneills1850/0001-0050/3#1") == "oneills1850/0001-0050/3"
    assert split_of("bach/bwv1.6:bass") == split_of("bach/bwv1.6")
    splits = [split_of(f"x/{i}") for i in range(2000)]
    assert 0.03 < splits.count("val") / len(splits) < 0.07


def test_windows_are_valid_sequences_in_every_key(tmp_path: Path) -> None:
    data = MusicData.load(synthetic_data(tmp_path / "d"), "train")
    rng = np.random.default_rng(0)
    tonics = set()
    for _ in range(200):
        seq = data.sample_window(rng, 64)
        assert len(seq) <= 64
        header = tokens.decode_header(seq)
        tonics.add(header.tonic)
        body = list(seq[tokens.HEADER_LEN :])
        events, bars = tokens.decode_events(body)
        if body[-1] == tokens.EOS:
            assert bars == header.bars
            grammar = Grammar(header, end_bar=header.bars, chromatic=True, pitch_range=(24, 107))
            for token in body:  # a stored tune need not resolve, but its structure is the grammar's
                grammar.advance(token, check=False)
        scale = tokens.scale_pitch_classes(header.tonic, header.mode)
        assert all(e.pitch % 12 in scale for e in events)  # transposed together with its key
    assert len(tonics) == 12


def test_validation_sequences_start_at_the_first_bar_untransposed(tmp_path: Path) -> None:
    data = MusicData.load(synthetic_data(tmp_path / "d"), "val")
    for i, seq in enumerate(data.validation_sequences(128)):
        header = tokens.decode_header(seq)
        assert header.tonic == data.header(i).tonic and seq[-1] == tokens.EOS and len(seq) <= 128
        assert tokens.decode_events(list(seq[tokens.HEADER_LEN :]))[1] == header.bars


def test_windows_never_start_on_a_pickup_bar(tmp_path: Path) -> None:
    pickup = [[0, 36, 67, 12]] + [[bar, pos, 60 + bar, 12] for bar in range(1, 10) for pos in (0, 12, 24, 36)]
    record = {"id": "t/pickup", "source": "t", "title": "", "tonic": 0, "mode": "major", "meter": "4/4",
              "tempo": "fast", "part": "melody", "bars": 10, "events": pickup}
    write_split([record], tmp_path / "val.npz")
    data = MusicData(tmp_path / "val.npz")
    assert list(data.phrase_starts[0]) == [1, 5]
    (sequence,) = data.validation_sequences(512)
    assert list(sequence[tokens.HEADER_LEN : tokens.HEADER_LEN + 3]) == [
        tokens.BAR, tokens.pos_token(0), tokens.pitch_token(61)]
    assert tokens.decode_header(sequence).bars == 9
    rng = np.random.default_rng(1)
    for _ in range(50):
        window = data.sample_window(rng, 512, augment=False)
        assert window[tokens.HEADER_LEN + 1] == tokens.pos_token(0)


def test_a_stale_vocabulary_is_refused(tmp_path: Path) -> None:
    folder = synthetic_data(tmp_path / "d")
    (folder / "manifest.json").write_text(json.dumps({"vocab": "music-events-v0"}))
    with pytest.raises(BadInputError, match="rebuild"):
        MusicData.load(folder, "train")
    with pytest.raises(BadInputError, match="studio data music"):
        MusicData.load(tmp_path / "nowhere", "train")


@pytest.mark.slow
def test_real_corpus_items_parse() -> None:
    music21_or_skip()
    items = music_corpus.corpus_items()
    sources = {i.source for i in items}
    assert sources == {"oneills1850", "ryansMammoth", "bach"}
    assert not any("essenFolksong" in i.path or i.id.startswith("essenFolksong") for i in items)
    for item in (items[0], next(i for i in items if i.source == "bach")):
        result = music_corpus.parse_item(item)
        assert "error" not in result and result["records"]
