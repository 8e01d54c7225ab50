"""FreeType glyph cache: each (face, pixel size, character) is rasterised once per process.

Sizes are em sizes in pixels (FreeType `set_pixel_sizes(0, px)`, i.e. CSS `font-size: {px}px`).
Everything downstream (layout, composition) works on these cached numpy bitmaps.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import freetype
import numpy as np

_LOAD_FLAGS = freetype.FT_LOAD_RENDER | freetype.FT_LOAD_TARGET_NORMAL
_EMPTY16 = np.zeros(0, np.int16)
_EMPTY8 = np.zeros(0, np.uint8)


@dataclass(frozen=True)
class Glyph:
    """A rendered glyph, relative to the pen on the baseline (x right, y down), in px.

    `bitmap` is uint8 coverage (h, w) whose top-left is at (left, -top); `advance` is integral (hinted);
    `ink` is the tight ink box (x0, y0, x1, y1), None for glyphs without ink (space). `gid` is the glyph's
    row in its table's `Atlas`, which holds its inked pixels.
    """

    bitmap: np.ndarray
    left: int
    top: int
    advance: float
    ink: tuple[int, int, int, int] | None
    gid: int


class Atlas:
    """Every glyph of one table packed in flat arrays, indexed by glyph id, so a sample's glyphs are
    gathered with a few numpy calls rather than one Python step per glyph. Grows by doubling."""

    def __init__(self) -> None:
        self.n = 0
        self.npix = 0
        self.advance = np.zeros(64)
        self.ink = np.zeros((64, 4), np.int32)  # x0 y0 x1 y1; all 0 for a glyph without ink
        self.inked = np.zeros(64, bool)
        self.start = np.zeros(64, np.int64)  # first pixel in the flat arrays
        self.count = np.zeros(64, np.int64)  # inked pixels
        self.dy = np.zeros(4096, np.int16)  # inked pixels: offsets from the pen on the baseline, coverage
        self.dx = np.zeros(4096, np.int16)
        self.val = np.zeros(4096, np.uint8)
        self._off, self._off_n, self._off_width = np.zeros(0, np.int32), 0, 0

    def add(self, g: Glyph, dy: np.ndarray, dx: np.ndarray, val: np.ndarray) -> None:
        """Append glyph `g` (its `gid` must be `n`) with its inked pixels."""
        gid, k = self.n, len(val)
        if gid == len(self.advance):
            for name in ("advance", "ink", "inked", "start", "count"):
                setattr(self, name, _grown(getattr(self, name), 2 * gid))
        if self.npix + k > len(self.val):
            for name in ("dy", "dx", "val"):
                setattr(self, name, _grown(getattr(self, name), max(2 * len(self.val), self.npix + k)))
        self.advance[gid] = g.advance
        if g.ink is not None:
            self.ink[gid] = g.ink
            self.inked[gid] = True
        self.start[gid], self.count[gid] = self.npix, k
        self.dy[self.npix : self.npix + k] = dy
        self.dx[self.npix : self.npix + k] = dx
        self.val[self.npix : self.npix + k] = val
        self.npix += k
        self.n += 1

    def offsets(self, width: int) -> np.ndarray:
        """Every inked pixel's offset from its glyph's pen position in a row-major image `width` wide
        (kept, and extended only by the glyphs added since the last call)."""
        if self._off_width != width:
            self._off, self._off_n, self._off_width = np.zeros(len(self.dy), np.int32), 0, width
        if len(self._off) < len(self.dy):
            self._off = _grown(self._off, len(self.dy))
        if self._off_n < self.npix:
            lo, hi = self._off_n, self.npix
            self._off[lo:hi] = self.dy[lo:hi].astype(np.int32) * width + self.dx[lo:hi]
            self._off_n = hi
        return self._off

    def pixels(self, gids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For glyph ids `gids`: the flat positions of all their inked pixels, glyph after glyph, and the
        number of pixels of each glyph."""
        counts = self.count[gids]
        ends = np.cumsum(counts)
        pos = np.arange(int(ends[-1]) if len(ends) else 0) + np.repeat(self.start[gids] - (ends - counts), counts)
        return pos, counts


def _grown(a: np.ndarray, n: int) -> np.ndarray:
    """`a` extended with zeros to length `n` (along its first axis)."""
    return np.concatenate([a, np.zeros((n - len(a), *a.shape[1:]), a.dtype)])


class GlyphTable(dict):
    """char -> Glyph for one face and size, rasterising a char on first use; `gids` maps text to glyph
    ids in `atlas`."""

    def __init__(self, rasterise) -> None:
        super().__init__()
        self._rasterise = rasterise
        self.atlas = Atlas()
        self.ids = _LazyTable(lambda ch: self[ch].gid)

    def __missing__(self, ch: str) -> Glyph:
        g, dy, dx, val = self._rasterise(ch, self.atlas.n)
        self.atlas.add(g, dy, dx, val)
        self[ch] = g
        return g

    def gids(self, text: str) -> np.ndarray:
        return np.fromiter(map(self.ids.__getitem__, text), np.int64, len(text))

    def reset(self) -> None:
        self.clear()
        self.ids.clear()
        self.atlas = Atlas()


class GlyphCache:
    """Rasterises glyphs on demand and keeps them. Not thread-safe; one per worker process."""

    def __init__(self, max_glyphs: int = 120_000):
        self._faces: dict[tuple[str, int], freetype.Face] = {}
        self._size: dict[tuple[str, int], int] = {}
        self._tables: dict[tuple[str, int, int], GlyphTable] = {}
        self._count = 0
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

    def glyph(self, path: str, index: int, px: int, ch: str) -> Glyph:
        return self.table(path, index, px)[ch]

    def trim(self) -> None:
        """Empty every table once more than `max_glyphs` glyphs are cached. Call it between samples only:
        glyph ids looked up before a trim are stale after it."""
        if self._count > self.max_glyphs:
            for t in self._tables.values():
                t.reset()
            self._count = 0

    def table(self, path: str, index: int, px: int) -> GlyphTable:
        """The table of one face and size (the hot path looks glyphs up here directly)."""
        key = (path, index, px)
        t = self._tables.get(key)
        if t is None:
            t = self._tables[key] = GlyphTable(lambda ch, gid: self._rasterise(path, index, px, ch, gid))
        return t

    def _rasterise(self, path: str, index: int, px: int, ch: str, gid: int
                   ) -> tuple[Glyph, np.ndarray, np.ndarray, np.ndarray]:
        """The glyph (atlas row `gid`), and its inked pixels: y and x offsets from the pen, and coverage."""
        self._count += 1
        face = self._face(path, index, px)
        if ch in " \u3000\u00a0\t":
            adv = px * (1.0 if ch == "\u3000" else 0.28)
            gi = face.get_char_index(ord(" ")) if ch != "\u3000" else face.get_char_index(0x3000)
            if gi:
                face.load_glyph(gi, freetype.FT_LOAD_DEFAULT)
                adv = face.glyph.advance.x / 64.0 or adv
            return Glyph(np.zeros((0, 0), np.uint8), 0, 0, adv, None, gid), _EMPTY16, _EMPTY16, _EMPTY8
        face.load_char(ch, _LOAD_FLAGS)
        slot = face.glyph
        bm = slot.bitmap
        rows, width, pitch = bm.rows, bm.width, bm.pitch
        if width and rows and pitch > 0:  # copy FreeType's buffer at once (bm.buffer builds a Python list)
            raw = np.frombuffer(ctypes.string_at(bm._FT_Bitmap.buffer, rows * pitch), np.uint8)
            arr = raw.reshape(rows, pitch)[:, :width].copy()
        elif width and rows:
            arr = np.array(bm.buffer, dtype=np.uint8).reshape(rows, abs(pitch))[:, :width].copy()
        else:
            arr = np.zeros((0, 0), np.uint8)
        ink = None
        left, top = slot.bitmap_left, slot.bitmap_top
        ys, xs = np.nonzero(arr)  # row-major: ys ascend
        if len(ys):
            ink = (left + int(xs.min()), int(ys[0]) - top, left + int(xs.max()) + 1, int(ys[-1]) + 1 - top)
        return (Glyph(arr, left, top, round(slot.advance.x / 64.0), ink, gid), (ys - top).astype(np.int16),
                (xs + left).astype(np.int16), arr[ys, xs])

    def advances(self, path: str, index: int, px: int) -> dict[str, float]:
        """A dict char -> advance (px) for one face and size that fills itself on first use of a char."""
        key = (path, index, px)
        table = self._advances.get(key)
        if table is None:
            glyphs = self.table(path, index, px)
            table = self._advances[key] = _LazyTable(lambda ch: glyphs[ch].advance)
        return table


class _LazyTable(dict):
    """A dict that computes a missing char's value with `fill(char)` and keeps it."""

    def __init__(self, fill):
        super().__init__()
        self._fill = fill

    def __missing__(self, ch: str):
        v = self[ch] = self._fill(ch)
        return v
