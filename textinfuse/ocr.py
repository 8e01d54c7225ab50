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


@lru_cache(maxsize=4)
def _engine(det_limit: int = 736, det_limit_type: str = "min"):
    """A RapidOCR engine using one CPU thread (jobs run one task per core). `det_limit_type` "min" scales
    images so the short side is at least `det_limit` (the engine's default, for recognition accuracy);
    "max" only shrinks images whose long side exceeds it (cheap detection passes)."""
    try:
        from rapidocr import RapidOCR
    except ImportError as e:
        raise ImportError("OCR needs rapidocr and onnxruntime: pip install 'textinfuse[ocr]'") from e
    for name in ("RapidOCR", "rapidocr"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return RapidOCR(params={
        "Global.log_level": "error",
        "EngineConfig.onnxruntime.intra_op_num_threads": 1,
        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        "Det.limit_side_len": det_limit,
        "Det.limit_type": det_limit_type,
    })


def read(image: np.ndarray) -> list[OcrLine]:
    """OCR an RGB uint8 image (H, W, 3): detection, then recognition; lines in the engine's order."""
    r = _engine()(np.ascontiguousarray(image), use_det=True, use_cls=False, use_rec=True)
    txts = getattr(r, "txts", None)
    if not txts:
        return []
    return [OcrLine(t, tuple(tuple(map(float, p)) for p in b), float(s))
            for t, b, s in zip(txts, r.boxes, r.scores, strict=True)]


def detect(image: np.ndarray, max_side: int = 640) -> np.ndarray:
    """Text boxes only (N, 4, 2) in the image's own coordinates, detected on the image shrunk so its long
    side is at most `max_side` (cheap). The shrinking is done here, so one engine serves every size."""
    import cv2

    h, w = image.shape[:2]
    s = min(1.0, max_side / max(h, w))
    if s < 1:
        image = cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    r = _engine(1 << 20, "max")(np.ascontiguousarray(image), use_det=True, use_cls=False, use_rec=False)
    boxes = getattr(r, "boxes", None)
    return np.zeros((0, 4, 2)) if boxes is None or len(boxes) == 0 else np.asarray(boxes, float) / s


def reading_order(items: list[tuple[str, np.ndarray]], line_height: float) -> str:
    """Join texts sorted top-to-bottom then left-to-right by their box centres (rows of `line_height`)."""
    def key(item):
        c = np.asarray(item[1], float).reshape(-1, 2).mean(0)
        return (round(c[1] / max(line_height, 1.0)), c[0])

    return "".join(t for t, _ in sorted(items, key=key))
