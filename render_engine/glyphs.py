"""FreeType glyph cache: each (face, pixel size, character) is rasterised once per process.

Sizes are em sizes in pixels (FreeType `set_pixel_sizes(0, px)`, i.e. CSS `font-size: {px}px`).
Everything downstream (layout, composition) works on these cached numpy bitmaps.
"""

from __future__ import annotations

from dataclasses import dataclass

import freetype
import numpy as np

_LOAD_FLAGS = freetype.FT_LOAD_RENDER | freetype.FT_LOAD_TARGET_NORMAL


@dataclass(frozen=True)
class Glyph:
    """A rendered glyph. `bitmap` is uint8 coverage (h, w); `left`/`top` place it relative to the pen
    (x right, y up from the baseline); `advance` is in px. `ink` is the tight ink box inside the bitmap
    (x0, y0, x1, y1), None when the glyph has no ink (space)."""

    bitmap: np.ndarray
    left: int
    top: int
    advance: float
    ink: tuple[int, int, int, int] | None


@dataclass(frozen=True)
class LineMetrics:
    """Per (face, size): ascender and descender (px, descender negative) and the font's line height."""

    ascender: float
    descender: float
    height: float


class GlyphCache:
    """Rasterises glyphs on demand and keeps them. Not thread-safe; one per worker process."""

    def __init__(self, max_glyphs: int = 300_000):
        self._faces: dict[tuple[str, int], freetype.Face] = {}
        self._size: dict[tuple[str, int], int] = {}
        self._glyphs: dict[tuple[str, int, int, str], Glyph] = {}
        self._metrics: dict[tuple[str, int, int], LineMetrics] = {}
        self._advances: dict[tuple[str, int, int], dict[str, float]] = {}
        self.max_glyphs = max_glyphs

    def _face(self, path: str, index: int, px: int) -> freetype.Face:
        key = (path, index)
        face = self._faces.get(key)
        if face is None:
            face = self._faces[key] = freetype.Face(path, index)
        if self._size.get(key) != px:
            face.set_pixel_sizes(0, px)
            self._size[key] = px
        return face

    def metrics(self, path: str, index: int, px: int) -> LineMetrics:
        key = (path, index, px)
        m = self._metrics.get(key)
        if m is None:
            face = self._face(path, index, px)
            sm = face.size
            asc, desc = sm.ascender / 64.0, sm.descender / 64.0
            if asc <= 0:  # some subset fonts carry no hhea values: fall back to the em box
                asc, desc = 0.88 * px, -0.12 * px
            m = self._metrics[key] = LineMetrics(asc, desc, max(sm.height / 64.0, asc - desc))
        return m

    def glyph(self, path: str, index: int, px: int, ch: str) -> Glyph:
        key = (path, index, px, ch)
        g = self._glyphs.get(key)
        if g is not None:
            return g
        if len(self._glyphs) >= self.max_glyphs:
            self._glyphs.clear()
        face = self._face(path, index, px)
        if ch in " \u3000\u00a0\t":
            adv = px * (1.0 if ch == "\u3000" else 0.28)
            gi = face.get_char_index(ord(" ")) if ch != "\u3000" else face.get_char_index(0x3000)
            if gi:
                face.load_glyph(gi, freetype.FT_LOAD_DEFAULT)
                adv = face.glyph.advance.x / 64.0 or adv
            g = Glyph(np.zeros((0, 0), np.uint8), 0, 0, adv, None)
        else:
            face.load_char(ch, _LOAD_FLAGS)
            slot = face.glyph
            bm = slot.bitmap
            if bm.width and bm.rows:
                arr = np.array(bm.buffer, dtype=np.uint8).reshape(bm.rows, bm.pitch)[:, : bm.width].copy()
            else:
                arr = np.zeros((0, 0), np.uint8)
            ink = None
            if arr.size and arr.any():
                rows = np.flatnonzero(arr.any(axis=1))
                cols = np.flatnonzero(arr.any(axis=0))
                ink = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
            g = Glyph(arr, slot.bitmap_left, slot.bitmap_top, slot.advance.x / 64.0, ink)
        self._glyphs[key] = g
        return g

    def advances(self, path: str, index: int, px: int) -> dict[str, float]:
        """A dict char -> advance (px) for one face and size that fills itself on first use of a char."""
        key = (path, index, px)
        table = self._advances.get(key)
        if table is None:
            table = self._advances[key] = _AdvanceTable(self, path, index, px)
        return table


class _AdvanceTable(dict):
    def __init__(self, cache: GlyphCache, path: str, index: int, px: int):
        super().__init__()
        self._args = (cache, path, index, px)

    def __missing__(self, ch: str) -> float:
        cache, path, index, px = self._args
        adv = self[ch] = cache.glyph(path, index, px, ch).advance
        return adv
