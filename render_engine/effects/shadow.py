"""Shadow: the glyphs offset by 1-2 px, softened, beneath the text (dark under light text, light under dark)."""

from __future__ import annotations

import cv2
import numpy as np

from .base import Effect, EffectContext, Layers, opposite_layer


class Shadow(Effect):
    name = "shadow"
    stage = "text"
    p_by_level = (0.05, 0.08, 0.1, 0.12, 0.12)
    default_rank = 30

    def sample(self, rng: np.random.Generator, ctx: EffectContext) -> dict | None:
        reach = 1 if ctx.min_px < 12 else 2
        dx, dy = (int(v) for v in rng.integers(-reach, reach + 1, size=2))
        if dx == 0 and dy == 0:
            dy = 1
        return {"dx": dx, "dy": dy, "sigma": round(float(rng.uniform(0.0, 1.0)), 3),
                "opacity": round(float(rng.uniform(0.4, 0.8)), 3)}

    def apply(self, layers: Layers, params: dict) -> None:
        w, h = layers.size
        m = np.float32([[1, 0, params["dx"]], [0, 1, params["dy"]]])
        a = cv2.warpAffine(layers.alpha, m, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
        if params["sigma"] > 0.05:
            a = cv2.GaussianBlur(a, (0, 0), params["sigma"])
        c = cv2.warpAffine(opposite_layer(layers.color), m, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
        layers.under.append((a * params["opacity"], c))
