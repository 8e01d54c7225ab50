"""Images for the evaluation and the benchmark builder: loading as the protocol reads them, float/uint8
conversion, resizing a reconstruction to its original's size, and the caption font of result pictures.
Finding and decoding image files is `textinfuse.images` (one list of extensions, reasons as codes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from textinfuse.images import load_rgb

PROTOCOL_MAX_PIXELS = 178_956_970  # PIL's default bomb limit: what the reference, reading with PIL, accepts


def load_protocol_rgb(path: Path) -> np.ndarray:
    """An original, a reconstruction or a page image as OmniDoc-TokenBench reads it: PIL's own
    `convert("RGB")` (no EXIF rotation, alpha dropped), refused over PROTOCOL_MAX_PIXELS before decoding;
    `textinfuse.images.ImageError` with its reason when it cannot be read or decoded."""
    return load_rgb(path, PROTOCOL_MAX_PIXELS, plain=True)


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
