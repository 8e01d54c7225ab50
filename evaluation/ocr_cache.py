"""OCR of the evaluation: the engine's lines of an image, the NED text derived from them, and a cache of
the originals' lines keyed by pixel hash.

The cache lives in this user's private cache folder (`~/.cache/textinfuse/eval/`, never in the GT folder,
which may come from elsewhere and could carry texts that give any score); one file serves every GT
folder. It stores lines ([text, box, score] in the engine's order), not texts, so each NED text variant
(`textinfuse.ocr.NED_TEXTS`) derives from one reading and variants never mix.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from textinfuse.ocr import DEFAULT_NED_TEXT

CACHE_NAME = ".textinfuse-ocr-cache.jsonl"


def pixel_key(img: np.ndarray) -> str:
    return hashlib.sha256(repr(img.shape).encode() + np.ascontiguousarray(img).tobytes()).hexdigest()


def ocr_lines(img: np.ndarray) -> list[list]:
    """The OCR engine's lines of an RGB uint8 image, in its order, as JSON-ready [text, box, score]: what
    the cache stores, so either text variant derives from one reading."""
    from textinfuse import ocr

    return [[ln.text, [list(p) for p in ln.box], ln.score] for ln in ocr.read(img)]


def lines_text(lines: list[list], ned_text: str = DEFAULT_NED_TEXT) -> str:
    """The text NED compares, from `ocr_lines` output: `textinfuse.ocr.text_of_lines` (what
    `textinfuse.ocr.text_of`, the trainer's text, computes from a fresh reading)."""
    from textinfuse import ocr

    return ocr.text_of_lines([ocr.OcrLine(t, tuple(tuple(pt) for pt in b), float(sc)) for t, b, sc in lines],
                             ned_text)


def ocr_version() -> str:
    """The OCR engine's name in the cache: its version, and the device when not the CPU (GPU kernels may
    read a line differently, so their texts are not mixed with the CPU's)."""
    from importlib.metadata import PackageNotFoundError, version

    from textinfuse.ocr import device

    try:
        name = f"rapidocr-{version('rapidocr')}"
    except PackageNotFoundError:
        name = "rapidocr-unknown"
    return name if device() == "cpu" else f"{name}-{device()}"


class OcrCache:
    """OCR lines ([text, box, score] in the engine's order) keyed by pixel sha256, from which each NED text
    variant is derived (`lines_text`), so variants never mix; persisted as JSONL lines {key, engine, lines}
    (append-only). Lines of the earlier format {key, engine, text} held one variant only and are ignored.
    `hits` and `misses` count the originals' lookups."""

    def __init__(self, path: Path | None):
        self.path, self.engine = path, ocr_version()
        self.lines: dict[str, list] = {}
        self.hits = self.misses = 0
        if path is not None and path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    r = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a torn last line from an interrupted run
                if isinstance(r, dict) and r.get("engine") == self.engine and isinstance(r.get("lines"), list):
                    self.lines[r["key"]] = r["lines"]

    def store(self, key: str, lines: list, persist: bool = True) -> None:
        self.lines[key] = lines
        if persist and self.path is not None:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"key": key, "engine": self.engine, "lines": lines}, ensure_ascii=False) + "\n")


def cache_dir() -> Path:
    """This user's private folder for the evaluation's caches (OCR lines, FID features), created if needed."""
    from textinfuse.files import private_dir

    return private_dir("eval", "evaluation")


def cache_path() -> Path:
    """The OCR cache: in this user's private cache folder, never in the GT folder. A GT folder may come
    from elsewhere, and a cache inside it could hold texts that give any score. Entries are keyed by pixel
    hash and OCR engine, so one file serves every GT folder."""
    return cache_dir() / CACHE_NAME
