"""Regenerate the golden render samples (tests/fixtures/golden/*.png) ON PURPOSE: after a change meant to
move pixels (a new effect default, a layout fix), or to accept a FreeType/OpenCV/numpy upgrade whose
pixel changes you have looked at. tests/render_engine/test_golden.py compares renders with them exactly.

    python scripts/make_golden.py            # writes the PNGs and versions.json
    python scripts/make_golden.py --check    # only reports which cases differ (exit 1 if any)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "fixtures" / "golden"
sys.path.insert(0, str(ROOT))


def cases() -> list[dict]:
    return json.loads((GOLDEN / "cases.json").read_text(encoding="utf-8"))["cases"]


def render(case: dict) -> np.ndarray:
    """The case's image: Renderer(config from the case's overrides).generate(default_rng(seed))."""
    from render_engine.config import RenderConfig
    from render_engine.engine import Renderer
    from textinfuse.configio import load

    cfg = load(RenderConfig, None, list(case["set"]))
    return Renderer(cfg).generate(np.random.default_rng(case["seed"])).image


def versions() -> dict[str, str]:
    """The libraries that decide pixels: FreeType (through freetype-py), OpenCV, numpy, Pillow."""
    from importlib.metadata import version

    import cv2
    import freetype
    import PIL

    return {"freetype": ".".join(map(str, freetype.version())), "freetype-py": version("freetype-py"),
            "opencv": cv2.__version__, "numpy": np.__version__, "pillow": PIL.__version__}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare only; write nothing")
    a = ap.parse_args()
    bad = 0
    for case in cases():
        img = render(case)
        path = GOLDEN / f"{case['name']}.png"
        old = np.asarray(Image.open(path).convert("RGB")) if path.exists() else None
        same = old is not None and old.shape == img.shape and np.array_equal(old, img)
        bad += not same
        print(f"{case['name']}: {'same' if same else 'differs' if old is not None else 'new'}")
        if not a.check and not same:
            Image.fromarray(img).save(path, optimize=True)
    if not a.check:
        (GOLDEN / "versions.json").write_text(json.dumps(versions(), indent=1) + "\n")
    return 1 if a.check and bad else 0


if __name__ == "__main__":
    sys.exit(main())
