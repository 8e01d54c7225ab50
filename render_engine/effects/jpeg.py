"""JPEG: a round trip through JPEG at a sampled quality (blocking and ringing like web images)."""

from __future__ import annotations

import cv2
import numpy as np

from .base import Effect, EffectContext, Layers


class Jpeg(Effect):
    name = "jpeg"
    stage = "image"
    p_by_level = (0.05, 0.1, 0.15, 0.2, 0.25)
    default_rank = 80

    def sample(self, rng: np.random.Generator, ctx: EffectContext) -> dict | None:
        lo = 70 if ctx.level <= 2 else 45
        return {"quality": int(rng.integers(lo, 96))}

    def apply(self, layers: Layers, params: dict) -> None:
        img = np.clip(layers.image, 0, 255).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, params["quality"]])
        layers.image = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32)
