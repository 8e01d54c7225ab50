"""Natural-image backgrounds: from folders, globs, files or WebDataset tars; decoded once, cropped often.

Finding and decoding the images is `textinfuse.images` (`find_images`, `decode_image`, as a photo). A bad
image (unreadable, truncated, too small, a decompression bomb) is reported once with a one-line warning
naming it, remembered as bad with its reason code, and another is drawn; the job goes on. Odd modes
(CMYK, 16-bit, palette, alpha, animated) are converted to 8-bit RGB.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass

import cv2
import numpy as np

from textinfuse.images import MAX_PIXELS, ImageError, ImageRef, decode_image

log = logging.getLogger(__name__)


class NoBackground(ValueError):
    """No image of the set can be used (every one drawn was bad)."""


@dataclass(frozen=True)
class Crop:
    """A crop of a source image: box (x, y, w, h) in source pixels, horizontal flip."""

    x: int
    y: int
    w: int
    h: int
    flip: bool


def sample_crop(rng: np.random.Generator, src_hw: tuple[int, int], out_wh: tuple[int, int],
                scale_range: tuple[float, float]) -> Crop:
    """Random scale (source px per output px), position and flip."""
    H, W = src_hw
    ow, oh = out_wh
    smax = min(W / ow, H / oh)
    lo, hi = scale_range
    s = smax if smax < lo else float(np.exp(rng.uniform(np.log(lo), np.log(min(hi, smax)))))
    cw, ch = max(1, min(W, round(ow * s))), max(1, min(H, round(oh * s)))
    x = int(rng.integers(W - cw + 1))
    y = int(rng.integers(H - ch + 1))
    return Crop(x, y, cw, ch, bool(rng.random() < 0.5))


def box_sum(integral: np.ndarray, x0, y0, x1, y1):
    """Sum of the image over [y0, y1) x [x0, x1) from its integral image (`cv2.integral`); the corners
    may be arrays, giving one sum per box."""
    return integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]


def apply_crop(img: np.ndarray, crop: Crop, out_wh: tuple[int, int]) -> np.ndarray:
    a = img[crop.y : crop.y + crop.h, crop.x : crop.x + crop.w]
    ow, oh = out_wh
    if crop.w < ow:
        a = cv2.resize(a, out_wh, interpolation=cv2.INTER_LINEAR)
    else:
        if ow < crop.w < 2 * ow and oh < crop.h < 2 * oh:
            # OpenCV's area filter is ~5x slower at fractional factors than at whole ones: reach 2x the
            # output size bilinearly, then halve exactly (within ~0.2 grey levels of the direct result)
            a = cv2.resize(a, (2 * ow, 2 * oh), interpolation=cv2.INTER_LINEAR)
        a = cv2.resize(a, out_wh, interpolation=cv2.INTER_AREA)
    return cv2.flip(a, 1) if crop.flip else a


class BackgroundSet:
    """Indexed background images with a per-process decode cache (LRU by bytes)."""

    def __init__(self, refs: list[ImageRef], max_pixels: int = MAX_PIXELS, min_side: int = 16,
                 cache_bytes: int = 256 << 20):
        if not refs:
            raise ValueError("no background images found")
        self.refs = refs
        self.max_pixels = max_pixels
        self.min_side = min_side
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._cached = 0
        self.bad: dict[int, ImageError] = {}

    def __len__(self) -> int:
        return len(self.refs)

    def image(self, i: int) -> np.ndarray:
        """Decoded RGB image i (raises ImageError, also on later calls, if it cannot be used)."""
        return self._load(i)[0]

    def busyness(self, i: int, crop: Crop, out_w: int) -> float:
        """Mean luminance-gradient magnitude of a crop, per output pixel, from a cached integral image."""
        x, y, w, h = crop.x, crop.y, crop.w, crop.h
        return float(box_sum(self._load(i)[1], x, y, x + w, y + h) / (w * h) * (w / out_w))

    def _load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if i in self.bad:  # a new error each time: re-raising one object would grow its traceback
            raise ImageError(self.bad[i].reason, str(self.bad[i]))
        hit = self._cache.get(i)
        if hit is not None:
            self._cache.move_to_end(i)
            return hit
        ref = self.refs[i]
        try:
            img = decode_image(ref.read(), self.max_pixels, self.min_side)
        except ImageError as e:
            self.bad[i] = e
            log.warning("%s: background skipped (%s)", ref.where, e)
            raise
        grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        grad = np.abs(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)) + np.abs(cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3))
        hit = (img, cv2.integral(grad / 8, sdepth=cv2.CV_32F))  # float32 halves the memory; ample precision
        self._cache[i] = hit
        self._cached += img.nbytes + hit[1].nbytes
        while self._cached > self.cache_bytes and len(self._cache) > 1:
            _, (a, b) = self._cache.popitem(last=False)
            self._cached -= a.nbytes + b.nbytes
        return hit

    def pick(self, rng: np.random.Generator, pool: list[int]) -> tuple[int, np.ndarray]:
        """Draw a usable image from `pool` (then from everything); NoBackground if none is usable."""
        for candidates in (pool, range(len(self.refs))):
            cand = [i for i in candidates if i not in self.bad]
            while cand:
                i = cand[int(rng.integers(len(cand)))]
                try:
                    return i, self.image(i)
                except ImageError:
                    cand.remove(i)
        raise NoBackground("no usable background image")
