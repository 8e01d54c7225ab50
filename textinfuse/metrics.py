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


def frechet_distance(a, b) -> float:
    """FID's Fréchet distance between Gaussians fitted to two feature sets (N, D) and (M, D):
    |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2)), sample covariances (ddof 1).

    tr((S_a S_b)^(1/2)) is the nuclear norm of Xa Xb^T / sqrt((N-1)(M-1)) for the centred data matrices
    (the non-zero eigenvalues of S_a S_b are the squared singular values of Xa Xb^T), which is exact, needs
    no matrix square root, and stays well defined when N < D, where scipy's sqrtm of the D x D product
    is singular. With more samples than dimensions the D x D form is cheaper and is used instead."""
    import numpy as np

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"feature sets of shape {a.shape} and {b.shape}: need (N>=2, D) and (M>=2, D)")
    ma, mb = a.mean(0), b.mean(0)
    xa, xb = a - ma, b - mb
    na, nb = len(a) - 1, len(b) - 1
    tr_a, tr_b = float((xa * xa).sum() / na), float((xb * xb).sum() / nb)
    if min(len(a), len(b)) <= a.shape[1]:
        cross = float(np.linalg.svd(xa @ xb.T, compute_uv=False).sum() / np.sqrt(na * nb))
    else:
        sa, sb = xa.T @ xa / na, xb.T @ xb / nb
        w, v = np.linalg.eigh(sa)
        root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T  # S_a^(1/2)
        cross = float(np.sqrt(np.clip(np.linalg.eigvalsh(root @ sb @ root), 0, None)).sum())
    return max(0.0, float(((ma - mb) ** 2).sum()) + tr_a + tr_b - 2 * cross)
