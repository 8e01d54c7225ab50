"""Luminance, WCAG contrast ratio, and text colours chosen to meet a contrast target.

Contrast is the WCAG 2 ratio (L1 + 0.05) / (L2 + 0.05) of relative luminances, from 1 (none) to 21.
"""

from __future__ import annotations

import cv2
import numpy as np

_lin = np.arange(256, dtype=np.float64) / 255.0
LINEAR = np.where(_lin <= 0.04045, _lin / 12.92, ((_lin + 0.055) / 1.055) ** 2.4)  # sRGB byte -> linear
WEIGHTS = np.array([0.2126, 0.7152, 0.0722])
LUMA_LUT = (LINEAR[:, None] * WEIGHTS[None, :]).astype(np.float32).reshape(256, 1, 3)  # per channel


def luminance_map(img: np.ndarray) -> np.ndarray:
    """Relative luminance (H, W) in [0, 1] of a uint8 or float (0..255) RGB image."""
    a = img if img.dtype == np.uint8 else np.clip(np.rint(img), 0, 255).astype(np.uint8)
    if a.shape[0] == 0 or a.shape[1] == 0:
        return np.zeros(a.shape[:2], np.float32)
    parts = cv2.LUT(np.ascontiguousarray(a), LUMA_LUT)
    return parts[..., 0] + parts[..., 1] + parts[..., 2]


def luminance(rgb: tuple[int, int, int] | np.ndarray) -> float:
    r, g, b = (int(v) for v in rgb)
    return float(LINEAR[r] * WEIGHTS[0] + LINEAR[g] * WEIGHTS[1] + LINEAR[b] * WEIGHTS[2])


def contrast_ratio(l1: float, l2: float) -> float:
    hi, lo = max(l1, l2), min(l1, l2)
    return (hi + 0.05) / (lo + 0.05)


def _to_srgb(v: float) -> int:
    v = min(max(v, 0.0), 1.0)
    s = v * 12.92 if v <= 0.0031308 else 1.055 * v ** (1 / 2.4) - 0.055
    return min(255, max(0, round(s * 255)))


_W = tuple(float(w) for w in WEIGHTS)


def colour_for_contrast(rng: np.random.Generator, bg_lum: float, target: float,
                        saturation: float = 0.5) -> tuple[int, int, int]:
    """An RGB colour whose contrast with luminance `bg_lum` is as close to `target` as possible.

    Goes darker or lighter than the background (whichever can reach the target; random if both can),
    with a random hue mixed in at up to `saturation` while keeping the luminance.
    """
    dark = (bg_lum + 0.05) / target - 0.05
    light = target * (bg_lum + 0.05) - 0.05
    options = [v for v in (dark, light) if 0.0 <= v <= 1.0]
    if options:
        want = options[int(rng.integers(len(options)))]
    else:  # unreachable: take the extreme that gives the most contrast
        want = 0.0 if contrast_ratio(bg_lum, 0.0) >= contrast_ratio(bg_lum, 1.0) else 1.0
    h = rng.random(3).tolist()
    unit = max(h[0] * _W[0] + h[1] * _W[1] + h[2] * _W[2], 1e-6)  # scale the hue to unit luminance
    sat = float(rng.uniform(0, saturation))
    lin = [(1 - sat) * want + sat * min(1.0, c / unit * want) for c in h]
    for _ in range(4):  # restore the luminance exactly after clipping
        cur = lin[0] * _W[0] + lin[1] * _W[1] + lin[2] * _W[2]
        if abs(cur - want) < 1e-4:
            break
        lin = [min(1.0, max(0.0, c + want - cur)) for c in lin]
    return _to_srgb(lin[0]), _to_srgb(lin[1]), _to_srgb(lin[2])
