"""Images for the evaluation and the benchmark builder: listing, safe loading, float/uint8 conversion,
resizing a reconstruction to its original's size, and the caption font of result pictures."""

from __future__ import annotations

from pathlib import Path

import numpy as np

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
MAX_PIXELS = 178_956_970  # PIL's own default bomb limit, held here so no other setting changes it


def list_images(d: Path) -> list[Path]:
    """The image files of folder `d` (by extension, hidden files left out), sorted by name."""
    return sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_EXTS and not p.name.startswith("."))


def load_rgb(path: Path) -> np.ndarray:
    """An image file as uint8 RGB. Only regular files of at most 1 GiB are read (a FIFO named like an image
    would block), and images over MAX_PIXELS are refused before they are decoded."""
    import io

    from PIL import Image

    from render_engine.files import read_regular

    with Image.open(io.BytesIO(read_regular(path))) as im:
        if im.width * im.height > MAX_PIXELS:
            raise ValueError(f"{im.width}x{im.height}: over the {MAX_PIXELS}-pixel limit (decompression bomb?)")
        return np.asarray(im.convert("RGB"))


def to_uint8(x: np.ndarray) -> np.ndarray:
    """A float image (or batch) in [0, 1], the reconstruction hook's range, as uint8 (rounded, clipped)."""
    return np.clip(np.asarray(x, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def match_size(rec: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """`rec` resized to `gt`'s size with PIL bicubic when the sizes differ (the reference's rule), else
    `rec` itself."""
    if rec.shape[:2] == gt.shape[:2]:
        return rec
    from PIL import Image

    return np.asarray(Image.fromarray(rec).resize((gt.shape[1], gt.shape[0]), Image.Resampling.BICUBIC))


def caption_font(size: int):
    """The bundled Chinese sans (it also covers Latin) for captions of result pictures; PIL's default if absent."""
    from PIL import ImageFont

    from render_engine.paths import bundled_fonts

    try:
        return ImageFont.truetype(str(bundled_fonts() / "zh" / "NotoSansSC-Regular.otf"), size)
    except OSError:
        return ImageFont.load_default()
