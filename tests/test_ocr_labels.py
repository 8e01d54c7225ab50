"""Labels match pixels: the bundled OCR engine reads easy-level samples back as their labels say."""

import numpy as np
import pytest

from render_engine.config import RenderConfig, TextConfig
from render_engine.engine import Renderer
from textinfuse.metrics import ned_similarity
from textinfuse.ocr import read, reading_order


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_ocr_reads_easy_samples_as_labelled(lang):
    r = Renderer(RenderConfig(levels=(1,), text=TextConfig(langs=(lang,))))
    pool = r.background_pool(np.random.default_rng(0))
    scores = []
    for i in range(5):
        s = r.generate(np.random.default_rng([42, i]), {}, pool)
        lab = s.label
        px = min(lab["char_px"])
        truth = reading_order([(ln["text"], ln["box"]) for ln in lab["lines"]], px)
        got = reading_order([(o.text, o.box) for o in read(s.image)], px)
        strip = lambda t: "".join(c for c in t if not c.isspace())  # noqa: E731
        scores.append(ned_similarity(strip(truth), strip(got)))
    print(lang, [round(x, 3) for x in scores])
    assert np.mean(scores) >= 0.9, scores


@pytest.mark.parametrize("mode", ["native", "presence"])
def test_cheaper_recognition_paths_read_a_real_page_as_the_full_pass_does(mode):
    """`read(image, side)` and `recognise(image, detect(...))` (what the filter runs) against the engine's own
    pass, on a crop of a real Chinese documentation page (tests/fixtures/documents)."""
    from pathlib import Path

    import cv2

    from textinfuse.ocr import detect, recognise

    page = cv2.imread(str(Path(__file__).parent / "fixtures" / "documents" / "debian-reference-zh-cn-p6.png"))
    crop = np.ascontiguousarray(page[150:662, 100:612, ::-1])
    full = [ln for ln in read(crop)]
    boxes = detect(crop, 256)
    got = read(crop, 1600) if mode == "native" else recognise(crop, boxes)
    strip = lambda lines: "".join(c for ln in lines for c in ln.text if not c.isspace())  # noqa: E731
    assert len(strip(full)) > 100 and len(got) >= len(full) - 2
    assert ned_similarity("".join(sorted(strip(full))), "".join(sorted(strip(got)))) > 0.9
    assert all(0 <= x <= 512 and 0 <= y <= 512 for ln in got for x, y in ln.box)  # the crop's own coordinates
    assert recognise(crop, np.zeros((0, 4, 2))) == []
