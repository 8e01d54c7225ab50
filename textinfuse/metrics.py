"""Text metrics shared by the tests, the filters and the evaluation: edit distance and NED.

NED here follows OmniDoc-TokenBench: 1 - Levenshtein(a, b) / max(len(a), len(b)), so 1.0 is identical.
"""

from __future__ import annotations


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions all cost 1); O(len(a) * len(b))."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def ned_similarity(a: str, b: str) -> float:
    """1 - normalised edit distance, in [0, 1]; two empty strings score 1."""
    n = max(len(a), len(b))
    return 1.0 if n == 0 else 1.0 - levenshtein(a, b) / n


PSNR_CAP_DB = 100.0  # identical images have infinite PSNR; report this cap so means stay finite


def psnr(a, b, cap: float = PSNR_CAP_DB) -> float:
    """PSNR in dB of two uint8 images of one shape (data range 255, MSE over all pixels and channels).

    Identical images (MSE 0) give `cap` (100 dB by default, the PSNR of an MSE of 6.5e-6), never inf."""
    import numpy as np

    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse == 0.0:
        return cap
    return min(cap, 10.0 * np.log10(255.0**2 / mse))


def ssim(a, b) -> float:
    """Mean SSIM in [-1, 1] of two uint8 images of one shape (Wang et al. 2004: 11x11 Gaussian window,
    sigma 1.5, K1 0.01, K2 0.03, data range 255), computed per channel and averaged over channels; the
    mean is over the 'valid' region (window fully inside), as in the paper's and torchmetrics' code."""
    import cv2
    import numpy as np

    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    g = cv2.getGaussianKernel(11, 1.5)
    win = g @ g.T
    h, w = a.shape[:2]
    if h < 11 or w < 11:
        raise ValueError(f"SSIM needs images of at least 11x11 pixels, got {w}x{h}")

    def filt(x):  # 'valid' correlation: keep only windows inside the image
        return cv2.filter2D(x, -1, win, borderType=cv2.BORDER_REFLECT)[5:-5, 5:-5]

    vals = []
    for c in range(a.shape[2]):
        x, y = a[..., c].astype(np.float64), b[..., c].astype(np.float64)
        mx, my = filt(x), filt(y)
        sxx, syy, sxy = filt(x * x) - mx * mx, filt(y * y) - my * my, filt(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
        vals.append(float(s.mean()))
    return float(np.mean(vals))
