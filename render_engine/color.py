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
_ONES = np.ones((1, 3), np.float32)  # sums the three weighted channels in one pass


def luminance_map(img: np.ndarray) -> np.ndarray:
    """Relative luminance (H, W) in [0, 1] of a uint8 or float (0..255) RGB image."""
    a = img if img.dtype == np.uint8 else np.clip(np.rint(img), 0, 255).astype(np.uint8)
    if a.shape[0] == 0 or a.shape[1] == 0:
        return np.zeros(a.shape[:2], np.float32)
    return cv2.transform(cv2.LUT(np.ascontiguousarray(a), LUMA_LUT), _ONES).reshape(a.shape[:2])


def luminance(rgb: tuple[int, int, int] | np.ndarray) -> float:
    r, g, b = (int(v) for v in rgb)
    return float(LINEAR[r] * WEIGHTS[0] + LINEAR[g] * WEIGHTS[1] + LINEAR[b] * WEIGHTS[2])


def contrast_ratio(l1: float, l2: float) -> float:
    hi, lo = max(l1, l2), min(l1, l2)
    return (hi + 0.05) / (lo + 0.05)


def colours_for_contrast(rng: np.random.Generator, bg_lums, target: float, saturation: float = 0.5
                         ) -> list[list[int]]:
    """One RGB colour per background luminance in `bg_lums`, each with a contrast as close to `target` as
    possible: darker or lighter than its background (whichever can reach the target; random if both can),
    with a random hue mixed in at up to `saturation` while keeping the luminance."""
    lum = np.asarray(bg_lums, np.float64).reshape(-1)
    n = len(lum)
    dark = (lum + 0.05) / target - 0.05
    light = target * (lum + 0.05) - 0.05
    can_dark, can_light = (dark >= 0) & (dark <= 1), (light >= 0) & (light <= 1)
    # unreachable: the extreme that gives the most contrast
    extreme = np.where((lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05), 0.0, 1.0)
    want = np.where(can_dark & can_light, np.where(rng.random(n) < 0.5, dark, light),
                    np.where(can_dark, dark, np.where(can_light, light, extreme)))[:, None]
    hue = rng.random((n, 3))
    unit = np.maximum(hue @ WEIGHTS, 1e-6)[:, None]  # the hue scaled to unit luminance
    sat = rng.uniform(0, saturation, n)[:, None]
    lin = (1 - sat) * want + sat * np.minimum(1.0, hue / unit * want)
    for _ in range(4):  # restore the luminance exactly after clipping
        off = want[:, 0] - lin @ WEIGHTS
        todo = np.abs(off) >= 1e-4
        if not todo.any():
            break
        lin[todo] = np.clip(lin[todo] + off[todo, None], 0.0, 1.0)
    else:  # a hue that cannot keep the luminance (near black or white): grey
        todo = np.abs(want[:, 0] - lin @ WEIGHTS) >= 1e-4
        lin[todo] = np.clip(want[todo], 0.0, 1.0)
    srgb = np.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin ** (1 / 2.4) - 0.055)
    return np.clip(np.rint(srgb * 255), 0, 255).astype(np.int64).tolist()
