"""Noise: additive Gaussian noise (its own seed in the params, so re-rendering gives the same grain)."""

from __future__ import annotations

import numpy as np

from .base import Effect, EffectContext, Layers


class Noise(Effect):
    name = "noise"
    stage = "image"
    p_by_level = (0.05, 0.1, 0.15, 0.2, 0.25)

    def sample(self, rng: np.random.Generator, ctx: EffectContext) -> dict | None:
        return {"sigma": round(float(rng.uniform(1.5, 2.5 + 1.5 * ctx.level)), 3), "seed": int(rng.integers(2**31))}

    def apply(self, layers: Layers, params: dict) -> None:
        g = np.random.default_rng(params["seed"])
        layers.image = layers.image + g.standard_normal(layers.image.shape, dtype=np.float32) * params["sigma"]
