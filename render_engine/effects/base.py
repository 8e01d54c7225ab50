"""The effect protocol: `sample(rng, ctx) -> params` (all randomness) then `apply(layers, params)`.

Effects act on `Layers`, so one transform moves the text, its under-layers and every box alike.
Stages run in order: "text" (layers beneath the text: plate, stroke, shadow), "geometry" (warps of
the text layers and boxes; the background is not warped), then "image" (after composition). Params are
plain JSON values and go into the label, so `apply` alone re-creates the sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import cv2
import numpy as np

from ..labels import warp_points

STAGES = ("text", "geometry", "image")


@dataclass
class Layers:
    """Everything an effect may touch. Arrays are float32; colours 0..255, alphas 0..1. Effects keep
    them in range (the final image is rounded and saturated, not clipped at 0)."""

    background: np.ndarray  # (H, W, 3)
    alpha: np.ndarray  # (H, W) text coverage
    color: np.ndarray  # (H, W, 3) text colour
    quads: np.ndarray  # (N, 4, 2) every label box, clockwise from top-left, (x, y)
    warps: list[np.ndarray] = field(default_factory=list)  # the 3x3 matrices `warp` applied, in order
    under: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (alpha, colour), bottom first
    image: np.ndarray | None = None  # the composite, after the geometry stage
    base: np.ndarray | None = None  # the composite without the text (background + under-layers)

    @property
    def size(self) -> tuple[int, int]:
        return self.alpha.shape[1], self.alpha.shape[0]

    def composite(self) -> None:
        out = self.background
        for a, c in self.under:
            out = cv2.blendLinear(c, out, a, 1.0 - a)
        self.base = out
        self.image = cv2.blendLinear(self.color, out, self.alpha, 1.0 - self.alpha)

    def warp(self, matrix: np.ndarray) -> None:
        """Apply a 3x3 projective transform to the text layers and the boxes (not the background). The
        boxes move with `labels.warp_points`, the function label readers use, and the matrix is kept (the
        label records it), so a reader maps the text-plane boxes to exactly these quads."""
        w, h = self.size
        warp = lambda a, border: cv2.warpPerspective(  # noqa: E731
            a, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=border)
        self.alpha = warp(self.alpha, cv2.BORDER_CONSTANT)
        self.color = warp(self.color, cv2.BORDER_REPLICATE)
        self.under = [(warp(a, cv2.BORDER_CONSTANT), warp(c, cv2.BORDER_REPLICATE)) for a, c in self.under]
        self.warps.append(np.asarray(matrix, np.float64))
        if len(self.quads):
            self.quads = warp_points(self.quads, self.warps[-1])


@dataclass(frozen=True)
class EffectContext:
    """What `sample` may look at: canvas size, level 1-5, smallest char px, the contrast target, per
    line its box (x0, y0, x1, y1) and text colour, and the area (x0, y0, x1, y1) geometry must keep the
    text in: the sheet of paper it is printed on, else None (the canvas)."""

    size: tuple[int, int]
    level: int
    min_px: int
    contrast_target: float
    line_boxes: tuple[tuple[float, float, float, float], ...]
    line_colours: tuple[tuple[int, int, int], ...]
    quads: Any  # (N, 4, 2) array of all boxes, for geometric bounds checks
    area: tuple[float, float, float, float] | None = None

    def fits(self, matrix: np.ndarray) -> bool:
        """True when every box, transformed by `matrix`, stays inside the canvas and the area."""
        return fits(np.asarray(self.quads), matrix, self.size, area=self.area)


class Effect:
    """Subclass, set `name`, `stage`, `p_by_level` (chance of use at levels 1..5), write sample/apply.

    `enabled_by_default`: listed in the default `effects.enabled` (a new effect is active without a
    config edit; set False for one users must ask for). `default_rank`: its place in that list, which
    only names the effects (they apply by stage, then name); the built-ins' ranks keep the list, and so
    the default configs' hashes, as they were before the list was built from the registry."""

    name: ClassVar[str]
    stage: ClassVar[str]
    p_by_level: ClassVar[tuple[float, float, float, float, float]]
    enabled_by_default: ClassVar[bool] = True
    default_rank: ClassVar[int] = 100

    def probability(self, level: int) -> float:
        return self.p_by_level[min(max(level, 1), 5) - 1]

    def sample(self, rng: np.random.Generator, ctx: EffectContext) -> dict[str, Any] | None:
        """Parameters for one application, or None when the effect does not fit this sample."""
        raise NotImplementedError

    def apply(self, layers: Layers, params: dict[str, Any]) -> None:
        raise NotImplementedError


def fits(quads: np.ndarray, matrix: np.ndarray, size: tuple[int, int], margin: float = 0.5,
         area: tuple[float, float, float, float] | None = None) -> bool:
    """True when every box, transformed by `matrix`, stays inside the canvas (and inside `area`, x0, y0,
    x1, y1, when given)."""
    if not len(quads):
        return True
    pts = cv2.perspectiveTransform(quads.reshape(-1, 1, 2).astype(np.float64), matrix).reshape(-1, 2)
    w, h = size
    x0, y0, x1, y1 = (0, 0, w, h) if area is None else (max(0, area[0]), max(0, area[1]), min(w, area[2]),
                                                         min(h, area[3]))
    return bool(pts[:, 0].min() >= x0 + margin and pts[:, 1].min() >= y0 + margin
                and pts[:, 0].max() <= x1 - margin and pts[:, 1].max() <= y1 - margin)


def opposite_layer(color: np.ndarray) -> np.ndarray:
    """Per pixel: near-black under light text, near-white under dark text (for outlines and shadows)."""
    luma = color[..., 0] * 0.2126 + color[..., 1] * 0.7152 + color[..., 2] * 0.0722
    out = np.where((luma > 110)[..., None], np.float32(20), np.float32(240))
    return np.repeat(out, 3, axis=2).astype(np.float32) if out.shape[-1] == 1 else out.astype(np.float32)
