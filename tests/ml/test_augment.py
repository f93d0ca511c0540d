"""Sprite augmentations: seeded, per-category rules kept, nothing cut off, and the preview command."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from PIL import Image

from studio.cli import main
from studio.ml.data.augment import (
    POLICIES,
    AugmentPolicy,
    augment_batch,
    augment_one,
    augment_preview,
    policy_for,
)
from tests.ml.sprite_samples import distinct_sprites, small_dataset

GEOMETRY_ONLY = dict(hue=0.0, saturation=0.0, brightness=0.0)


def test_same_seed_same_batch_other_seed_other_batch():
    images = distinct_sprites(16)
    labels = np.arange(16) % 3
    categories = ["items", "floor", "gui"]
    first = augment_batch(images, labels, categories, np.random.default_rng(7))
    again = augment_batch(images, labels, categories, np.random.default_rng(7))
    other = augment_batch(images, labels, categories, np.random.default_rng(8))
    assert first.shape == images.shape and first.dtype == np.uint8
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_policies_follow_the_categories():
    assert POLICIES["floor"].rot90 and POLICIES["floor"].vflip and POLICIES["floor"].wrap
    assert not POLICIES["wall"].rot90 and not POLICIES["wall"].vflip
    assert not POLICIES["characters"].rot90 and POLICIES["characters"].hflip
    assert not POLICIES["gui"].hflip and POLICIES["gui"].shift == 0
    assert policy_for("my own monsters") == AugmentPolicy()


def test_geometry_only_gives_flips_and_shifts_of_the_original():
    sprite = distinct_sprites(1, seed=3)[0]
    policy = AugmentPolicy(**GEOMETRY_ONLY)
    rng = np.random.default_rng(0)
    seen_mirror = False
    for _ in range(20):
        out = augment_one(sprite, policy, rng)
        assert (out[..., 3] > 0).sum() == (sprite[..., 3] > 0).sum()  # shifted within its margin: nothing lost
        matches = [
            np.array_equal(np.roll(candidate, (dy, dx), axis=(0, 1)), out)
            for candidate in (sprite, sprite[:, ::-1])
            for dy in range(-2, 3)
            for dx in range(-2, 3)
        ]
        assert any(matches)
        seen_mirror |= any(matches[25:])
    assert seen_mirror


def test_gui_icons_are_never_moved_or_mirrored():
    icon = distinct_sprites(1, seed=4)[0]
    policy = replace(POLICIES["gui"], **GEOMETRY_ONLY)
    rng = np.random.default_rng(1)
    for _ in range(10):
        assert np.array_equal(augment_one(icon, policy, rng), icon)


def test_textures_roll_and_turn_but_keep_every_pixel():
    texture = np.random.default_rng(0).integers(0, 256, (32, 32, 4)).astype(np.uint8)
    texture[..., 3] = 255
    policy = replace(POLICIES["floor"], **GEOMETRY_ONLY)
    out = augment_one(texture, policy, np.random.default_rng(2))
    assert sorted(map(tuple, out.reshape(-1, 4))) == sorted(map(tuple, texture.reshape(-1, 4)))


def test_colour_changes_keep_alpha_clear_hidden_colour_and_add_no_colours():
    sprite = distinct_sprites(1, seed=5)[0]
    policy = AugmentPolicy(hflip=False, shift=0, hue=0.3)
    out = augment_one(sprite, policy, np.random.default_rng(3))
    assert np.array_equal(out[..., 3], sprite[..., 3])
    assert not np.array_equal(out[..., :3], sprite[..., :3])
    assert (out[sprite[..., 3] == 0] == 0).all()
    visible = sprite[..., 3] > 0
    assert len(np.unique(out[visible], axis=0)) <= len(np.unique(sprite[visible], axis=0))  # no noise


def test_preview_grid_and_command(tmp_path):
    dataset = small_dataset(tmp_path / "set")
    grid = augment_preview(dataset.train_images, dataset.train_labels, dataset.categories, seed=0,
                           per_category=2, variants=3, scale=2)
    rows = 2 * len(dataset.categories)
    assert grid.shape[0] == rows * (64 + 4) + 4 and grid.shape[2] == 4 and (grid[..., 3] == 255).all()
    out = tmp_path / "preview.png"
    assert main(["data", "preview-augment", "--data", str(dataset.folder), "--out", str(out)]) == 0
    with Image.open(out) as image:
        assert image.mode == "RGBA" and image.size[0] > image.size[1] // 2
