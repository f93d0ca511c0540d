"""Sprite data sets: packed-sheet slicing, cell rules, the crawl build, the format, the importer and the CLI."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.cli import main
from studio.core.errors import BadInputError, DiskWriteError, StudioError
from studio.ml.data import crawl_tiles
from studio.ml.data.packed_sheet import segment_packed_sheet
from studio.ml.data.pixel_space import NEAR_COPY_L1, near_copy_groups, nearest_l1, pixel_l1
from studio.ml.data.sprite_cells import emptiness, fit_to_cell, slice_grid
from studio.ml.data.sprite_import import import_folder, import_sheet
from studio.ml.data.sprites import build_crawl_dataset, load_sprite_dataset, split_by_groups, write_sprite_dataset
from tests.ml.sprite_samples import blob, distinct_sprites, pack_like_rltiles, save_rgba, small_dataset

# --- packed sheets ----------------------------------------------------------------------------------------------


def _trimmed_boxes(sprites, boxes):
    out = []
    for sprite, (x0, y0, _, _) in zip(sprites, boxes, strict=True):
        visible = sprite[..., 3] > 0
        rows, cols = np.flatnonzero(visible.any(1)), np.flatnonzero(visible.any(0))
        out.append((x0 + int(cols[0]), y0 + int(rows[0]), x0 + int(cols[-1]) + 1, y0 + int(rows[-1]) + 1))
    return out


def _recovered(truth, found, slack):
    return np.mean([any(max(abs(a - b) for a, b in zip(t, f, strict=True)) <= slack for f in found) for t in truth])


def test_packed_sheet_recovers_most_sprites_where_a_grid_cuts_them():
    rng = np.random.default_rng(3)
    sprites = [blob(rng, int(rng.choice([32, 30, 24, 16, 12])), int(rng.integers(6, 33))) for _ in range(150)]
    sheet, boxes = pack_like_rltiles(sprites, width=256)
    truth = _trimmed_boxes(sprites, boxes)
    found = [(r.x0, r.y0, r.x1, r.y1) for r in segment_packed_sheet(sheet)]
    grid = [(c * 32, r * 32, c * 32 + 32, r * 32 + 32) for r, c, _ in slice_grid(sheet[: len(sheet) // 32 * 32], 32)]
    assert _recovered(truth, found, slack=1) > 0.55
    assert _recovered(truth, found, slack=1) > 3 * _recovered(truth, grid, slack=1)


def test_packed_sheet_parts_sprites_touching_at_a_point_and_keeps_gaps_inside_one():
    sheet = np.zeros((32, 64, 4), dtype=np.uint8)
    diamond = np.zeros((32, 32), dtype=bool)
    yy, xx = np.mgrid[:32, :32]
    diamond[np.abs(yy - 15.5) + np.abs(xx - 15.5) <= 16] = True
    sheet[:, :32][diamond] = (200, 50, 50, 255)
    sheet[:, 32:][diamond] = (50, 50, 200, 255)  # the two diamonds touch at their side corners only
    found = {(r.x0, r.y0, r.x1, r.y1) for r in segment_packed_sheet(sheet)}
    assert found == {(0, 0, 32, 32), (32, 0, 64, 32)}

    two_parts = np.zeros((20, 30, 4), dtype=np.uint8)
    two_parts[:, :12] = two_parts[:, 16:] = 255  # one sprite drawn in two pieces with a gap between them
    assert [(r.x0, r.y0, r.x1, r.y1) for r in segment_packed_sheet(two_parts)] == [(0, 0, 30, 20)]


def test_opaque_framed_icons_are_cut_at_their_own_pitch():
    rng = np.random.default_rng(0)
    icons = []
    for _ in range(12):
        icon = np.zeros((28, 28, 4), dtype=np.uint8)
        icon[..., 3] = 255
        icon[:, 0, :3] = icon[0, :, :3] = 196  # light frame left and top, dark right and bottom
        icon[:, -1, :3] = icon[-1, :, :3] = 64
        icon[6:22, 6:22, :3] = rng.integers(0, 256, size=(16, 16, 3))
        icons.append(icon)
    sheet = np.concatenate(icons, axis=1)
    widths = {r.width for r in segment_packed_sheet(sheet)}
    assert widths == {28}


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


def _fake_crawl(root: Path) -> Path:
    """A tiny stand-in for the unpacked packages: every sheet, a copyright file."""
    rng = np.random.default_rng(5)
    tiles = root / crawl_tiles.TILES_DIR
    for sheet in crawl_tiles.SHEETS:
        if sheet.packed:
            sprites = [blob(rng, int(rng.integers(14, 31)), int(rng.integers(14, 31))) for _ in range(6)]
            rgba, _ = pack_like_rltiles(sprites, width=128)
        else:
            rgba = np.zeros((64, 96, 4), np.uint8)
            for r, c, _ in slice_grid(rgba, 32):
                if (r, c) != (1, 2):  # one empty cell
                    rgba[r * 32 : r * 32 + 32, c * 32 : c * 32 + 32] = np.append(rng.integers(0, 256, 3), 255)
        save_rgba(tiles / sheet.file, rgba)
    (root / crawl_tiles.COPYRIGHT).parent.mkdir(parents=True, exist_ok=True)
    (root / crawl_tiles.COPYRIGHT).write_text("Public Domain|CC0: most of tiles.\n")
    return root


def test_crawl_build_writes_the_documented_format(tmp_path):
    root = _fake_crawl(tmp_path / "crawl")
    out = tmp_path / "set"
    dataset = build_crawl_dataset(out, seed=3, val_fraction=0.2, crawl_dir=root)
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest) >= {"name", "source", "licence", "categories", "counts", "sha256", "recipe", "rejected"}
    assert manifest["categories"] == list(crawl_tiles.CATEGORIES)
    assert "CC0" in manifest["licence"]
    assert manifest["recipe"] | {"command": ""} == {"command": "", "seed": 3, "val_fraction": 0.2, "grid": 32,
                                                     "near_copy_l1": NEAR_COPY_L1}
    for split in ("train", "val"):
        with np.load(out / f"{split}.npz") as data:
            assert data["images"].dtype == np.uint8 and data["images"].shape[1:] == (32, 32, 4)
            assert data["labels"].dtype == np.int64
            assert sum(manifest["counts"][split].values()) == len(data["labels"])
    assert any(r["reason"] == "fully transparent" and r["file"] == "floor.png" for r in manifest["rejected"])
    assert manifest["counts"]["train"]["floor"] + manifest["counts"]["val"]["floor"] == 5
    assert len(dataset.val_labels) > 0 and len(dataset.train_labels) > len(dataset.val_labels)
    again = build_crawl_dataset(tmp_path / "again", seed=3, val_fraction=0.2, crawl_dir=root)
    assert np.array_equal(again.val_images, dataset.val_images)  # seeded: the same split twice


def test_fetch_uses_apt_get_download_and_dpkg_then_the_cache(tmp_path):
    calls = []

    def runner(command, cwd, **_):
        calls.append(command[:2])
        if command[:2] == ["apt-get", "download"]:
            for package in command[2:]:
                (Path(cwd) / f"{package}_2%3a0.28.0-1.1_all.deb").write_bytes(package.encode())
        elif command[0] == "dpkg":
            _fake_crawl(Path(command[3]))
        return subprocess.CompletedProcess(command, 0, "", "")

    cache = tmp_path / "cache" / "crawl-tiles"
    root = crawl_tiles.ensure_crawl_tiles(cache, runner)
    assert root == cache and crawl_tiles.is_extracted(cache)
    assert calls == [["apt-get", "download"], ["dpkg", "-x"], ["dpkg", "-x"]]
    assert "crawl-tiles-data 2:0.28.0-1.1" in crawl_tiles.describe_source(cache)
    crawl_tiles.ensure_crawl_tiles(cache, runner)
    assert len(calls) == 3  # the cached extraction is used


def test_fetch_without_apt_get_says_what_to_do(tmp_path):
    def missing(command, **_):
        raise FileNotFoundError(command[0])

    with pytest.raises(StudioError, match="--crawl-dir"):
        crawl_tiles.ensure_crawl_tiles(tmp_path / "cache", missing)
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
