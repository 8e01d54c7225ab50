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
