"""Text density by OCR (rapidocr, models bundled in its wheel), in two stages.

Stage 1, presence (cheap): text detection only, on the image shrunk to `presence_side` px on its long
side (but never below `presence_min_scale` of it, so small text on large pages stays detectable):
`presence_boxes`, `presence_area` (fraction of the image inside detected boxes).

Stage 2, recognition, runs only where stage 1 found at least `min_presence_boxes` boxes, of the lines
that `recognition` names: by default ("presence") the boxes stage 1 found, with no second detection;
"native" detects again at the image's own size (shrunk above `recognition_side`); "engine" runs the OCR
engine's own full pass. Scores: `chars` (recognised, whitespace excluded), `chars_per_mp`, `text_area`,
`mean_confidence`, `cjk_share`, `latin_share`.
Where stage 2 did not run, its scores are absent (`--rescore` computes them if a looser config needs them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from .base import Filter, Rule


def _area(boxes, w: int, h: int) -> float:
    if len(boxes) == 0:
        return 0.0
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round(np.asarray(b)).astype(np.int32) for b in boxes], 1)
    return float(mask.mean())


def presence_side(w: int, h: int, cfg: Any) -> int:
    """Long side of the presence pass: `presence_side`, but at least `presence_min_scale` of the image."""
    return max(cfg.presence_side, round(cfg.presence_min_scale * max(w, h)))


@dataclass(frozen=True)
class TextDensityConfig:
    enabled: bool = True
    # Presence pass: text detection only, with the long side shrunk to presence_side, but never below
    # presence_min_scale of the original (a 512 crop is seen at 256 px, a 1400 px page at 700): on
    # 512 crops, 256 px finds the same boxes as 512 px at a quarter of the cost (benchmarks/filter_quality.py).
    presence_side: int = 256
    presence_min_scale: float = 0.5
    # Recognition, only where presence passed, of which lines (benchmarks/filter_quality.py, 512 crops):
    #   "presence": the presence pass's boxes, no second detection: the filter spends 3.6x less OCR time
    #               than full OCR on an 80 % photo corpus; characters found vs full OCR: median 0.996,
    #               p5 0.83 (small text seen at half size is sometimes cut short);
    #   "native":   detected again at the image's own size (shrunk above recognition_side): 2.5x, median
    #               1.000, p5 0.97;
    #   "engine":   the engine's own full pass (enlarges small images to a 736 px short side first).
    recognition: str = "presence"
    recognition_side: int = 1600
    min_presence_boxes: int = 2  # recognition runs only from this many detected boxes
    min_chars: int = 30
    min_chars_per_mp: float = 400.0  # real 100-150 dpi pages: p5 ~500; dense 256x256 crops: 3,000-9,000
    min_confidence: float = 0.75

    def __post_init__(self) -> None:
        if self.recognition not in ("native", "presence", "engine"):
            raise ValueError(f"recognition {self.recognition!r}: use native, presence or engine")


class TextDensity(Filter):
    name = "text_density"
    order = 20
    config = TextDensityConfig
    rules = (Rule("presence_boxes", "min_presence_boxes", "min", "no_text"),
             Rule("chars", "min_chars", "min", "little_text", log=True),
             Rule("chars_per_mp", "min_chars_per_mp", "min", "sparse_text", log=True),
             Rule("mean_confidence", "min_confidence", "min", "low_confidence"))

    def score(self, image: np.ndarray, info: dict[str, Any], cfg: Any) -> dict[str, float]:
        from textinfuse import ocr

        h, w = image.shape[:2]
        boxes = ocr.detect(image, presence_side(w, h, cfg))
        out: dict[str, float] = {"presence_boxes": len(boxes), "presence_area": round(_area(boxes, w, h), 5)}
        if len(boxes) < cfg.min_presence_boxes:
            return out
        if cfg.recognition == "presence":
            lines = ocr.recognise(image, boxes)
        else:
            lines = ocr.read(image, cfg.recognition_side if cfg.recognition == "native" else None)
        text = "".join(ln.text for ln in lines)
        chars = [c for c in text if not c.isspace()]
        n = len(chars)
        out.update(
            chars=n, chars_per_mp=round(n / (w * h / 1e6), 2), text_area=round(_area([ln.box for ln in lines], w, h), 5),
            mean_confidence=round(float(np.mean([ln.score for ln in lines])) if lines else 0.0, 4),
            cjk_share=round(sum("\u3400" <= c <= "\u9fff" for c in chars) / max(n, 1), 4),
            latin_share=round(sum(c.isascii() and c.isalpha() for c in chars) / max(n, 1), 4),
        )
        return out
