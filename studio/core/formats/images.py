"""Loading user images safely: RGBA out, corrupt files and decompression bombs refused with a clear message."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from studio.core.errors import BadInputError

MAX_PIXELS = 16_384 * 16_384  # a 20000x20000 image is refused before it is decoded
MAX_FILE_BYTES = 512 << 20


def _open_checked(path: Path) -> Image.Image:
    path = Path(path)
    if not path.exists():
        raise BadInputError(f"{path.name}: no such file")
    if path.stat().st_size == 0:
        raise BadInputError(f"{path.name} is empty")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise BadInputError(f"{path.name} is larger than {MAX_FILE_BYTES >> 20} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise BadInputError(
                    f"{path.name} is {width}x{height} pixels: too large to open safely "
                    f"(limit {MAX_PIXELS // 1_000_000} megapixels)"
                )
            image.load()
    except BadInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadInputError(f"{path.name} is too large to open safely (decompression-bomb guard)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadInputError(f"{path.name} is not a readable image ({exc.__class__.__name__})") from None
    return image


def load_rgba(path: Path) -> np.ndarray:
    """Any image (paletted, greyscale, RGB, with tRNS) as an HxWx4 uint8 array."""
    image = _open_checked(path)
    return np.asarray(image.convert("RGBA"), dtype=np.uint8).copy()


def open_image(path: Path) -> Image.Image:
    """The checked PIL image, metadata intact (for reading PNG text chunks)."""
    return _open_checked(path)
