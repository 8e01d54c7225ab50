"""OCR with the bundled `rapidocr` (PP-OCR models ship in its wheel; nothing is downloaded).

Imports neither Ray nor torch. Install with the `ocr` extra: pip install 'textinfuse[ocr]'.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class OcrLine:
    text: str
    box: tuple[tuple[float, float], ...]  # 4 points
    score: float


DEVICE_ENV = "TEXTINFUSE_OCR_DEVICE"  # read by every process (Ray workers and eval's pool inherit it)


def parse_device(device: str) -> tuple[str, int]:
    """"cpu", "cuda" or "cuda:N" -> (kind, index); anything else raises ValueError."""
    kind, _, idx = device.strip().lower().partition(":")
    if kind == "cpu" and not idx:
        return "cpu", 0
    if kind == "cuda" and (not idx or idx.isdigit()):
        return "cuda", int(idx or 0)
    raise ValueError(f"OCR device {device!r}: use cpu, cuda or cuda:N")


def set_device(device: str) -> str:
    """Run OCR on `device` in this process and in every process started after (through DEVICE_ENV).
    cuda needs onnxruntime's CUDA provider (the onnxruntime-gpu wheel); without it this raises a one-line
    RuntimeError instead of silently running on the CPU. Returns the device's normalised name."""
    kind, idx = parse_device(device)
    if kind == "cuda":
        try:
            import onnxruntime
        except ImportError as e:
            raise ImportError("OCR needs rapidocr and onnxruntime: pip install 'textinfuse[ocr]'") from e
        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            raise RuntimeError(f"--ocr-device {device}: onnxruntime {onnxruntime.__version__} has no CUDA provider "
                               f"(have {', '.join(onnxruntime.get_available_providers())}); "
                               "install onnxruntime-gpu in place of onnxruntime")
    name = "cpu" if kind == "cpu" else f"cuda:{idx}"
    os.environ[DEVICE_ENV] = name
    return name


def device() -> str:
    """The OCR device of this process: DEVICE_ENV, else cpu."""
    kind, idx = parse_device(os.environ.get(DEVICE_ENV) or "cpu")
    return "cpu" if kind == "cpu" else f"cuda:{idx}"


def _engine(det_limit: int = 736, det_limit_type: str = "min"):
    return _engine_on(det_limit, det_limit_type, device())


@lru_cache(maxsize=4)
def _engine_on(det_limit: int, det_limit_type: str, dev: str):
    """A RapidOCR engine: on the CPU with one thread (jobs run one task per core), or on one GPU through
    onnxruntime's CUDA provider. `det_limit_type` "min" scales images so the short side is at least
    `det_limit` (the engine's default, for recognition accuracy); "max" only shrinks images whose long
    side exceeds it (cheap detection passes)."""
    try:
        from rapidocr import RapidOCR
    except ImportError as e:
        raise ImportError("OCR needs rapidocr and onnxruntime: pip install 'textinfuse[ocr]'") from e
    for name in ("RapidOCR", "rapidocr"):
        logging.getLogger(name).setLevel(logging.ERROR)
    kind, idx = parse_device(dev)
    params = {
        "Global.log_level": "error",
        "EngineConfig.onnxruntime.intra_op_num_threads": 1,
        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        "Det.limit_side_len": det_limit,
        "Det.limit_type": det_limit_type,
    }
    if kind == "cuda":
        params |= {"EngineConfig.onnxruntime.use_cuda": True, "EngineConfig.onnxruntime.cuda_ep_cfg.device_id": idx}
    return RapidOCR(params=params)


def read(image: np.ndarray, max_side: int | None = None) -> list[OcrLine]:
    """OCR an RGB uint8 image (H, W, 3): detection, then recognition; lines in the engine's order.

    max_side None: the engine's own detection (small images enlarged to a short side of 736 px first:
    the most thorough, and about twice the detection cost of a 512 px crop). An int: detection at the
    image's own size, shrunk only above `max_side` on its long side, then recognition of those boxes in
    the full-resolution image (`recognise`)."""
    if max_side is not None:
        return recognise(image, detect(image, max_side))
    r = _engine()(np.ascontiguousarray(image), use_det=True, use_cls=False, use_rec=True)
    txts = getattr(r, "txts", None)
    if not txts:
        return []
    return [OcrLine(t, tuple(tuple(map(float, p)) for p in b), float(s))
            for t, b, s in zip(txts, r.boxes, r.scores, strict=True)]


def _crop(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The quadrilateral `box` (4 points, clockwise from top-left) warped upright, as PP-OCR crops lines;
    tall crops are turned a quarter (vertical lines)."""
    import cv2

    pts = np.asarray(box, np.float32)
    w = max(1, int(max(np.linalg.norm(pts[0] - pts[1]), np.linalg.norm(pts[2] - pts[3]))))
    h = max(1, int(max(np.linalg.norm(pts[0] - pts[3]), np.linalg.norm(pts[1] - pts[2]))))
    m = cv2.getPerspectiveTransform(pts, np.float32([[0, 0], [w, 0], [w, h], [0, h]]))
    out = cv2.warpPerspective(image, m, (w, h), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC)
    return np.ascontiguousarray(np.rot90(out)) if h >= 1.5 * w else out


def recognise(image: np.ndarray, boxes: np.ndarray) -> list[OcrLine]:
    """Recognise the text in each box (N, 4, 2) of an RGB image: no detection. Lines that come out empty
    or under the engine's text score are dropped, as `read` drops them."""
    if len(boxes) == 0:
        return []
    eng = _engine()
    crops = [_crop(image, b) for b in boxes]
    if hasattr(eng, "recognize_txt"):  # rapidocr 3.x: one batched call
        r = eng.recognize_txt(crops)
        pairs = list(zip(r.txts, r.scores, strict=True))
    else:  # any other version: one line image at a time
        pairs = []
        for c in crops:
            r = eng(c, use_det=False, use_cls=False, use_rec=True)
            pairs.append(((r.txts or ("",))[0], float((r.scores or (0.0,))[0])))
    min_score = float(getattr(eng, "text_score", 0.5))
    return [OcrLine(t, tuple(tuple(map(float, p)) for p in b), float(sc))
            for (t, sc), b in zip(pairs, boxes, strict=True) if t.strip() and sc >= min_score]


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


NED_TEXTS = ("engine", "normalised")  # the two texts NED can compare; see `text_of`
DEFAULT_NED_TEXT = "engine"  # OmniDoc-TokenBench's: `textinfuse eval` and the trainer's logged NED


def engine_text_of_lines(lines: list[OcrLine]) -> str:
    """The recognised lines joined with "" in the engine's own order, nothing removed."""
    return "".join(ln.text for ln in lines)


def page_text_of_lines(lines: list[OcrLine]) -> str:
    """The recognised lines in reading order (rows of the median line height, then left to right), all
    whitespace removed."""
    if not lines:
        return ""
    boxes = [np.asarray(ln.box, float) for ln in lines]
    height = float(np.median([float(np.ptp(b[:, 1])) for b in boxes]))
    return re.sub(r"\s+", "", reading_order([(ln.text, b) for ln, b in zip(lines, boxes, strict=True)], height))


def engine_text(image: np.ndarray) -> str:
    """OmniDoc-TokenBench's OCR text of an RGB uint8 image: the engine's lines joined with "" in its own
    order, whitespace kept (`"".join(rec_texts)` in its eval_metrics.py). The default text of
    `textinfuse eval` and of the trainer's logged NED."""
    return engine_text_of_lines(read(image))


def page_text(image: np.ndarray) -> str:
    """OCR of an RGB uint8 image in reading order, all whitespace removed: `textinfuse eval --ned-text
    normalised` (the evaluation's text before it followed OmniDoc-TokenBench), and bench-build's
    character counts."""
    return page_text_of_lines(read(image))


def text_of_lines(lines: list[OcrLine], variant: str = DEFAULT_NED_TEXT) -> str:
    """`engine_text` or `page_text` ("engine" or "normalised") of lines already read."""
    if variant == "engine":
        return engine_text_of_lines(lines)
    if variant == "normalised":
        return page_text_of_lines(lines)
    raise ValueError(f"NED text {variant!r}: use one of {', '.join(NED_TEXTS)}")


def text_of(image: np.ndarray, variant: str = DEFAULT_NED_TEXT) -> str:
    """The text NED compares, by variant: "engine" (`engine_text`, the default) or "normalised"
    (`page_text`). The evaluation and the trainer both call this one function."""
    if variant not in NED_TEXTS:  # before the OCR runs, not after
        raise ValueError(f"NED text {variant!r}: use one of {', '.join(NED_TEXTS)}")
    return text_of_lines(read(image), variant)
