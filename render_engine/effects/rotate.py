"""Rotate: a small rotation of all text about its centre; boxes rotate with it and stay in the canvas."""

from __future__ import annotations

import cv2
import numpy as np

from .base import Effect, EffectContext, Layers


def rotation_matrix(angle: float, cx: float, cy: float) -> np.ndarray:
    m = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
    return np.vstack([m, [0, 0, 1]])


class Rotate(Effect):
    name = "rotate"
    stage = "geometry"
    p_by_level = (0.15, 0.25, 0.3, 0.35, 0.4)
    default_rank = 40
    max_deg = 3.0

    def sample(self, rng: np.random.Generator, ctx: EffectContext) -> dict | None:
        q = np.asarray(ctx.quads).reshape(-1, 2)
        if not len(q):
            return None
        cx, cy = (q.min(0) + q.max(0)) / 2
        angle = float(rng.uniform(-self.max_deg, self.max_deg))
        for _ in range(6):  # shrink until every box stays inside the canvas
            if ctx.fits(rotation_matrix(angle, cx, cy)):
                return {"angle": round(angle, 4), "cx": round(float(cx), 3), "cy": round(float(cy), 3)}
            angle /= 2
        return None

    def apply(self, layers: Layers, params: dict) -> None:
        layers.warp(rotation_matrix(params["angle"], params["cx"], params["cy"]))
