"""Perspective: a small projective warp (corners moved by up to 3 % of the canvas); boxes follow exactly."""

from __future__ import annotations

import cv2
import numpy as np

from .base import Effect, EffectContext, Layers


def corner_matrix(size: tuple[int, int], offsets: list[list[float]]) -> np.ndarray:
    w, h = size
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    return cv2.getPerspectiveTransform(src, src + np.float32(offsets))


class Perspective(Effect):
    name = "perspective"
    stage = "geometry"
    p_by_level = (0.05, 0.1, 0.15, 0.2, 0.25)
    default_rank = 50
    max_frac = 0.03

    def sample(self, rng: np.random.Generator, ctx: EffectContext) -> dict | None:
        if not len(ctx.quads):
            return None
        reach = self.max_frac * min(ctx.size)
        offs = rng.uniform(-reach, reach, size=(4, 2))
        for _ in range(6):
            o = [[round(float(v), 3) for v in row] for row in offs]
            if ctx.fits(corner_matrix(ctx.size, o)):
                return {"corners": o}
            offs = offs / 2
        return None

    def apply(self, layers: Layers, params: dict) -> None:
        layers.warp(corner_matrix(layers.size, params["corners"]))
