"""Validity: size, aspect ratio and what the file was (decoding problems are rejected before scoring)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Filter


class Validity(Filter):
    name = "validity"
    order = 0

    def score(self, image: np.ndarray, info: dict[str, Any], cfg: Any) -> dict[str, float]:
        h, w = image.shape[:2]
        return {"width": w, "height": h, "megapixels": round(w * h / 1e6, 4), "aspect": round(max(w, h) / min(w, h), 4),
                "frames": info.get("frames", 1), "bits": info.get("bits", 8)}

    def keep(self, s: dict[str, float], cfg: Any) -> str | None:
        if min(s["width"], s["height"]) < cfg.min_side:
            return "too_small"
        if s["aspect"] > cfg.max_aspect:
            return "extreme_aspect"
        return None
