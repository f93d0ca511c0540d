"""``studio data sprites`` (build a sprite data set) and ``studio data preview-augment``."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from studio.core.errors import BadInputError


def _print_summary(dataset) -> None:
    manifest = dataset.manifest
    print(f"wrote {dataset.folder}")
    print(f"{'category':<14}{'train':>7}{'val':>7}")
    for name in dataset.categories:
        print(f"{name:<14}{manifest['counts']['train'][name]:>7}{manifest['counts']['val'][name]:>7}")
    print(f"{'total':<14}{len(dataset.train_labels):>7}{len(dataset.val_labels):>7}")
    rejected = sum(int(item.get("count", 1)) for item in manifest["rejected"])
    if rejected:
        print(f"{rejected} cells or files left out (reasons in manifest.json)")


def _import_command(args: argparse.Namespace) -> str:
    parts = ["studio", "data", "sprites"]
    if args.from_sheet:
        parts += ["--from-sheet", str(args.from_sheet), "--grid", str(args.grid)]
        parts += ["--category", args.category] if args.category else []
    else:
        parts += ["--from-folder", str(args.from_folder)]
    parts += ["--colour-key", args.colour_key, "--val-fraction", str(args.val_fraction), "--seed", str(args.seed)]
    return " ".join(shlex.quote(p) for p in parts)


def run_sprites(args: argparse.Namespace) -> int:
    from studio.ml.data.sprites import build_crawl_dataset, default_dataset_dir

    if args.from_folder or args.from_sheet:
        from studio.ml.data.sprite_import import import_folder, import_sheet, write_import

        if args.from_folder and args.from_sheet:
            raise BadInputError("use either --from-folder or --from-sheet, not both")
        if args.from_sheet:
            result = import_sheet(args.from_sheet, args.grid, args.category, args.colour_key)
            source = args.from_sheet
        else:
            result = import_folder(args.from_folder, args.colour_key)
            source = args.from_folder
        out = args.out or default_dataset_dir(Path(source).stem)
        dataset = write_import(result, out, source=source, command=_import_command(args),
                               seed=args.seed, val_fraction=args.val_fraction, grid=args.grid)
    else:
        dataset = build_crawl_dataset(args.out, args.seed, args.val_fraction, args.crawl_dir)
    _print_summary(dataset)
    return 0


def run_preview(args: argparse.Namespace) -> int:
    from studio.core.formats.png_meta import save_png
    from studio.ml.data.augment import augment_preview
    from studio.ml.data.sprites import load_sprite_dataset

    dataset = load_sprite_dataset(args.data)
    grid = augment_preview(dataset.train_images, dataset.train_labels, dataset.categories, args.seed,
                           args.per_category, args.variants)
    recipe = {"kind": "data.preview-augment", "seed": args.seed, "params": {"data": str(args.data)}}
    save_png(args.out, grid, recipe)
    print(f"wrote {args.out}: per category, the original then {args.variants} augmented copies")
    return 0


def add_commands(groups: dict[str, argparse._SubParsersAction]) -> None:
    parser = groups["data"].add_parser(
        "sprites",
        help="build a 32x32 sprite data set (default: Dungeon Crawl's CC0 tiles from Debian)",
        description="Build a sprite data set: train.npz, val.npz and manifest.json. Without --from-folder or "
        "--from-sheet the Dungeon Crawl tiles, with their names as tags, are fetched with apt-get source from "
        "Debian's package archive (once, then cached).",
    )
    parser.add_argument("--out", type=Path, help="output folder (default: the data folder's datasets/)")
    source = parser.add_argument_group("your own sprites instead of the crawl tiles")
    source.add_argument("--from-folder", type=Path, metavar="DIR", help="a folder of PNGs, one sprite each; "
                        "sub-folder names become categories")
    source.add_argument("--from-sheet", type=Path, metavar="PNG", help="one sprite sheet sliced on --grid")
    source.add_argument("--grid", type=int, default=32, help="cell size of the sheet in pixels (default 32)")
    source.add_argument("--category", help="category name for a sheet (default: the file name)")
    source.add_argument("--colour-key", default="auto", metavar="auto|none|RRGGBB",
                        help="background colour made transparent in images without alpha (default auto: "
                        "magenta, else the corner colour)")
    parser.add_argument("--crawl-dir", type=Path, metavar="DIR",
                        help="a folder holding the crawl source tarball (crawl_*.orig.tar.xz, sha256-checked) and "
                        "optionally Debian's copyright file, used instead of apt")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="share held out for validation")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run_sprites)

    parser = groups["data"].add_parser("preview-augment", help="write a PNG showing the sprite augmentations")
    parser.add_argument("--data", type=Path, required=True, help="a sprite data-set folder")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-category", type=int, default=2, help="rows per category")
    parser.add_argument("--variants", type=int, default=7, help="augmented copies per row")
    parser.set_defaults(func=run_preview)
