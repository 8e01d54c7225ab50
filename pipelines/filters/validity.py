"""Validity: size, aspect ratio and what the file was (decoding problems are rejected before scoring)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import Filter, Rule


@dataclass(frozen=True)
class ValidityConfig:
    min_side: int = 128  # px, shorter side
    max_aspect: float = 4.0  # long side / short side
    max_pixels: int = 64_000_000  # larger images are refused unread (decompression bombs); PIL caps it at 178,956,970


class Validity(Filter):
    name = "validity"
    order = 0
    config = ValidityConfig
    rules = (Rule("short_side", "min_side", "min", "too_small"),
             Rule("aspect", "max_aspect", "max", "extreme_aspect"))

    def score(self, image: np.ndarray, info: dict[str, Any], cfg: Any) -> dict[str, float]:
        h, w = image.shape[:2]
        return {"width": w, "height": h, "short_side": min(w, h), "megapixels": round(w * h / 1e6, 4),
                "aspect": round(max(w, h) / min(w, h), 4), "frames": info.get("frames", 1), "bits": info.get("bits", 8)}
