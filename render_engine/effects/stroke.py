"""Stroke: an outline around the glyphs, dark under light text and light under dark text (>= 9 px only)."""

from __future__ import annotations

import cv2
import numpy as np

from .base import Effect, EffectContext, Layers, opposite_layer


class Stroke(Effect):
    name = "stroke"
    stage = "text"
    p_by_level = (0.05, 0.08, 0.1, 0.1, 0.08)
    default_rank = 20

    def sample(self, rng: np.random.Generator, ctx: EffectContext) -> dict | None:
        if ctx.min_px < 9:
            return None
        return {"width": int(rng.integers(1, 3 if ctx.min_px >= 14 else 2))}

    def apply(self, layers: Layers, params: dict) -> None:
        k = 2 * params["width"] + 1
        a = cv2.dilate(layers.alpha, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
        c = cv2.dilate(opposite_layer(layers.color), np.ones((k, k), np.uint8))
        layers.under.append((a, c))
