"""Sprite data sets: packed-sheet slicing, cell rules, the crawl build, the format, the importer and the CLI."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.cli import main
from studio.core.errors import BadInputError, DiskWriteError, StudioError
from studio.ml.data import crawl_tiles
from studio.ml.data.pixel_space import NEAR_COPY_L1, near_copy_groups, nearest_l1, pixel_l1
from studio.ml.data.sprite_cells import emptiness, fit_to_cell
from studio.ml.data.sprite_import import import_folder, import_sheet
from studio.ml.data.sprites import build_crawl_dataset, load_sprite_dataset, split_by_groups, write_sprite_dataset
from tests.ml.sprite_samples import blob, distinct_sprites, save_rgba, small_dataset

# --- cells ------------------------------------------------------------------------------------------------------


def test_fit_to_cell_follows_the_documented_size_rules():
    rng = np.random.default_rng(0)
    small = blob(rng, 16, 16)
    cell, reason = fit_to_cell(small)
    assert reason == "" and cell.shape == (32, 32, 4)
    assert np.array_equal(cell[::2, ::2], np.where(small[..., 3:] > 0, small, 0))  # 2x nearest neighbour
    big = np.repeat(np.repeat(small, 4, axis=0), 4, axis=1)  # 64x64 -> halved
    assert np.array_equal(fit_to_cell(big)[0], cell)
    odd = blob(rng, 10, 20)
    placed, _ = fit_to_cell(odd)
    assert (placed[..., 3] > 0).sum() == (odd[..., 3] > 0).sum()  # centred, not scaled
    margin = np.zeros((40, 40, 4), dtype=np.uint8)
    margin[5:35, 5:35] = blob(rng, 30, 30)
    assert fit_to_cell(margin)[1] == ""  # trimmed to 30x30, fits
    assert fit_to_cell(np.full((40, 40, 4), 255, np.uint8))[1].startswith("larger than the cell")


def test_emptiness_and_hidden_colour():
    assert emptiness(np.zeros((32, 32, 4), np.uint8)) == "fully transparent"
    speck = np.zeros((32, 32, 4), np.uint8)
    speck[0, :5] = 255
    assert emptiness(speck).startswith("nearly empty")
    hidden = np.zeros((32, 32, 4), np.uint8)
    hidden[..., :3] = 77
    hidden[8:24, 8:24, 3] = 255
    assert (fit_to_cell(hidden)[0][0, 0] == 0).all()  # colour under transparent pixels cleared


# --- near copies and the split -----------------------------------------------------------------------------------


def test_near_copies_are_found_and_never_split_across_train_and_val():
    images = distinct_sprites(40, seed=1)
    noisy = images[:10].astype(int)
    noisy[..., :3] += np.random.default_rng(0).integers(-6, 7, size=noisy[..., :3].shape)
    copies = np.where(images[:10, ..., 3:] > 0, np.clip(noisy, 0, 255), 0).astype(np.uint8)
    assert (pixel_l1(images[:10], copies) < NEAR_COPY_L1).all()
    assert (pixel_l1(images[:10], images[10:20]) > NEAR_COPY_L1).all()
    everything = np.concatenate([images, copies])
    groups = near_copy_groups(everything)
    assert len(set(groups.tolist())) == 40
    labels = np.arange(50) % 2
    for seed in range(5):
        train, val = split_by_groups(labels, groups, 0.5, seed)
        assert set(train).isdisjoint(val) and len(train) + len(val) == 50
        for i in range(10):
            assert (i in set(val)) == (40 + i in set(val))


def test_nearest_l1_is_exact_below_the_threshold():
    references = distinct_sprites(60, seed=2)
    queries = np.concatenate([references[[3, 17]], distinct_sprites(3, seed=9)])
    distance, index = nearest_l1(queries, references, candidates=2)
    assert distance[:2].tolist() == [0.0, 0.0] and index[:2].tolist() == [3, 17]
    assert (distance[2:] > NEAR_COPY_L1).all()


# --- the crawl build ------------------------------------------------------------------------------------------------


def _png_bytes(rgba: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG")
    return buffer.getvalue()


FAKE_TILES = {
    "mon/undead/skeletons/skeleton_humanoid_large.png": 32,
    "mon/undead/skeletons/skeleton_dragon.png": 32,
    "mon/animals/rat.png": 32,
    "item/potion/ruby.png": 32,
    "item/potion/emerald.png": 32,
    "item/weapon/long_sword1.png": 16,  # an integer fraction of the cell: scaled up
    "dngn/floor/grey_dirt0.png": 32,
    "dngn/floor/grey_dirt1.png": 32,
    "dngn/wall/stone_brick1.png": 32,
    "dngn/altars/altar_zin.png": 32,
    "gui/spells/fire/fireball.png": 32,
    "effect/cloud_fire0.png": 32,  # left out: an effect
    "player/head/helmet1.png": 32,  # left out: a paper-doll layer
    "mon/unique/huge.png": 48,  # left out: larger than the cell
}


def _fake_source(folder: Path, monkeypatch) -> Path:
    """A stand-in for Debian's upstream crawl tarball (pinned in KNOWN_SOURCES for the test) and copyright file."""
    rng = np.random.default_rng(5)
    folder.mkdir(parents=True, exist_ok=True)
    tarball = folder / "crawl_9.9.orig.tar.xz"
    with tarfile.open(tarball, "w:xz") as archive:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(f"stone_soup-9.9/source/rltiles/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))

        for name, size in FAKE_TILES.items():
            add(name, _png_bytes(blob(rng, size, size if size != 48 else 40)))
        add("dngn/._altar_zin.png", b"\x00\x05\x16\x07 resource fork")
        add("license.txt", b"public domain roguelike tileset RLTiles")
        add("../../escape.png", _png_bytes(blob(rng, 32, 32)))  # never written outside the cache
    (folder / "copyright").write_text("Public Domain|CC0: most of tiles.\n")
    monkeypatch.setitem(crawl_tiles.KNOWN_SOURCES, tarball.name, crawl_tiles._sha256(tarball))
    return folder


def test_crawl_build_keeps_names_and_tags_and_writes_the_documented_format(tmp_path, monkeypatch):
    folder = _fake_source(tmp_path / "download", monkeypatch)
    out = tmp_path / "set"
    dataset = build_crawl_dataset(out, seed=3, val_fraction=0.2, crawl_dir=folder)
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest) >= {"name", "source", "licence", "categories", "counts", "sha256", "recipe", "rejected",
                             "tags"}
    assert manifest["categories"] == list(crawl_tiles.CATEGORIES)
    assert "CC0" in manifest["licence"] and "RLTiles" in manifest["licence"]
    assert manifest["recipe"] | {"command": ""} == {"command": "", "seed": 3, "val_fraction": 0.2, "grid": 32,
                                                     "near_copy_l1": NEAR_COPY_L1}
    names = sorted([*dataset.train_names.tolist(), *dataset.val_names.tolist()])
    kept = sorted(n for n in FAKE_TILES if not n.startswith(("effect/", "player/", "mon/unique/")))
    assert names == kept
    reasons = {(r["file"], r["reason"]) for r in manifest["rejected"]}
    assert ("effect/", "not a whole sprite of the six categories (effect, cursor or paper-doll layer)") in reasons
    assert any(f == "mon/" and "larger than the cell" in r for f, r in reasons)
    for split in ("train", "val"):
        with np.load(out / f"{split}.npz") as data:
            assert data["images"].dtype == np.uint8 and data["images"].shape[1:] == (32, 32, 4)
            assert data["labels"].dtype == np.int64 and data["names"].dtype.kind == "U"
            assert data["tags"].shape == (len(data["labels"]), len(manifest["tags"]["words"]))
            assert sum(manifest["counts"][split].values()) == len(data["labels"])
    again = build_crawl_dataset(tmp_path / "again", seed=3, val_fraction=0.2, crawl_dir=folder)
    assert np.array_equal(again.val_images, dataset.val_images)  # seeded: the same split twice
    assert not (tmp_path / "escape.png").exists() and not list(tmp_path.rglob("escape.png"))


def test_tags_come_from_training_names_with_enough_examples(tmp_path):
    images = distinct_sprites(24)
    names = [f"mon/undead/skeletons/skeleton{i}.png" for i in range(12)] + [f"item/potion/p{i}.png"
                                                                            for i in range(12)]
    labels = np.array([0] * 12 + [1] * 12)
    dataset = write_sprite_dataset(tmp_path / "d", images, labels, ["characters", "items"], name="d", source="t",
                                   licence="t", recipe={"command": "", "seed": 0, "val_fraction": 0.0},
                                   rejected=[], names=names)
    vocabulary = dataset.vocabulary
    assert set(vocabulary.words) == {"undead", "skeleton", "potion"}
    assert vocabulary.category_of(["skeleton"]) == "characters"
    column = vocabulary.index("potion")
    assert dataset.train_tags[:, column].tolist() == [n.startswith("item/") for n in dataset.train_names]


def test_an_unknown_source_tarball_is_refused(tmp_path):
    (tmp_path / "crawl_0.1.orig.tar.xz").write_bytes(b"something else")
    with pytest.raises(StudioError, match="no known Dungeon Crawl source tarball"):
        crawl_tiles.ensure_crawl_source(tmp_path / "cache", downloaded=tmp_path)
    assert not (tmp_path / "cache").exists()


def test_fetch_goes_through_apt_with_a_private_source_list_then_the_cache(tmp_path, monkeypatch):
    source = _fake_source(tmp_path / "mirror", monkeypatch)
    calls = []

    def runner(command, cwd, **_):
        calls.append(command[0] if command[0] != "apt-get" else " ".join(c for c in command if not c.startswith("-o")))
        if "--print-uris" in command:
            listing = "'http://deb.example/pool/crawl_9.9.orig.tar.xz' crawl_9.9.orig.tar.xz 10 SHA256:abc\n"
            return subprocess.CompletedProcess(command, 0, listing, "")
        if command[0] == crawl_tiles.APT_HELPER:
            assert command[-1] == "SHA256:abc"  # apt checks the hash it was given while downloading
            shutil.copyfile(source / "crawl_9.9.orig.tar.xz", command[3])
        elif command[-2:] == ["download", "crawl-common"]:
            (Path(cwd) / "crawl-common_9.9_all.deb").write_bytes(b"deb")
        elif command[0] == "dpkg":
            doc = Path(command[3]) / "usr/share/doc/crawl-common"
            doc.mkdir(parents=True)
            shutil.copyfile(source / "copyright", doc / "copyright")
        return subprocess.CompletedProcess(command, 0, "", "")

    cache = tmp_path / "cache" / "crawl-source"
    assert crawl_tiles.ensure_crawl_source(cache, runner) == cache
    assert calls == ["apt-get update", "apt-get source --print-uris --download-only crawl", crawl_tiles.APT_HELPER,
                     "apt-get download crawl-common", "dpkg"]
    assert "CC0" in crawl_tiles.licence_text(cache) and "crawl_9.9.orig.tar.xz" in crawl_tiles.describe_source(cache)
    crawl_tiles.ensure_crawl_source(cache, runner)
    assert len(calls) == 5  # the cached extraction is used


def test_apt_entries_mirror_one_line_and_deb822_sources(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("deb http://a.example/debian bookworm main # comment\n# deb off\n")
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://b.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/k.gpg\n\nTypes: deb\nURIs: http://c.example\nSuites: x\nEnabled: no\n"
    )
    entries = crawl_tiles.apt_entries(tmp_path)
    assert "deb-src http://a.example/debian bookworm main" in entries
    assert "deb-src [signed-by=/usr/share/keyrings/k.gpg] http://b.example/debian bookworm-updates main" in entries
    assert not any("c.example" in e for e in entries)


def test_fetch_without_apt_get_says_what_to_do(tmp_path, monkeypatch):
    def missing(command, **_):
        raise FileNotFoundError(command[0])

    monkeypatch.setattr(crawl_tiles, "apt_entries", lambda: ["deb http://x.example d main"])
    with pytest.raises(StudioError, match="--crawl-dir"):
        crawl_tiles.ensure_crawl_source(tmp_path / "cache", missing)
    assert not (tmp_path / "cache").exists()


# --- the format: loading and atomic writes -------------------------------------------------------------------------


def test_load_refuses_missing_damaged_or_inconsistent_sets(tmp_path):
    with pytest.raises(BadInputError, match="no sprite data set"):
        load_sprite_dataset(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInputError, match=r"manifest\.json"):
        load_sprite_dataset(tmp_path / "empty")
    dataset = small_dataset(tmp_path / "set")
    (dataset.folder / "val.npz").write_bytes(b"garbage")
    with pytest.raises(BadInputError, match="sha256"):
        load_sprite_dataset(dataset.folder)
    manifest = json.loads((dataset.folder / "manifest.json").read_text())
    manifest["sha256"] = {}
    (dataset.folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BadInputError, match="not a readable sprite split"):
        load_sprite_dataset(dataset.folder)
    np.savez(dataset.folder / "val.npz", images=np.zeros((2, 32, 32, 4), np.uint8), labels=np.array([0, 7]))
    with pytest.raises(BadInputError, match="outside the 3 categories"):
        load_sprite_dataset(dataset.folder)
    (dataset.folder / "manifest.json").write_text("{")
    with pytest.raises(BadInputError, match="damaged"):
        load_sprite_dataset(dataset.folder)


def test_a_failed_write_leaves_the_previous_set_untouched(tmp_path, monkeypatch):
    dataset = small_dataset(tmp_path / "set")
    before = (dataset.folder / "manifest.json").read_text()

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", broken)
    with pytest.raises(DiskWriteError, match="disk full"):
        write_sprite_dataset(dataset.folder, distinct_sprites(6), np.zeros(6, np.int64), ["x"], name="x",
                             source="t", licence="t", recipe={"command": "", "seed": 0, "val_fraction": 0.5},
                             rejected=[])
    assert (dataset.folder / "manifest.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["set"]  # no staging folder left behind


def test_exact_duplicates_are_dropped_and_counted(tmp_path):
    images = distinct_sprites(8)
    images = np.concatenate([images, images[:3]])
    dataset = write_sprite_dataset(tmp_path / "d", images, np.zeros(11, np.int64), ["x"], name="d", source="t",
                                   licence="t", recipe={"command": "", "seed": 0, "val_fraction": 0.25},
                                   rejected=[])
    assert len(dataset.train_labels) + len(dataset.val_labels) == 8
    assert {"file": "*", "reason": "exact duplicate of another cell", "count": 3} in dataset.manifest["rejected"]


# --- the importer -----------------------------------------------------------------------------------------------


def test_folder_import_converts_modes_and_takes_categories_from_subfolders(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "mine"
    save_rgba(folder / "knights" / "a.png", blob(rng, 30, 20))
    paletted = Image.fromarray(blob(rng, 16, 16)).convert("P")  # RGBA -> P keeps transparency in the palette
    paletted.save(folder / "knights" / "b.png")
    grey = np.full((32, 32), 90, np.uint8)
    grey[:, :4] = 0
    (folder / "slimes").mkdir()
    Image.fromarray(grey, "L").save(folder / "slimes" / "c.png")
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[...] = (255, 0, 255)
    rgb[8:24, 8:24] = (10, 200, 30)
    Image.fromarray(rgb, "RGB").save(folder / "slimes" / "d.png")
    save_rgba(folder / "slimes" / "empty.png", np.zeros((32, 32, 4), np.uint8))
    (folder / "notes.txt").write_text("hello")
    (folder / "broken.png").write_bytes(b"\x89PNG not really")

    result = import_folder(folder)
    assert result.categories == ["knights", "slimes"]
    assert len(result.images) == 4
    keyed = result.images[3]
    assert keyed[0, 0, 3] == 0 and keyed[16, 16, 3] == 255  # magenta became transparent
    notes = {n["file"]: n["note"] for n in result.notes}
    assert "converted" in notes[str(Path("knights/b.png"))]
    assert "#ff00ff" in notes[str(Path("slimes/d.png"))]
    reasons = {r["file"]: r["reason"] for r in result.rejected}
    assert reasons["notes.txt"] == "not a PNG file"
    assert "fully transparent" in reasons[str(Path("slimes/empty.png"))]
    assert "not a readable image" in reasons["broken.png"]


def test_empty_or_all_transparent_folders_are_refused_with_counts(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInputError, match="no PNG files found"):
        import_folder(tmp_path / "empty")
    for i in range(3):
        save_rgba(tmp_path / "clear" / f"{i}.png", np.zeros((32, 32, 4), np.uint8))
    with pytest.raises(BadInputError, match="3 32x32: fully transparent"):
        import_folder(tmp_path / "clear")


def test_sheet_import_slices_on_the_grid_and_checks_its_size(tmp_path):
    sheet = np.zeros((32, 48, 4), np.uint8)
    rng = np.random.default_rng(1)
    sheet[:16, :16] = blob(rng, 16, 16)
    sheet[16:, 32:] = blob(rng, 16, 16)
    path = save_rgba(tmp_path / "sheet.png", sheet)
    result = import_sheet(path, grid=16)
    assert len(result.images) == 2 and result.categories == ["sheet"]
    assert result.rejected == [{"file": "sheet.png", "reason": "fully transparent", "count": 4}]
    with pytest.raises(BadInputError, match="not a multiple of the 20 px grid"):
        import_sheet(path, grid=20)


def test_cli_builds_from_a_sheet_and_refuses_a_bad_one_without_writing(tmp_path, capsys):
    rng = np.random.default_rng(2)
    sheet = np.concatenate([np.concatenate([blob(rng, 32, 32) for _ in range(4)], axis=1) for _ in range(2)])
    path = save_rgba(tmp_path / "heroes.png", sheet)
    out = tmp_path / "set"
    assert main(["data", "sprites", "--from-sheet", str(path), "--grid", "32", "--out", str(out),
                 "--val-fraction", "0.25"]) == 0
    dataset = load_sprite_dataset(out)
    assert dataset.categories == ["heroes"] and len(dataset.train_labels) + len(dataset.val_labels) == 8
    assert "--from-sheet" in dataset.manifest["recipe"]["command"]
    assert "heroes" in capsys.readouterr().out

    bad = save_rgba(tmp_path / "bad.png", np.zeros((33, 64, 4), np.uint8))
    assert main(["data", "sprites", "--from-sheet", str(bad), "--out", str(tmp_path / "bad-set")]) == 1
    assert "not a multiple of the 32 px grid" in capsys.readouterr().err
    assert not (tmp_path / "bad-set").exists()


def test_a_folder_import_keeps_file_names_and_their_words_become_tags(tmp_path):
    from studio.ml.data.sprite_import import write_import

    folder = tmp_path / "mine"
    rng = np.random.default_rng(2)
    for i in range(10):
        save_rgba(folder / "knights" / f"red_knight_{i}.png", blob(rng, 24, 20))
        save_rgba(folder / "slimes" / f"green_slime_{i}.png", blob(rng, 16, 16))
    result = import_folder(folder)
    dataset = write_import(result, tmp_path / "set", source=folder, command="", seed=0, val_fraction=0.0, grid=32)
    assert sorted(dataset.vocabulary.words) == ["green", "knight", "red", "slime"]
    assert dataset.vocabulary.category_of(["slime"]) == "slimes"
    assert all(name.startswith(("knights/red_knight_", "slimes/green_slime_")) for name in dataset.train_names)
