"""The reference rows of an evaluation table: `identity` (the ceiling) and `bicubicF` (PIL bicubic down by
F, then back up to the original size: what a plain f-times resize keeps). Each is a 'model' with the
reconstruction hook's contract: a float32 batch (N, H, W, 3) in [0, 1] to the same shape and range."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .images import to_uint8

REFERENCES = ("identity", "bicubic8", "bicubic16", "bicubic32")


def bicubic_down_up(img: np.ndarray, factor: int) -> np.ndarray:
    """uint8 RGB image down-sampled by `factor` (PIL bicubic, antialiased) and back up to its size."""
    from PIL import Image

    h, w = img.shape[:2]
    small = Image.fromarray(img).resize((max(1, round(w / factor)), max(1, round(h / factor))), Image.BICUBIC)
    return np.asarray(small.resize((w, h), Image.BICUBIC))


def reference_fn(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """A reference 'model' with the hook's contract: identity or bicubic down-then-up by 8, 16 or 32."""
    if name == "identity":
        return lambda batch: batch
    if name not in REFERENCES:
        raise ValueError(f"unknown reference {name!r}; choose from {', '.join(REFERENCES)}")
    f = int(name.removeprefix("bicubic"))
    return lambda batch: np.stack([bicubic_down_up(to_uint8(x), f) for x in batch]).astype(np.float32) / 255.0
