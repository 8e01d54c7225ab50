"""Plate: a slightly transparent rectangle behind each line, coloured to meet the level's contrast with
that line's text colour."""

from __future__ import annotations

import numpy as np

from ..color import colours_for_contrast, luminance
from .base import Effect, EffectContext, Layers


class Plate(Effect):
    name = "plate"
    stage = "text"
    p_by_level = (0.25, 0.15, 0.08, 0.04, 0.02)
    default_rank = 10

    def sample(self, rng: np.random.Generator, ctx: EffectContext) -> dict | None:
        if not ctx.line_boxes:
            return None
        pad = max(1, round(ctx.min_px * rng.uniform(0.15, 0.4)))
        w, h = ctx.size
        boxes = [[max(0, int(x0) - pad), max(0, int(y0) - pad), min(w, int(np.ceil(x1)) + pad), min(h, int(np.ceil(y1)) + pad)]
                 for x0, y0, x1, y1 in ctx.line_boxes]
        colours = colours_for_contrast(rng, [luminance(c) for c in ctx.line_colours], ctx.contrast_target, 0.3)
        return {"boxes": boxes, "colours": colours, "opacity": round(float(rng.uniform(0.7, 0.95)), 3)}

    def apply(self, layers: Layers, params: dict) -> None:
        a = np.zeros_like(layers.alpha)
        c = np.zeros_like(layers.color)
        for (x0, y0, x1, y1), rgb in zip(params["boxes"], params["colours"], strict=True):
            a[y0:y1, x0:x1] = params["opacity"]
            c[y0:y1, x0:x1] = rgb
        layers.under.append((a, c))
