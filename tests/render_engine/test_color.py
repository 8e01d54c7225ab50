import numpy as np
import pytest

from render_engine.color import colours_for_contrast, contrast_ratio, luminance


@pytest.mark.parametrize("target", [1.5, 3.0, 4.5, 7.0])
def test_colours_meet_the_contrast_target_on_every_background(target):
    rng = np.random.default_rng(0)
    bgs = np.linspace(0.0, 1.0, 41)
    for bg, rgb in zip(bgs, colours_for_contrast(rng, bgs, target), strict=True):
        assert all(isinstance(v, int) and 0 <= v <= 255 for v in rgb)
        got = contrast_ratio(luminance(rgb), bg)
        best = max(contrast_ratio(bg, 0.0), contrast_ratio(bg, 1.0))
        if best >= target:  # reachable: met to within 8-bit rounding
            assert got == pytest.approx(target, rel=0.04), (bg, rgb, got)
        else:  # unreachable: the most contrast there is
            assert got == pytest.approx(best, rel=0.02), (bg, rgb, got)


def test_colours_vary_in_hue_and_side_and_follow_the_seed():
    a = colours_for_contrast(np.random.default_rng(1), [0.2] * 50, 3.0)
    assert colours_for_contrast(np.random.default_rng(1), [0.2] * 50, 3.0) == a
    assert len({tuple(c) for c in a}) > 30  # hues differ
    lums = [luminance(c) for c in a]
    assert min(lums) < 0.2 < max(lums)  # both darker and lighter than the background, when both can reach it
