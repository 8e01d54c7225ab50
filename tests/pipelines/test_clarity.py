"""Clarity measures on real pixels: a documentation page and a bundled photo, clean and degraded."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from pipelines.filter_job import ClarityConfig
from pipelines.filters.base import Rule
from pipelines.filters.clarity import Clarity, measures
from render_engine.paths import bundled_backgrounds

DOCS = Path(__file__).resolve().parents[1] / "fixtures" / "documents"


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    data = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1]


@pytest.fixture(scope="module")
def page():
    """A real Chinese documentation page (tests/fixtures/documents), black text on white."""
    return cv2.imread(str(DOCS / "debian-reference-zh-cn-p6.png"))[..., ::-1].copy()


@pytest.fixture(scope="module")
def photo():
    """A bundled photo at the normalised scale (long side 512), so a blur here is a blur there."""
    rgb = cv2.imread(str(bundled_backgrounds() / "skimage-coffee.jpg"))[..., ::-1]
    s = 512 / max(rgb.shape[:2])
    return cv2.resize(rgb, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)


def test_ringing_grows_as_jpeg_quality_falls_on_a_flat_page_where_blockiness_barely_moves(page):
    cfg = ClarityConfig()
    s = {q: measures(page if q == 100 else jpeg(page, q)) for q in (100, 95, 85, 30, 10)}
    assert s[100]["ringing"] < 1 < s[95]["ringing"] < s[85]["ringing"] < cfg.max_ringing < s[30]["ringing"]
    assert s[10]["blockiness"] < cfg.max_blockiness  # the grid alone would let this page through
    assert [Clarity().keep(s[q], cfg) for q in (100, 95, 85, 30, 10)] == [None, None, None] + ["jpeg_artifacts"] * 2


def test_ringing_follows_the_files_jpeg_grid_when_the_centre_crop_is_off_it(page):
    big = np.full((1300, 1100, 3), 255, np.uint8)
    big[20 : 20 + page.shape[0], 100 : 100 + page.shape[1]] = page  # (1300-512)//2 = 394: not a multiple of 8
    assert measures(big)["ringing"] < 1 and measures(jpeg(big, 20))["ringing"] > ClarityConfig().max_ringing


def test_peak_sharpness_counts_a_sharp_subject_on_a_defocused_background(photo):
    cfg = ClarityConfig()
    sharp = measures(photo)
    blurred = measures(cv2.GaussianBlur(photo, (0, 0), 1.5))
    h, w = photo.shape[:2]
    bokeh = cv2.GaussianBlur(photo, (0, 0), 3.0)
    y, x = h // 2 - 64, w // 2 - 64  # a 128-px sharp subject (the cup) in the middle, the rest defocused
    bokeh[y : y + 128, x : x + 128] = photo[y : y + 128, x : x + 128]
    subject = measures(bokeh)
    assert blurred["peak_sharpness"] < cfg.min_peak_sharpness < subject["peak_sharpness"] <= sharp["peak_sharpness"]
    assert subject["hf_energy"] < sharp["hf_energy"] / 2  # the global view sees mostly blur; the local one does not
    assert Clarity().keep(blurred, cfg) == "blurry" and Clarity().keep(subject, cfg) is None


@pytest.mark.parametrize("name", ["lomiri-friends.jpg", "lomiri-wine.jpg"])
def test_blur_measures_are_taken_at_one_scale_and_a_2x_upscale_is_caught(name):
    rgb = cv2.imread(str(bundled_backgrounds() / name))[..., ::-1]  # 1024 px on the long side
    half = cv2.resize(rgb, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    up = cv2.resize(half, None, fx=2, fy=2, interpolation=cv2.INTER_LANCZOS4)
    full_s, half_s, up_s = measures(rgb), measures(half), measures(up)
    for key in ("peak_sharpness", "laplacian_var", "hf_energy"):  # the same picture at 1024 and 512 px
        assert abs(np.log(full_s[key] / half_s[key])) < np.log(1.25), key
    cfg = ClarityConfig()
    assert Clarity().keep(full_s, cfg) is None and Clarity().keep(half_s, cfg) is None
    assert Clarity().keep(up_s, cfg) == "upscaled"


def test_rules_say_which_score_is_missing_and_disabled_sections_keep_everything():
    cfg = ClarityConfig()
    full = {"peak_sharpness": 3.0, "laplacian_var": 500.0, "hf_energy": 0.1, "upscale_ratio": 0.2,
            "blockiness": 1.0, "ringing": 1.0}
    assert Clarity().decide(full, cfg) == (None, True)
    assert Clarity().decide({**full, "ringing": 30.0}, cfg) == ("jpeg_artifacts", True)
    partial = {k: v for k, v in full.items() if k != "ringing"}  # scored by an older version
    assert Clarity().decide(partial, cfg) == (None, False)
    assert Clarity().decide({**partial, "peak_sharpness": 0.1}, cfg) == ("blurry", True)  # fails before the gap
    with pytest.raises(KeyError):
        Clarity().keep(partial, cfg)
    from dataclasses import replace

    assert Clarity().decide({}, replace(cfg, enabled=False)) == (None, True)
    assert Rule("x", "min_side", "max", "big").passes(3, 3) and not Rule("x", "k", "min", "r").passes(2, 3)
