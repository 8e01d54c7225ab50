"""The hand-written metrics against independent references, and the evaluation's protocol rules.

The protocol is OmniDoc-TokenBench's `eval_metrics.py` (github.com/alibaba/OmniDoc-TokenBench): piq 0.8.0's
`psnr(rec, gt, data_range=1.0)` (-10 log10(MSE + 1e-8)) averaged over finite values, piq's
`ssim(rec, gt, data_range=1.0, downsample=False)`, a reconstruction of another size resized to the
original's with PIL bicubic, NED = 1 - Levenshtein / max length over originals with OCR text, and
`ned_details.json`. References here: scikit-image's SSIM, rapidfuzz and a direct DP for Levenshtein, the
PSNR formula, a direct eigenvalue (and scipy sqrtm, as pytorch-fid computes it) Fréchet distance. No OCR
runs: the text rules are checked on fixed OCR lines.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from textinfuse.metrics import frechet_distance, levenshtein, ned_similarity, psnr, ssim

ROOT = Path(__file__).resolve().parents[1]


def _noisy(a: np.ndarray, rng: np.random.Generator, amp: int) -> np.ndarray:
    return np.clip(a.astype(int) + rng.integers(-amp, amp + 1, a.shape), 0, 255).astype(np.uint8)


def _real_pairs() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Crops of a real document page and of two photos, each with a degraded copy (bicubic /4 and back;
    JPEG quality 30): the kind of pairs the evaluation scores."""
    import io

    out = []
    page = np.asarray(Image.open(ROOT / "tests/fixtures/documents/debian-reference-zh-cn-p6.png").convert("RGB"))
    photos = sorted((ROOT / "backgrounds").glob("*.jpg"))[:2]
    crops = [("zh-page", page[160:416, 90:346])]
    crops += [(p.stem, np.asarray(Image.open(p).convert("RGB"))[:200, :256]) for p in photos]
    for name, gt in crops:
        im = Image.fromarray(gt)
        down = np.asarray(im.resize((64, 50 if gt.shape[0] == 200 else 64), Image.BICUBIC)
                          .resize(im.size, Image.BICUBIC))
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=30)
        jpeg = np.asarray(Image.open(buf).convert("RGB"))
        out += [(f"{name}-bicubic", gt, down), (f"{name}-jpeg", gt, jpeg)]
    return out


# --- SSIM ------------------------------------------------------------------------------------------------

def _skimage_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """scikit-image with the settings that reproduce the protocol: [0, 1] images, data range 1, an 11-tap
    Gaussian of sigma 1.5 (truncate 3.5 gives radius 5), population covariances, and the mean over the
    image cropped by (11 - 1) / 2 on each side, i.e. the windows fully inside: the 'valid' region."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a / 255.0, b / 255.0, channel_axis=-1, data_range=1.0,
                                       gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                       win_size=11))


@pytest.mark.parametrize("shape", [(11, 11, 3), (32, 48, 3), (64, 80, 3), (256, 256, 3), (97, 131, 3)])
def test_ssim_matches_scikit_image_on_random_pairs(shape):
    pytest.importorskip("skimage")
    rng = np.random.default_rng(sum(shape))
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    for amp in (3, 30, 120):
        b = _noisy(a, rng, amp)
        assert ssim(a, b) == pytest.approx(_skimage_ssim(a, b), abs=1e-9)
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)


def test_ssim_matches_scikit_image_on_real_pairs():
    pytest.importorskip("skimage")
    for name, a, b in _real_pairs():
        ours, ref = ssim(a, b), _skimage_ssim(a, b)
        assert 0.2 < ours < 1, name
        assert ours == pytest.approx(ref, abs=1e-9), name


def test_ssim_uses_the_valid_region_without_downsampling():
    """A direct 'valid' computation (every 11x11 window inside the image, Gaussian weights) agrees; a
    large image is not average-pooled first (piq's default downsample=True would pool 512 px by 2)."""
    from numpy.lib.stride_tricks import sliding_window_view

    rng = np.random.default_rng(7)
    a = rng.integers(0, 256, (24, 30, 3), dtype=np.uint8)
    b = _noisy(a, rng, 40)
    x = np.arange(11) - 5.0
    g = np.exp(-(x**2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = 0.01**2, 0.03**2
    vals = []
    for c in range(3):
        p, q = a[..., c] / 255.0, b[..., c] / 255.0
        wp, wq = sliding_window_view(p, (11, 11)), sliding_window_view(q, (11, 11))
        mp, mq = (wp * w).sum((-1, -2)), (wq * w).sum((-1, -2))
        vp, vq = (wp**2 * w).sum((-1, -2)) - mp**2, (wq**2 * w).sum((-1, -2)) - mq**2
        cov = (wp * wq * w).sum((-1, -2)) - mp * mq
        vals.append((((2 * mp * mq + c1) * (2 * cov + c2)) / ((mp**2 + mq**2 + c1) * (vp + vq + c2))).mean())
    assert ssim(a, b) == pytest.approx(float(np.mean(vals)), abs=1e-9)
    pytest.importorskip("skimage")
    big = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
    big_b = _noisy(big, rng, 60)
    assert ssim(big, big_b) == pytest.approx(_skimage_ssim(big, big_b), abs=1e-9)  # full resolution


# --- Levenshtein and NED ---------------------------------------------------------------------------------

def _dp(a: str, b: str) -> int:
    """The textbook edit-distance table, by code point."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    return d[-1][-1]


ALPHABET = list("abcXYZ019 .,;") + list("的一是在不了有和人这中大为上") + [" ", "\t", "\n", "\u3000", "\u00a0", "😀", "𠀋"]


def test_levenshtein_and_ned_match_rapidfuzz_and_a_direct_dp():
    from rapidfuzz.distance import Levenshtein

    rng = np.random.default_rng(0)
    for _ in range(400):
        a = "".join(rng.choice(ALPHABET, rng.integers(0, 25)))
        b = "".join(rng.choice(ALPHABET, rng.integers(0, 25))) if rng.random() < 0.5 else \
            "".join(c for c in a if rng.random() > 0.2) + "".join(rng.choice(ALPHABET, rng.integers(0, 4)))
        d = _dp(a, b)
        assert levenshtein(a, b) == d == Levenshtein.distance(a, b)
        n = max(len(a), len(b))
        want = 1.0 if n == 0 else 1.0 - d / n  # the reference's formula (it never meets two empty strings)
        assert ned_similarity(a, b) == pytest.approx(want, abs=1e-15)
        if n:
            assert ned_similarity(a, b) == pytest.approx(Levenshtein.normalized_similarity(a, b), abs=1e-12)


def test_ned_edge_cases():
    assert ned_similarity("", "") == 1.0 and ned_similarity("abc", "") == 0.0 and ned_similarity("", "ab") == 0.0
    assert ned_similarity("中文 文本", "中文文本") == pytest.approx(1 - 1 / 5)  # whitespace is a character
    assert ned_similarity("a😀b", "ab") == pytest.approx(1 - 1 / 3)  # code points, not UTF-16 units
    assert levenshtein("kitten", "sitting") == 3


# --- PSNR ------------------------------------------------------------------------------------------------

def test_psnr_matches_the_direct_formula():
    rng = np.random.default_rng(1)
    for shape in [(16, 16, 3), (64, 48, 3), (256, 256, 3), (20, 30)]:
        a = rng.integers(0, 256, shape, dtype=np.uint8)
        for amp in (1, 8, 64):
            b = _noisy(a, rng, amp)
            mse01 = float(np.mean((a / 255.0 - b / 255.0) ** 2))
            assert psnr(a, b) == pytest.approx(-10 * np.log10(mse01 + 1e-8), abs=1e-9)  # piq's
            mse255 = float(np.mean((a.astype(float) - b) ** 2))
            assert psnr(a, b, eps=0.0) == pytest.approx(10 * np.log10(255.0**2 / mse255), abs=1e-9)
    a = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    assert psnr(a, a) == pytest.approx(80.0, abs=1e-12)  # piq: -10 log10(1e-8), finite
    assert psnr(a, a, eps=0.0) == float("inf")
    for name, x, y in _real_pairs():
        mse01 = float(np.mean((x / 255.0 - y / 255.0) ** 2))
        assert psnr(x, y) == pytest.approx(-10 * np.log10(mse01 + 1e-8), abs=1e-9), name


# --- the evaluation's rules ------------------------------------------------------------------------------

def _photo_dir(d: Path, names: list[str], size=(96, 80)) -> list[np.ndarray]:
    d.mkdir(parents=True, exist_ok=True)
    ims = []
    for i, n in enumerate(names):
        src = sorted((ROOT / "backgrounds").glob("*.jpg"))[i]
        im = Image.open(src).convert("RGB").resize(size, Image.BICUBIC)
        im.save(d / n)
        ims.append(np.asarray(im))
    return ims


def test_psnr_mean_over_finite_values(tmp_path, monkeypatch):
    """piq's identical-pair value (80 dB) is finite and is averaged in, as in the reference; a non-finite
    value (PSNR without piq's eps) is left out of the mean, the reference's `np.isfinite` rule, and
    written as null."""
    import functools

    import evaluation.evaluate as ev

    gts = _photo_dir(tmp_path / "gt", ["a.png", "b.png"])
    rec = tmp_path / "rec"
    rec.mkdir()
    Image.fromarray(gts[0]).save(rec / "a.png")  # identical
    noisy = _noisy(gts[1], np.random.default_rng(3), 20)
    Image.fromarray(noisy).save(rec / "b.png")
    p_b = psnr(gts[1], noisy)
    r = ev.evaluate(tmp_path / "gt", tmp_path / "out", rec, ocr=False, use_cache=False)
    assert r["num_samples"] == 2 and r["PSNR"] == pytest.approx((80.0 + p_b) / 2, abs=1e-9)
    monkeypatch.setattr(ev, "psnr", functools.partial(psnr, eps=0.0))
    r = ev.evaluate(tmp_path / "gt", tmp_path / "out0", rec, ocr=False, use_cache=False)
    assert r["num_samples"] == 2 and r["PSNR"] == pytest.approx(psnr(gts[1], noisy, eps=0.0), abs=1e-9)
    rows = [json.loads(x) for x in (tmp_path / "out0" / "details.jsonl").read_text().splitlines()]
    assert rows[0]["psnr"] is None and rows[0]["ssim"] == pytest.approx(1.0)  # SSIM still counts it
    assert r["SSIM"] == pytest.approx((1.0 + ssim(gts[1], noisy)) / 2, abs=1e-12)
    assert json.loads((tmp_path / "out0" / "report.json").read_text())["psnr_finite"] == 1


def test_a_reconstruction_of_another_size_is_resized_bicubic(tmp_path):
    pytest.importorskip("skimage")
    import evaluation.evaluate as ev

    gts = _photo_dir(tmp_path / "gt", ["a.png"], size=(96, 80))
    rec = tmp_path / "rec"
    rec.mkdir()
    small = Image.fromarray(gts[0]).resize((48, 40), Image.BICUBIC)
    small.save(rec / "a.png")
    r = ev.evaluate(tmp_path / "gt", tmp_path / "out", rec, ocr=False, use_cache=False)
    up = np.asarray(small.resize((96, 80), Image.Resampling.BICUBIC))
    row = json.loads((tmp_path / "out" / "details.jsonl").read_text().splitlines()[0])
    assert row["resized_from"] == "48x40" and "error" not in row
    assert row["psnr"] == pytest.approx(psnr(gts[0], up), abs=1e-9) == r["PSNR"]
    assert row["ssim"] == pytest.approx(_skimage_ssim(gts[0], up), abs=1e-9)
    bilinear = np.asarray(small.resize((96, 80), Image.Resampling.BILINEAR))
    assert abs(row["psnr"] - psnr(gts[0], bilinear)) > 1e-3  # it is bicubic, not any resize
    assert json.loads((tmp_path / "out" / "report.json").read_text())["resized_reconstructions"] == 1


def _fake_lines():
    from textinfuse.ocr import OcrLine

    def box(x, y, w=40, h=10):
        return ((x, y), (x + w, y), (x + w, y + h), (x, y + h))

    # the engine's order is not the reading order here: the second row comes first
    return [OcrLine("second row", box(0, 30), 0.9), OcrLine("第一 行", box(0, 0), 0.9),
            OcrLine(" end", box(50, 0), 0.9)]


def test_engine_text_joins_lines_in_engine_order_and_keeps_whitespace(monkeypatch):
    from textinfuse import ocr

    lines = _fake_lines()
    monkeypatch.setattr(ocr, "read", lambda image, max_side=None: list(lines))
    img = np.zeros((50, 100, 3), np.uint8)
    assert ocr.engine_text(img) == ocr.text_of(img) == "second row第一 行 end"  # the default
    assert ocr.text_of(img, "normalised") == ocr.page_text(img) == "第一行endsecondrow"
    assert ocr.DEFAULT_NED_TEXT == "engine"
    with pytest.raises(ValueError, match="NED text"):
        ocr.text_of(img, "raw")
    # the evaluation derives its texts from cached lines through the same functions
    from evaluation.ocr_cache import lines_text, ocr_lines

    cached = json.loads(json.dumps(ocr_lines(img)))
    for v in ocr.NED_TEXTS:
        assert lines_text(cached, v) == ocr.text_of(img, v)


def test_trainer_logs_ned_with_the_evaluations_text(monkeypatch):
    torch = pytest.importorskip("torch")
    from textinfuse import ocr
    from training import loop

    monkeypatch.setattr(ocr, "read", lambda image, max_side=None: _fake_lines())
    x = torch.zeros(2, 3, 16, 16)
    assert loop.ocr_texts(x) == ["second row第一 行 end"] * 2
    assert loop.ned(["second row第一 行 end", ""], x) == 1.0  # the original without text is left out


def test_ned_details_json_matches_the_reference_layout(tmp_path):
    """Keys, order, rounding and encoding as the reference writes the file (json.dump, ensure_ascii=False,
    indent=2); total_samples counts every original, valid_samples the ones with OCR text."""
    from evaluation.evaluate import _write_outputs
    from evaluation.ocr_cache import OcrCache

    details = [
        {"name": "0001.png", "psnr": 30.1, "ssim": 0.9, "ned": 1 - 1 / 3, "ocr_gt": "中文 abc", "ocr_recon": "中文 ab"},
        {"name": "0002.png", "psnr": 80.0, "ssim": 1.0, "ned": None, "ocr_gt": "", "ocr_recon": ""},
        {"name": "0003.png", "psnr": None, "ssim": None, "ned": None, "ocr_gt": None, "ocr_recon": None,
         "error": "missing in recon dir"},
        {"name": "0004.png", "psnr": 25.0, "ssim": 0.8, "ned": 0.123456, "ocr_gt": "x y", "ocr_recon": "xy"},
    ]
    r = _write_outputs(tmp_path, details, [], [], OcrCache(None), 0, 1.0, None, (None, "no weights"),
                       "engine", {"gt_dir": "g"})
    avg = ((1 - 1 / 3) + 0.123456) / 2
    assert r["num_samples"] == 4 and r["NED_samples"] == 2 and r["NED"] == pytest.approx(avg)
    assert r["PSNR"] == pytest.approx((30.1 + 80.0 + 25.0) / 3) and r["ned_text"] == "engine"
    reference_keys = ["num_samples", "PSNR", "SSIM", "LPIPS", "FID", "NED", "NED_samples"]
    assert list(r)[:7] == reference_keys
    want = {"avg_ned": round(avg, 4), "total_samples": 4, "valid_samples": 2, "details": [
        {"file": "0001.png", "gt_text": "中文 abc", "rec_text": "中文 ab", "ned": round(1 - 1 / 3, 4)},
        {"file": "0004.png", "gt_text": "x y", "rec_text": "xy", "ned": 0.1235}]}
    text = (tmp_path / "ned_details.json").read_text(encoding="utf-8")
    assert text == json.dumps(want, ensure_ascii=False, indent=2)  # byte for byte the reference's writing
    assert json.loads((tmp_path / "results.json").read_text()) == r
    _write_outputs(tmp_path, details[1:3], [], [], OcrCache(None), 0, 1.0, None, (None, "x"), "engine", {})
    assert not (tmp_path / "ned_details.json").exists()  # no original with text: no file, as the reference


# --- Fréchet distance ------------------------------------------------------------------------------------

def _frechet_eig(a: np.ndarray, b: np.ndarray) -> float:
    """|mu_a - mu_b|^2 + tr S_a + tr S_b - 2 sum sqrt(eig(S_a S_b)): the eigenvalues of the product of two
    covariance matrices are real and non-negative, and their square roots sum to tr((S_a S_b)^(1/2))."""
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    ev = np.linalg.eigvals(sa @ sb)
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(sa) + np.trace(sb)
                 - 2 * np.sqrt(np.clip(ev.real, 0, None)).sum())


@pytest.mark.parametrize("n,m,d", [(40, 30, 6), (200, 150, 16), (5, 4, 6), (12, 20, 12)])
def test_frechet_distance_matches_a_direct_eigenvalue_formula(n, m, d):
    rng = np.random.default_rng(n * m * d)
    mix = rng.normal(size=(d, d))
    a = rng.normal(size=(n, d)) @ mix
    b = rng.normal(size=(m, d)) @ (mix + 0.3 * rng.normal(size=(d, d))) + 0.5
    assert frechet_distance(a, b) == pytest.approx(_frechet_eig(a, b), rel=1e-7, abs=1e-9)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_matches_pytorch_fids_sqrtm_formula():
    """pytorch-fid (the reference's FID): diff.diff + tr S1 + tr S2 - 2 tr sqrtm(S1 S2), np.cov (ddof 1)."""
    linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(300, 24)), rng.normal(size=(280, 24)) * 1.3 + 0.2
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1.dot(s2)).real
    diff = a.mean(0) - b.mean(0)
    ref = float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))
    assert frechet_distance(a, b) == pytest.approx(ref, rel=1e-9)
