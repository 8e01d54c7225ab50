"""Blur: a slight Gaussian blur of the whole composite (sigma scaled down for tiny characters)."""

from __future__ import annotations

import cv2
import numpy as np

from .base import Effect, EffectContext, Layers


class Blur(Effect):
    name = "blur"
    stage = "image"
    p_by_level = (0.05, 0.1, 0.15, 0.2, 0.25)
    default_rank = 60

    def sample(self, rng: np.random.Generator, ctx: EffectContext) -> dict | None:
        hi = 0.5 if ctx.min_px < 8 else 0.9
        return {"sigma": round(float(rng.uniform(0.3, hi)), 3)}

    def apply(self, layers: Layers, params: dict) -> None:
        layers.image = cv2.GaussianBlur(layers.image, (0, 0), params["sigma"])
