"""Golden render samples: a few fixed samples compared exactly with the PNGs checked in beside
tests/fixtures/golden/cases.json. A FreeType, OpenCV or numpy change, or an engine change, that moves a
pixel fails here; when the move is meant, look at it and regenerate: python scripts/make_golden.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "fixtures" / "golden"
sys.path.insert(0, str(ROOT / "scripts"))
from make_golden import cases, render, versions  # noqa: E402


@pytest.mark.parametrize("case", cases(), ids=lambda c: c["name"])
def test_render_matches_its_golden_image(case):
    want = np.asarray(Image.open(GOLDEN / f"{case['name']}.png").convert("RGB"))
    got = render(case)
    assert got.shape == want.shape, f"{case['name']}: shape {got.shape} != golden {want.shape}"
    diff = np.abs(got.astype(np.int16) - want.astype(np.int16)).max(axis=2)
    if diff.any():
        then = json.loads((GOLDEN / "versions.json").read_text())
        now = versions()
        changed = {k: f"{then.get(k)} -> {v}" for k, v in now.items() if then.get(k) != v}
        pytest.fail(f"{case['name']}: {int((diff > 0).sum())} pixels differ (max {int(diff.max())}); "
                    f"library versions changed since the goldens: {changed or 'none'}. If the change is "
                    "meant, look at it and run: python scripts/make_golden.py")


def test_the_goldens_are_small_and_distinct():
    pngs = sorted(GOLDEN.glob("*.png"))
    assert {p.stem for p in pngs} == {c["name"] for c in cases()}
    assert sum(p.stat().st_size for p in pngs) < 200_000
    imgs = [np.asarray(Image.open(p)) for p in pngs]
    assert all(im.std() > 5 for im in imgs)  # real renders, not blank canvases
