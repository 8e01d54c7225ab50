"""Validity: size, aspect ratio and what the file was (decoding problems are rejected before scoring)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Filter, Rule


class Validity(Filter):
    name = "validity"
    order = 0
    rules = (Rule("short_side", "min_side", "min", "too_small"),
             Rule("aspect", "max_aspect", "max", "extreme_aspect"))

    def score(self, image: np.ndarray, info: dict[str, Any], cfg: Any) -> dict[str, float]:
        h, w = image.shape[:2]
        return {"width": w, "height": h, "short_side": min(w, h), "megapixels": round(w * h / 1e6, 4),
                "aspect": round(max(w, h) / min(w, h), 4), "frames": info.get("frames", 1), "bits": info.get("bits", 8)}
