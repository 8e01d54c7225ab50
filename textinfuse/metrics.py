"""Image and text metrics: PSNR, SSIM, NED and FID's Fréchet distance for the evaluation, NED for the
trainer's logged score, and order-free character F1 for `calibrate` and render's `output.ocr_score`.

PSNR, SSIM and NED follow OmniDoc-TokenBench's `eval_metrics.py` (github.com/alibaba/OmniDoc-TokenBench),
which scores with piq 0.8.0 (`psnr`, `ssim(..., downsample=False)`) and python-Levenshtein;
tests/test_metric_references.py checks each metric here against an independent implementation. No torch,
no Ray: the trainer's own batch PSNR on tensors is `training.loop.batch_psnr`.

NED here is the similarity 1 - Levenshtein(a, b) / max(len(a), len(b)), so 1.0 is identical.
"""

from __future__ import annotations


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions all cost 1), by code point (rapidfuzz)."""
    from rapidfuzz.distance import Levenshtein

    return int(Levenshtein.distance(a, b))


def ned_similarity(a: str, b: str) -> float:
    """1 - normalised edit distance, in [0, 1]; two empty strings score 1. (The evaluation scores only
    originals with OCR text, so it never meets two empty strings.)"""
    n = max(len(a), len(b))
    return 1.0 if n == 0 else 1.0 - levenshtein(a, b) / n


def char_f1(ocr_text: str, label_text: str) -> float:
    """Order-free character F1 of OCR output against a label, in [0, 1].

    Both texts become multisets of their non-whitespace characters (exact code points: no case folding,
    no width normalisation, so an OCR "," for a label's "，" counts as wrong). With `common` the multiset
    intersection, precision = |common| / |ocr chars| and recall = |common| / |label chars|; F1 is their
    harmonic mean, 2 |common| / (|ocr chars| + |label chars|). Reading order, line breaks and spaces do not
    matter; a repeated character counts as often as it occurs in both. Two texts without characters score
    1.0; one empty and one not score 0.0."""
    from collections import Counter

    a = Counter(ch for ch in ocr_text if not ch.isspace())
    b = Counter(ch for ch in label_text if not ch.isspace())
    na, nb = sum(a.values()), sum(b.values())
    if na + nb == 0:
        return 1.0
    return 2.0 * sum((a & b).values()) / (na + nb)


PSNR_EPS = 1e-8  # piq's: PSNR = -10 log10(MSE + 1e-8) on [0, 1], so identical images score 80 dB (finite)


def psnr(a, b, eps: float = PSNR_EPS) -> float:
    """PSNR in dB of two uint8 images of one shape, as piq computes it (OmniDoc-TokenBench's scorer): the
    MSE over all pixels and channels of the images scaled to [0, 1], then -10 log10(MSE + eps).

    With piq's eps (1e-8) identical images score 80 dB; with eps 0 they score inf, which the evaluation's
    mean leaves out (it averages finite values only, as the reference does)."""
    import numpy as np

    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    mse = float(np.mean(((a.astype(np.float64) - b.astype(np.float64)) / 255.0) ** 2))
    with np.errstate(divide="ignore"):
        return float(-10.0 * np.log10(mse + eps))


def ssim(a, b) -> float:
    """Mean SSIM in [-1, 1] of two uint8 images of one shape (Wang et al. 2004: 11x11 Gaussian window,
    sigma 1.5, K1 0.01, K2 0.03, data range 255, i.e. [0, 1] images with data range 1), computed per
    channel and averaged over channels; the mean is over the 'valid' region (window fully inside, no
    padding) and nothing is downsampled: piq's `ssim(x, y, data_range=1.0, downsample=False)`, the
    reference's call, and scikit-image's `structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False)`, which crops the same border."""
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
