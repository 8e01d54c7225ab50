"""OCR with the bundled `rapidocr` (PP-OCR models ship in its wheel; nothing is downloaded).

Imports neither Ray nor torch. Install with the `ocr` extra: pip install 'textinfuse[ocr]'.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class OcrLine:
    text: str
    box: tuple[tuple[float, float], ...]  # 4 points
    score: float


@lru_cache(maxsize=1)
def _engine():
    try:
        from rapidocr import RapidOCR
    except ImportError as e:
        raise ImportError("OCR needs rapidocr and onnxruntime: pip install 'textinfuse[ocr]'") from e
    for name in ("RapidOCR", "rapidocr"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return RapidOCR()


def read(image: np.ndarray) -> list[OcrLine]:
    """OCR an RGB uint8 image (H, W, 3); lines in the engine's order."""
    r = _engine()(np.ascontiguousarray(image))
    if r.txts is None:
        return []
    return [OcrLine(t, tuple(tuple(map(float, p)) for p in b), float(s))
            for t, b, s in zip(r.txts, r.boxes, r.scores, strict=True)]


def reading_order(items: list[tuple[str, np.ndarray]], line_height: float) -> str:
    """Join texts sorted top-to-bottom then left-to-right by their box centres (rows of `line_height`)."""
    def key(item):
        c = np.asarray(item[1], float).reshape(-1, 2).mean(0)
        return (round(c[1] / max(line_height, 1.0)), c[0])

    return "".join(t for t, _ in sorted(items, key=key))
