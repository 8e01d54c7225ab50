"""Noise: additive Gaussian noise (its own seed in the params, so re-rendering gives the same grain)."""

from __future__ import annotations

import cv2
import numpy as np

from .base import Effect, EffectContext, Layers


class Noise(Effect):
    name = "noise"
    stage = "image"
    p_by_level = (0.05, 0.1, 0.15, 0.2, 0.25)
    default_rank = 70

    def sample(self, rng: np.random.Generator, ctx: EffectContext) -> dict | None:
        return {"sigma": round(float(rng.uniform(1.5, 2.5 + 1.5 * ctx.level)), 3), "seed": int(rng.integers(2**31))}

    def apply(self, layers: Layers, params: dict) -> None:
        noise = np.empty(layers.image.shape, np.float32)
        cv2.setRNGSeed(params["seed"])  # OpenCV's generator, seeded per call: 4x faster than numpy's here
        cv2.randn(noise, 0.0, params["sigma"])
        layers.image = cv2.max(layers.image + noise, 0.0)  # never below black
