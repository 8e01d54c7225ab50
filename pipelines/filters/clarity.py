"""Clarity: blur, upscaling and heavy JPEG artefacts.

- `laplacian_var`: variance of the 4-neighbour Laplacian of the grey image, after downscaling (never
  upscaling) so the long side is `norm_side` px: sharp detail scores high, blur low.
- `hf_energy`: share of spectral energy (0.01-0.75 cycles/px) above 0.25 cycles/px at that same scale;
  a second, texture-independent view of blur.
- `upscale_ratio`: at native resolution (a centre crop), spectral energy at 0.35-0.75 cycles/px (radial;
  above 0.5 only along diagonals) over 0.15-0.35: an image enlarged from a smaller one has almost nothing near Nyquist.
- `peak_sharpness`: in the sharpest 32-px tile at the normalised scale, the energy of the finest detail
  (image minus a sigma-1 blur) over that of the next octave (sigma 1 minus sigma 2). It is a ratio, so
  it does not depend on contrast, and a maximum over tiles, so a photo with a sharp subject on a
  defocused background counts as sharp. Sharp photos score ~1-7, text 4-15; a 1.5-px blur or a 3x
  down-and-up resample leaves < 0.8 everywhere. Tiles with almost no structure are skipped.
- `blockiness`: mean luminance step across the 8-px JPEG grid over the mean step elsewhere (~1 for
  clean images, >1.3 for heavy JPEG). Strong on photos, weak on text on a flat page, where JPEG's
  damage is inside the blocks, hence:
- `ringing`: around strong edges (2-4 px away), the mean |Laplacian| (grey levels) in 8x8 blocks that
  contain the edge minus that in blocks that do not. JPEG quantises each block on its own, so its
  ringing stops at the block border while a clean edge's halo does not care where the grid is. Text
  on a flat page: 0 clean, ~3 at JPEG quality 95, ~8 at 85, ~11 at 75, 14-16 at 50-10 (medians);
  clean photos 0-4 (their texture is on both sides).

`upscale_ratio`, `blockiness` and `ringing` look at native pixels: a 512-px crop at the centre,
aligned to the 8-px JPEG grid of the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from .base import Filter, Rule

BANDS = ((0.01, 0.15), (0.15, 0.25), (0.25, 0.35), (0.35, 0.75))  # cycles/px; the measures use sums of these
_GEOM: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def _geometry(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Hann window, and one 0/1 row per band over OpenCV's packed real DFT of an h x w image (flattened).

    In the packed layout, columns 2k-1 and 2k hold the real and imaginary parts of horizontal frequency
    k = 1 .. w/2-1 for every vertical frequency; the edge columns (horizontal frequency 0 and w/2, packed
    differently) are left out of every band, which the band ratios tolerate."""
    g = _GEOM.get((h, w))
    if g is None:
        win = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
        fy = np.abs(np.fft.fftfreq(h))[:, None]
        fx = np.full(w, np.inf)  # edge columns: in no band
        fx[1 : w - 1] = np.repeat(np.arange(1, w // 2) / w, 2)  # both slots of each interior column
        r = np.sqrt(fy**2 + fx[None, :] ** 2)
        masks = np.stack([((r >= lo) & (r < hi)).ravel() for lo, hi in BANDS]).astype(np.float32)
        g = _GEOM[(h, w)] = (win, masks)
    return g


def band_power(g: np.ndarray) -> np.ndarray:
    """Power of the Hann-windowed grey float image `g` in each of BANDS (the mean is not removed: the
    window keeps DC below the first band)."""
    h, w = g.shape
    h, w = h - h % 2, w - w % 2
    win, masks = _geometry(h, w)
    f = cv2.dft(cv2.multiply(np.ascontiguousarray(g[:h, :w]), win))
    return masks @ cv2.multiply(f, f).ravel()


def blockiness(c: np.ndarray) -> float:
    """Mean luminance step across the 8-px grid over the mean step elsewhere, in uint8 grey `c`."""
    h, w = c.shape
    if h < 16 or w < 16:
        return 1.0
    cols = cv2.reduce(cv2.absdiff(c[:, 1:], c[:, :-1]), 0, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()
    rows = cv2.reduce(cv2.absdiff(c[1:], c[:-1]), 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()
    eps = 1e-3
    ratio = 0.0
    for steps, across in ((cols, h), (rows, w)):
        on = (np.arange(steps.size) % 8) == 7
        ratio += 0.5 * (steps[on].sum() / (on.sum() * across) + eps) / (steps[~on].sum() / ((~on).sum() * across) + eps)
    return float(ratio)


_G1 = cv2.getGaussianKernel(7, 1.0, cv2.CV_32F)
_G3 = cv2.getGaussianKernel(11, 3**0.5, cv2.CV_32F)
_K9 = np.ones((9, 9), np.uint8)
_K3 = np.ones((3, 3), np.uint8)


def peak_sharpness(g: np.ndarray, tile: int = 32, min_mid: float = 1.0) -> float:
    """Fine-over-mid detail energy of the sharpest `tile`-px tile of grey float image `g` (see above)."""
    th, tw = g.shape[0] // tile, g.shape[1] // tile
    if th == 0 or tw == 0:
        return 0.0
    b1 = cv2.sepFilter2D(g, -1, _G1, _G1)  # filter the whole image, then tile: cropping first would put a
    b2 = cv2.sepFilter2D(b1, -1, _G3, _G3)  # mirrored border across any edge that crosses the cut (sigma 2)
    fine = cv2.subtract(g, b1)
    mid = cv2.subtract(b1, b2, dst=b2)  # in place: these images are a megabyte each at 512 px
    h, w = th * tile, tw * tile
    fine = cv2.resize(cv2.multiply(fine, fine, dst=fine)[:h, :w], (tw, th), interpolation=cv2.INTER_AREA)
    mid = cv2.resize(cv2.multiply(mid, mid, dst=mid)[:h, :w], (tw, th), interpolation=cv2.INTER_AREA)
    active = mid > min_mid
    return float((fine[active] / mid[active]).max()) if active.any() else 0.0


def _block_sums(img: np.ndarray) -> np.ndarray:
    """Sum of each 8x8 block of a uint8 image whose sides are multiples of 8 (exact, via the integral)."""
    j = cv2.integral(img)[::8, ::8]
    return (j[1:, 1:] - j[:-1, 1:] - j[1:, :-1] + j[:-1, :-1]).astype(np.float64)


def ringing(c: np.ndarray, lap16: np.ndarray | None = None, edge: int = 60, min_pixels: int = 100) -> float:
    """Edge-block minus other-block mean |Laplacian| 2-4 px from strong edges (a 3x3 max-min step above
    `edge` grey levels), in uint8 grey `c` whose origin is on the JPEG grid (see above); 0 when either
    side has fewer than `min_pixels` pixels. `lap16`: the 3x3 Laplacian of `c` as int16, if the caller
    has it."""
    h, w = c.shape[0] - c.shape[0] % 8, c.shape[1] - c.shape[1] % 8
    if h == 0 or w == 0:
        return 0.0
    c = np.ascontiguousarray(c[:h, :w])
    edges = cv2.compare(cv2.morphologyEx(c, cv2.MORPH_GRADIENT, _K3), edge, cv2.CMP_GT)
    band = cv2.subtract(cv2.dilate(edges, _K9), cv2.dilate(edges, _K3))  # 255 where 2-4 px from an edge
    lap = cv2.convertScaleAbs(cv2.Laplacian(c, cv2.CV_16S) if lap16 is None else lap16[:h, :w])
    # per 8x8 block: band pixels, their |Laplacian| sum, and whether the block holds an edge pixel
    n = _block_sums(band) / 255
    s = _block_sums(cv2.bitwise_and(lap, band))
    has_edge = _block_sums(edges) > 0
    na, nb = n[has_edge].sum(), n[~has_edge].sum()
    if na < min_pixels or nb < min_pixels:
        return 0.0
    return float(s[has_edge].sum() / na - s[~has_edge].sum() / nb)


def measures(rgb: np.ndarray, norm_side: int = 512, crop: int = 512) -> dict[str, float]:
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    h, w = g.shape
    s = norm_side / max(h, w)
    gn = cv2.resize(g, (max(8, round(w * s)), max(8, round(h * s))), interpolation=cv2.INTER_AREA) if s < 1 else g
    gnf = gn.astype(np.float32)
    lap16 = cv2.Laplacian(gn, cv2.CV_16S)  # the 4-neighbour 3x3 kernel (ksize=1)
    lap = float(cv2.meanStdDev(lap16)[1][0, 0] ** 2)
    b = band_power(gnf)
    hf = (b[2] + b[3]) / b.sum() if b.sum() > 0 else 0.0
    y0, x0 = max(0, (h - crop) // 2) // 8 * 8, max(0, (w - crop) // 2) // 8 * 8  # stay on the JPEG grid
    c = g[y0 : y0 + crop, x0 : x0 + crop]
    same = c.shape == gn.shape and not (y0 or x0)  # the native-scale crop is the normalised image
    if not same:
        b, lap16 = band_power(c.astype(np.float32)), None
    up = b[3] / (b[1] + b[2]) if b[1] + b[2] > 0 else 0.0
    return {"laplacian_var": round(lap, 3), "hf_energy": round(float(hf), 6), "peak_sharpness": round(peak_sharpness(gnf), 4),
            "upscale_ratio": round(float(up), 6), "blockiness": round(blockiness(c), 4),
            "ringing": round(ringing(c, lap16), 4)}


@dataclass(frozen=True)
class ClarityConfig:
    enabled: bool = True
    norm_side: int = 512  # blur measures are computed with the long side shrunk to this
    # Defaults from benchmarks/filter_quality.py (joint F1 optimum on its evaluation set, rounded):
    # peak_sharpness and ringing do most of the work; the others are guards with loose thresholds.
    min_peak_sharpness: float = 0.8  # a 1.5-px blur or 3x resampling leaves less everywhere
    min_laplacian_var: float = 2.0  # almost no detail at all
    min_hf_energy: float = 0.00005
    min_upscale_ratio: float = 0.02  # catches 2x upscaled text; photos upscaled 2x only partly
    max_blockiness: float = 1.45
    max_ringing: float = 11.0  # grey levels; text at JPEG q10-50 ~14-16, q75 ~11, q85 ~8, q95 ~3


class Clarity(Filter):
    name = "clarity"
    order = 10
    config = ClarityConfig
    rules = (Rule("peak_sharpness", "min_peak_sharpness", "min", "blurry"),
             Rule("laplacian_var", "min_laplacian_var", "min", "blurry", log=True),
             Rule("hf_energy", "min_hf_energy", "min", "blurry", log=True),
             Rule("upscale_ratio", "min_upscale_ratio", "min", "upscaled"),
             Rule("blockiness", "max_blockiness", "max", "jpeg_artifacts"),
             Rule("ringing", "max_ringing", "max", "jpeg_artifacts"))

    def score(self, image: np.ndarray, info: dict[str, Any], cfg: Any) -> dict[str, float]:
        return measures(image, cfg.norm_side)
