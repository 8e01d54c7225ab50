"""The renderer: `generate(seeds)` samples every parameter then renders; `render(params)` re-renders.

A sample's parameters (background crop, blocks with their exact lines, fonts, sizes, colours, effects)
are plain JSON and stored in its label under "params", so any sample can be re-rendered byte for byte
with `Renderer.render(label["params"])`.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from textinfuse.files import name_fields
from textinfuse.images import find_images

from . import effects as fx
from .backgrounds import BackgroundSet, Crop, apply_crop, box_sum, sample_crop
from .color import colours_for_contrast, contrast_ratio, luminance, luminance_map
from .config import RenderConfig
from .fonts import FontFace, FontLibrary
from .glyphs import GlyphCache
from .labels import CHARS_MEMBER, LABEL_VERSION
from .layout import fill, grid, place
from .legibility import Legibility, load_table
from .levels import INK_CONTRAST, LEVELS, scaled
from .paths import bundled_backgrounds, bundled_corpora, bundled_fonts
from .text import TextSource

log = logging.getLogger(__name__)
# control and format characters (no ink, no meaning for OCR): removed from text before layout
_INVISIBLE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")


@dataclass
class Sample:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    label: dict[str, Any]
    alpha: np.ndarray  # (H, W) float32 text coverage after geometry (for checks and debugging)
    char_boxes: np.ndarray  # (N, 4) int x0 y0 x1 y1 of the labelled characters before any warp: the
    # sample's `chars.npy` member (render_engine.labels: `labels.columns(label, char_boxes)` reads them)


def load_fonts(cfg: RenderConfig) -> FontLibrary:
    """The job's fonts (its folders, plus the bundled ones unless excluded); FontError when a language of
    the job has no face that writes it (the job would drop every character of it)."""
    fdirs = [*cfg.fonts.dirs, *([bundled_fonts()] if cfg.fonts.include_bundled or not cfg.fonts.dirs else [])]
    fonts = FontLibrary.load(fdirs)
    fonts.require(cfg.text.langs)
    return fonts


class Assets:
    """Fonts, glyph cache, text and backgrounds for one config; build once per worker process."""

    def __init__(self, cfg: RenderConfig):
        self.fonts = load_fonts(cfg)
        self.glyphs = GlyphCache()
        corpora = Path(cfg.text.corpora) if cfg.text.corpora else bundled_corpora()
        charset = Path(cfg.text.charset) if cfg.text.charset else bundled_corpora() / "charsets" / "gb2312_level1.txt"
        self.text = TextSource(corpora, charset if charset.exists() else None)
        if any(lang != "en" for lang in cfg.text.langs):
            self.text.preload()
        refs, self.background_problems = find_images(list(cfg.backgrounds.sources) or [str(bundled_backgrounds())])
        b = cfg.backgrounds
        self.backgrounds = BackgroundSet(refs, b.max_pixels, b.min_side)


_LEGIBILITY: dict[str, Legibility | None] = {}
_WARNED: set[str] = set()


def _legibility(setting: str, faces: list[FontFace], langs: tuple[str, ...]) -> Legibility | None:
    """The legibility table of `fonts.legibility` (loaded once per process); says once which faces have
    no profile (they are drawn at any size)."""
    key = setting
    if setting not in ("", "none", "bundled"):  # a file: loaded again when it changes
        try:
            st = Path(setting).stat()
            key = f"{setting}|{st.st_mtime_ns}|{st.st_size}"
        except OSError:
            pass  # load_table names the file and the reason
    if key not in _LEGIBILITY:
        _LEGIBILITY[key] = load_table(setting)
    table = _LEGIBILITY[key]
    if table is not None:
        missing = [m for m in table.missing(faces, list(langs)) if f"{setting}|{m}" not in _WARNED]
        if missing:
            _WARNED.update(f"{setting}|{m}" for m in missing)
            log.info("no legibility profile for %s in %s: drawn at any size (textinfuse calibrate measures them)",
                     ", ".join(missing), table.source)
    return table


_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
_DIGIT = re.compile(r"\d")


def _colour_lines(colour: np.ndarray, rgbs: list, x0s: list[int], y0s: list[int], x1s: list[int], y1s: list[int],
                  flat: np.ndarray, owner: np.ndarray, counts: np.ndarray) -> None:
    """Paint each line's colour over its ink box and 2 px around it (so warps never blend the text with
    a stray colour), earlier lines winning where paddings overlap. Every inked pixel must take its own
    line's colour: that holds by construction unless two lines' ink boxes overlap, and then the pixels
    of those lines are painted one by one."""
    n = len(rgbs)
    for k in range(n - 1, -1, -1):
        cv2.rectangle(colour, (x0s[k] - 2, y0s[k] - 2), (x1s[k] + 1, y1s[k] + 1), rgbs[k], -1)
    for k in range(n - 1, -1, -1):
        cv2.rectangle(colour, (x0s[k], y0s[k]), (x1s[k] - 1, y1s[k] - 1), rgbs[k], -1)
    x0, y0, x1, y1 = (np.asarray(v)[:, None] for v in (x0s, y0s, x1s, y1s))
    clash = (x0 < x1.T) & (x0.T < x1) & (y0 < y1.T) & (y0.T < y1)
    np.fill_diagonal(clash, False)
    bad = clash.any(1)
    if bad.any():
        px_owner = np.repeat(owner, counts)
        sel = bad[px_owner]
        rgb3 = np.dtype((np.void, 3))
        palette = np.asarray(rgbs, np.uint8)
        colour.view(rgb3).reshape(-1)[flat[sel]] = palette.view(rgb3).reshape(-1)[px_owner[sel]]


def _pick_chars(text: str, idx: np.ndarray) -> str:
    """The characters of `text` at positions `idx`, without a Python step per character."""
    return np.frombuffer(text.encode("utf-32-le"), np.uint32)[idx].tobytes().decode("utf-32-le")


def _script_of(ch: str) -> str:
    if ch.isspace():
        return "space"
    for name, rx in (("han", _HAN), ("latin", _LATIN), ("digit", _DIGIT)):
        if rx.match(ch):
            return name
    return "other"


_SCRIPT: dict[str, str] = {}


def _script_mix(text: str) -> dict[str, float]:
    """Share of visible characters that are Han, Latin letters, digits or other (punctuation, symbols)."""
    counts = {"han": 0, "latin": 0, "digit": 0, "other": 0, "space": 0}
    for ch, k in Counter(text).items():  # classify each distinct character once
        kind = _SCRIPT.get(ch)
        if kind is None:
            kind = _SCRIPT[ch] = _script_of(ch)
        counts[kind] += k
    n = max(len(text) - counts.pop("space"), 1)
    return {k: round(v / n, 4) for k, v in counts.items()}


def _nudge_inside(ink: np.ndarray, ox: np.ndarray, oy: np.ndarray, line: np.ndarray, n: int, W: int, H: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Glyph origins (ox, oy) with every line whose ink crosses the canvas's edge moved back inside by
    whole pixels (a script face's swash or a tall accent at a large size in a 2 px margin); lines already
    inside do not move, and a line too big for the canvas is left for the caller's check. Also returns
    each line's vertical shift (for its baseline)."""
    cb = ink + np.stack([ox, oy, ox, oy], 1)
    if cb[:, :2].min() >= 0 and cb[:, 2].max() <= W and cb[:, 3].max() <= H:  # the usual case: all inside
        return ox, oy, np.zeros(n, np.int64)
    lo = np.full((n, 2), np.iinfo(np.int64).max)
    hi = np.full((n, 2), np.iinfo(np.int64).min)
    np.minimum.at(lo, line, cb[:, :2])
    np.maximum.at(hi, line, cb[:, 2:])
    size = np.array([W, H])
    shift = np.where(lo < 0, -lo, np.where(hi > size, size - hi, 0))
    shift[(hi - lo > size) | (lo == np.iinfo(np.int64).max)] = 0
    if not shift.any():
        return ox, oy, shift[:, 1]
    return ox + shift[line, 0], oy + shift[line, 1], shift[:, 1]


def _sample_paper(rng: np.random.Generator, W: int, H: int, lay) -> dict[str, Any]:
    """A sheet of paper in the scene (`lay`: the LayoutConfig): box (x, y, w, h) covering `paper_size` of
    each side, a light tint, opacity."""
    w, h = (int(round(n * rng.uniform(*lay.paper_size))) for n in (W, H))
    x, y = int(rng.integers(0, W - w + 1)), int(rng.integers(0, H - h + 1))
    white = float(rng.uniform(*lay.paper_white))
    tint = [int(round(white - t)) for t in rng.uniform(0, lay.paper_tint, 3)]
    return {"box": [x, y, w, h], "colour": tint, "opacity": round(float(rng.uniform(*lay.paper_opacity)), 3)}


def lay_paper(bg: np.ndarray, paper: dict[str, Any]) -> np.ndarray:
    """`bg` with the sheet composited on it (a copy; deterministic, so re-rendering gives the same bytes)."""
    x, y, w, h = paper["box"]
    out = bg.copy()
    a = paper["opacity"]
    region = out[y:y + h, x:x + w].astype(np.float32)
    out[y:y + h, x:x + w] = np.rint(region * (1 - a) + np.float32(a) * np.asarray(paper["colour"], np.float32))
    return out


def _weighted(rng: np.random.Generator, items: tuple, weights: tuple[float, ...]):
    if not weights:
        return items[int(rng.integers(len(items)))]
    p = np.asarray(weights, float)
    return items[int(rng.choice(len(items), p=p / p.sum()))]


class Renderer:
    def __init__(self, cfg: RenderConfig, assets: Assets | None = None):
        self.cfg = cfg
        if assets is not None:  # built for another config, maybe: refuse now, not drop every character
            assets.fonts.require(cfg.text.langs)
        self.assets = assets or Assets(cfg)
        self.effects = fx.ordered(cfg.effects.enabled)
        self.legibility = _legibility(cfg.fonts.legibility, self.assets.fonts.faces, cfg.text.langs)

    # ---- measuring -------------------------------------------------------------------------------
    def _width(self, face: FontFace, px: int):
        """A function: string -> its advance width in px, in `face` at `px` (for line breaking)."""
        get = self.assets.glyphs.advances(face.path, face.index, px).__getitem__
        return lambda s: sum(map(get, s))

    # ---- sampling --------------------------------------------------------------------------------
    def background_pool(self, rng: np.random.Generator) -> list[int]:
        """The images one shard draws from (so each is decoded once per worker and cropped often)."""
        n = len(self.assets.backgrounds)
        k = min(n, self.cfg.backgrounds.per_shard)
        return sorted(int(i) for i in rng.choice(n, size=k, replace=False))

    def generate(self, rng: np.random.Generator, seeds: dict[str, int] | None = None,
                 pool: list[int] | None = None) -> Sample:
        """Sample all parameters from `rng` and render them."""
        cfg = self.cfg
        W, H = cfg.width, cfg.height
        level = int(_weighted(rng, cfg.levels, cfg.level_weights))
        lv = LEVELS[level]
        lang = str(_weighted(rng, cfg.text.langs, cfg.text.lang_weights))
        page = bool(rng.random() < cfg.layout.page_prob)
        # the photo and its crops come from a stream of their own, so that everything else a sample draws
        # (sheet, text, fonts, sizes, layout, colours' contrast) is the same whatever the backgrounds are:
        # text on flat white is then the same text as on the photos (the ablation's controlled pair)
        bg_rng = np.random.default_rng(int(rng.integers(2**63)))
        bg_i, img = self.assets.backgrounds.pick(bg_rng, pool or list(range(len(self.assets.backgrounds))))
        crops = [sample_crop(bg_rng, img.shape[:2], (W, H), cfg.backgrounds.scale)
                 for _ in range(abs(lv.background_tries))]
        busy = [self.assets.backgrounds.busyness(bg_i, c, W) for c in crops]
        j = int(np.argmin(busy) if lv.background_tries > 0 else np.argmax(busy))
        crop = crops[j]
        bg = apply_crop(img, crop, (W, H))
        paper = None
        if page and cfg.layout.paper_prob > 0 and rng.random() < cfg.layout.paper_prob:
            paper = _sample_paper(rng, W, H, cfg.layout)
            bg = lay_paper(bg, paper)
        lo, hi = cfg.px_range(level, lang)
        blocks, dropped = [], ""
        bg_lum = luminance_map(bg)
        bg_int = cv2.integral(bg_lum)  # for the mean luminance behind each line
        if paper is not None:
            x, y, w, h = paper["box"]
            regions = [((x + rx, y + ry, rw, rh), px, cols) for (rx, ry, rw, rh), px, cols in self._page_region(rng, w, h)]
        else:
            regions = self._page_region(rng, W, H) if page else self._scene_regions(rng, W, H, lo, hi)
        for region, px, columns in regions:
            block, lost = self._sample_block(rng, lang, page, region, px, columns, lv, bg_int)
            dropped += lost
            if block:
                blocks.append(block)
        params = {
            "size": [W, H], "level": level, "lang": lang, "mode": "page" if page else "scene",
            "background": {"index": bg_i, **name_fields("source", self.assets.backgrounds.refs[bg_i].name),
                           "crop": [crop.x, crop.y, crop.w, crop.h], "flip": crop.flip, "busyness": round(busy[j], 5),
                           **({"paper": paper} if paper is not None else {})},
            "blocks": blocks, "effects": [], "dropped_chars": dropped, "seeds": seeds or {},
        }
        return self._render(params, bg, rng, bg_lum)

    def _page_region(self, rng, W, H):
        m = int(rng.integers(self.cfg.layout.margin[0], self.cfg.layout.margin[1] + 1))
        columns = 2 if (rng.random() < self.cfg.layout.columns_prob and W >= 160) else 1
        return [((m, m, W - 2 * m, H - 2 * m), None, columns)]

    def _scene_regions(self, rng, W, H, lo, hi):
        taken: list[tuple[int, int, int, int]] = []
        out = []
        for _ in range(int(rng.integers(1, self.cfg.layout.max_blocks + 1))):
            px = int(rng.integers(lo, hi + 1))
            for _try in range(12):
                w = int(rng.uniform(0.3, 0.95) * W)
                h = int(min(H - 8, px * (1.35 * int(rng.integers(1, 5)) + 0.3)))
                x = int(rng.integers(4, max(5, W - w - 3)))
                y = int(rng.integers(4, max(5, H - h - 3)))
                r = (x, y, min(w, W - x - 4), h)
                if r[2] > 2 * px and y + h <= H - 4 and all(
                    x + r[2] + 3 < a or a + c + 3 < x or y + h + 3 < b or b + d + 3 < y for a, b, c, d in taken
                ):
                    taken.append(r)
                    out.append((r, px, 1))
                    break
        return out

    def _clear_edges(self, face: FontFace, px: int, text: str, region, columns: int, gap: int, spacing: float):
        """(region, gap, column width) narrowed so that glyphs whose ink reaches past their pen or advance
        (a script face's swashes, italic overhangs at large sizes) stay on the canvas where the region
        comes closer to its edge than that overhang; None when nothing needs to move (the usual case).
        `text`: the characters the block will draw (their glyphs are rasterised for drawing anyway)."""
        table = self.assets.glyphs.table(face.path, face.index, px)
        gids = table.gids(text)
        ink, adv = table.atlas.ink[gids], table.atlas.advance[gids]
        x, y, w, h = region
        left = max(0, int(-ink[:, 0].min(initial=0)) - x)
        right = max(0, int(np.ceil((ink[:, 2] - adv).max(initial=0))) - (self.cfg.width - x - w))
        if not left and not right:
            return None
        region = (x + left, y, w - left - right, h)
        gap = gap + left + right if columns > 1 else gap
        return region, gap, grid(region, px, spacing, columns, gap)[1]

    def _sample_block(self, rng, lang, page, region, px, columns, lv, bg_int):
        cfg = self.cfg
        if px is None:
            lo, hi = cfg.px_range(lv.level, lang)
            px = int(rng.integers(lo, hi + 1))
        spacing = round(float(rng.uniform(*cfg.layout.line_spacing)), 3)
        gap = max(px, int(region[2] * 0.05)) if columns > 1 else 0
        rows, col_w = grid(region, px, spacing, columns, gap)
        if rows <= 0:
            return None, ""
        per_line = col_w / (px * (0.5 if lang == "en" else 1.0))
        text = self.assets.text.sample(rng, lang, int(rows * columns * per_line * 1.25) + 8, page,
                                       cfg.text.zh_sampling == "balanced")
        text = _INVISIBLE.sub("", text.replace("\t", " "))
        fonts = self.assets.fonts
        if lang == "en" and rng.random() >= cfg.fonts.latin_in_cjk_font:
            cands = fonts.faces_for("latin", without="han")
        else:
            cands = fonts.faces_for("han" if lang != "en" else "latin")
        face, picked, lost = fonts.pick(text, cands, rng)
        floor = lv.readability[0]
        if self.legibility is not None and not self.legibility.admits(face, lang, px, floor):
            # the face does not read as well as the level promises at this size, even on a clean page:
            # choose again among those that do (the random stream changes only where this happens)
            fit = [f for f in cands if self.legibility.admits(f, lang, px, floor)]
            if fit:
                face, picked, lost = fonts.pick(text, fit, rng)
        text = picked
        indent = (2.0 if lang != "en" else 1.5) if (page and rng.random() < 0.5) else 0.0
        if col_w - indent * px < 2 * px:  # a column too narrow for its indent (small canvases, large text)
            indent = 0.0
        align = "left" if page else str(_weighted(rng, ("left", "center", "right"), (0.6, 0.25, 0.15)))
        width = self._width(face, px)
        lines = fill(text, width, rows * columns, col_w, indent, px)
        narrowed = self._clear_edges(face, px, "".join(t for t, _ in lines), region, columns, gap, spacing)
        if narrowed is not None:  # rare: overhanging ink at the canvas's edge
            region, gap, col_w = narrowed
            if col_w - indent * px < 2 * px:
                indent = 0.0
            lines = fill(text, width, rows * columns, col_w, indent, px)
        if not lines:
            return None, lost
        x, y, _, _ = region
        target = round(float(rng.uniform(*lv.contrast)), 3)
        ink = page and self.cfg.text.ink_share > 0 and rng.random() < self.cfg.text.ink_share
        if ink:  # printed: as dark as the page allows up to black, whatever the level's contrast
            target = round(float(rng.uniform(*INK_CONTRAST)), 3)
        # each line's colour meets the target against the mean luminance of the background behind it
        col, row = np.divmod(np.arange(len(lines)), rows)
        y0 = (y + row * px * spacing).astype(np.int64)
        x0 = (x + col * (col_w + gap)).astype(np.int64)
        ih, iw = bg_int.shape[0] - 1, bg_int.shape[1] - 1
        y1, x1 = np.minimum(y0 + int(px * spacing) + 1, ih), np.minimum(x0 + int(col_w) + 1, iw)
        local = (box_sum(bg_int, x0, y0, x1, y1) / ((y1 - y0) * (x1 - x0))).tolist()
        colours = colours_for_contrast(rng, local, target)
        block = {"region": list(region), "font": face.id, "char_px": px, "line_spacing": spacing, "align": align,
                 "columns": columns, "gap": gap, "indent": indent, "colours": colours,
                 "contrast_target": target, **({"ink": True} if ink else {}), "lines": [t for t, _ in lines], "para_starts": [s for _, s in lines]}
        return block, lost

    # ---- rendering -------------------------------------------------------------------------------
    def render(self, params: dict[str, Any]) -> Sample:
        """Re-render a sample from its recorded params (label["params"])."""
        b = params["background"]
        img = self.assets.backgrounds.image(b["index"])
        bg = apply_crop(img, Crop(*b["crop"], b["flip"]), tuple(params["size"]))
        if "paper" in b:
            bg = lay_paper(bg, b["paper"])
        return self._render(params, bg, None)

    def _draw(self, params: dict[str, Any]):
        """Compose every glyph of the sample in one vectorised pass.

        Returns the text coverage (H, W) float32 in 0..1, the text colour layer (H, W, 3) float32, line
        dicts, the inked characters as (string of them, line index of each), and the boxes (lines first,
        then characters) as (N, 4) x0 y0 x1 y1.
        """
        W, H = params["size"]
        self.assets.glyphs.trim()  # between samples: ids stay valid for the whole of this one
        lines: list[dict[str, Any]] = []
        texts, line_of, cbs, flats, vals, firsts, cnts = [], [], [], [], [], [], []
        nchars = 0
        for bi, blk in enumerate(params["blocks"]):
            if not blk["lines"]:
                continue
            face = self.assets.fonts.by_id[blk["font"]]
            px = blk["char_px"]
            table = self.assets.glyphs.table(face.path, face.index, px)
            text = "".join(blk["lines"])
            gids = table.gids(text)
            atlas = table.atlas
            pens, baselines = place(list(zip(blk["lines"], blk["para_starts"], strict=True)), atlas.advance[gids],
                                    tuple(blk["region"]), px, blk["line_spacing"], blk["align"], blk["columns"],
                                    blk["gap"], blk["indent"])
            keep = np.flatnonzero(atlas.inked[gids])
            if not len(keep):
                continue
            lens = np.fromiter(map(len, blk["lines"]), np.int64, len(blk["lines"]))
            ln_idx = np.repeat(np.arange(len(lens)), lens)[keep]  # line (within the block) of each inked char
            present, first = np.unique(ln_idx, return_index=True)  # lines with ink, and their first char
            g = gids[keep]
            ox = np.rint(pens[keep]).astype(np.int64)
            oy = baselines[ln_idx]
            ox, oy, dy = _nudge_inside(atlas.ink[g], ox, oy, ln_idx, len(lens), W, H)
            cb = atlas.ink[g] + np.stack([ox, oy, ox, oy], 1)
            pos, counts = atlas.pixels(g)
            flats.append(np.repeat(oy * W + ox, counts) + atlas.offsets(W)[pos])
            vals.append(atlas.val[pos])
            renum = np.full(len(lens), -1, np.int64)
            renum[present] = np.arange(len(lines), len(lines) + len(present))
            line_of.append(renum[ln_idx])
            firsts.append(first + nchars)
            nchars += len(keep)
            cbs.append(cb)
            cnts.append(counts)
            texts.append(text if len(keep) == len(text) else _pick_chars(text, keep))
            for k, base in zip(present.tolist(), (baselines + dy)[present].tolist(), strict=True):
                lines.append({"text": blk["lines"][k], "block": bi, "font": face.id, "char_px": px,
                              "colour": tuple(blk["colours"][k]), "_baseline": base})
        colour = np.zeros((H, W, 3), np.uint8)
        if not lines:
            return np.zeros((H, W), np.float32), colour.astype(np.float32), lines, ("", np.zeros(0, np.int64)), np.zeros((0, 4), np.int64)
        cb = np.concatenate(cbs)
        if cb[:, :2].min() < 0 or cb[:, 2].max() > W or cb[:, 3].max() > H:
            raise RuntimeError("glyph ink outside the canvas (layout bug)")
        flat = np.concatenate(flats)
        cover = np.bincount(flat, np.concatenate(vals), H * W)  # overlaps add, then clip
        np.minimum(cover, 255.0, out=cover)
        alpha = (cover * (1 / 255)).astype(np.float32).reshape(H, W)
        owner = np.concatenate(line_of)
        starts = np.concatenate(firsts)
        x0s, y0s = np.minimum.reduceat(cb[:, 0], starts), np.minimum.reduceat(cb[:, 1], starts)
        x1s, y1s = np.maximum.reduceat(cb[:, 2], starts), np.maximum.reduceat(cb[:, 3], starts)
        boxes = []
        x0s, y0s, x1s, y1s = x0s.tolist(), y0s.tolist(), x1s.tolist(), y1s.tolist()
        for ln, x0, top, x1, bottom in zip(lines, x0s, y0s, x1s, y1s, strict=True):
            base, px = ln.pop("_baseline"), ln["char_px"]
            y0, y1 = max(0, min(top, base - round(0.8 * px))), min(H, max(bottom, base + round(0.2 * px)))
            ln["ink_height_px"] = bottom - top
            boxes.append((x0, y0, x1, y1))
        _colour_lines(colour, [ln["colour"] for ln in lines], x0s, y0s, x1s, y1s, flat, owner, np.concatenate(cnts))
        colour = colour.astype(np.float32)
        return alpha, colour, lines, ("".join(texts), owner), np.concatenate([np.asarray(boxes, np.int64), cb])

    def _render(self, params: dict[str, Any], bg: np.ndarray, rng: np.random.Generator | None,
                bg_lum: np.ndarray | None = None) -> Sample:
        alpha, colour, lines, chars, b = self._draw(params)
        quads = b[:, [0, 1, 2, 1, 2, 3, 0, 3]].reshape(-1, 4, 2).astype(np.float64)  # clockwise from top-left
        layers = fx.Layers(bg.astype(np.float32), alpha, colour, quads)
        if rng is not None:  # sample effects now that the layout is known
            self._sample_effects(rng, params, lines, layers)
        else:
            for e in params["effects"]:
                if fx.REGISTRY[e["name"]].stage != "image":
                    fx.REGISTRY[e["name"]].apply(layers, e["params"])
        layers.composite()
        for e in params["effects"]:
            if fx.REGISTRY[e["name"]].stage == "image":
                fx.REGISTRY[e["name"]].apply(layers, e["params"])
        image = cv2.convertScaleAbs(layers.image)  # round and saturate to uint8 (no layer is ever negative)
        lum = luminance_map(layers.base) if layers.under else (bg_lum if bg_lum is not None else luminance_map(bg))
        return Sample(image, self._label(params, lines, chars, layers, lum), layers.alpha, b[len(lines):])

    def _sample_effects(self, rng, params, lines, layers) -> None:
        if not lines:
            return
        blocks = params["blocks"]
        colours = tuple(tuple(int(v) for v in ln["colour"]) for ln in lines)
        paper = params["background"].get("paper")  # text printed on a sheet stays on it when it turns
        sheet = None if paper is None else (lambda x, y, w, h: (x, y, x + w, y + h))(*paper["box"])
        for eff in self.effects:
            if rng.random() >= eff.probability(params["level"]) * self.cfg.effects.strength:
                continue
            q = layers.quads[: len(lines)]
            ctx = fx.EffectContext(
                size=tuple(params["size"]), level=params["level"], min_px=min(b["char_px"] for b in blocks),
                contrast_target=blocks[0]["contrast_target"], line_colours=colours,
                line_boxes=tuple(map(tuple, np.concatenate([q.min(1), q.max(1)], 1).tolist())), quads=layers.quads,
                area=sheet)
            p = eff.sample(rng, ctx)
            if p is None:
                continue
            params["effects"].append({"name": eff.name, "params": p})
            if eff.stage != "image":
                eff.apply(layers, p)

    def _label(self, params, lines, chars, layers: fx.Layers, lum: np.ndarray) -> dict[str, Any]:
        """The label (version 2, `render_engine.labels`); `lum` is the luminance behind the text
        (background plus under-layers). The characters' boxes are not in it: they are the sample's
        `char_boxes`, written beside it as the `chars.npy` member."""
        n = len(lines)
        quads = layers.quads
        a = layers.alpha
        if n:  # alpha-weighted mean luminance under each line's box, from two integral images
            H, W = a.shape
            lq = quads[:n]
            x0, y0 = np.maximum(np.floor(lq.min(1)).astype(np.int64), 0).T
            x1, y1 = np.minimum(np.ceil(lq.max(1)).astype(np.int64), [W, H]).T
            wsum = box_sum(cv2.integral(a), x0, y0, x1, y1)
            lsum = box_sum(cv2.integral(cv2.multiply(lum, a)), x0, y0, x1, y1)
            under = (lsum / np.maximum(wsum, 1e-6)).tolist()
            # without a geometric effect the boxes are whole pixels: written as ints
            boxes = np.round(lq, 3).tolist() if layers.warps else lq.astype(np.int64).tolist()
            for ln, q, u in zip(lines, boxes, under, strict=True):
                ln["box"] = q
                ln["contrast"] = round(contrast_ratio(luminance(ln.pop("colour")), u), 3)
            # a line's characters are its text without whitespace; only a line where they are not says so
            text_chars, pos = chars[0], 0
            for ln, k in zip(lines, np.bincount(chars[1], minlength=n).tolist(), strict=True):
                mine = text_chars[pos:pos + k]
                pos += k
                if mine != "".join(ln["text"].split()):
                    ln["chars"] = mine
        text = "\n".join(ln["text"] for ln in lines)
        faces = sorted({ln["font"] for ln in lines})
        lib = self.assets.fonts.by_id
        lv = LEVELS[params["level"]]
        return {
            "version": LABEL_VERSION,
            "text": text,
            "lang": params["lang"],
            "script_mix": _script_mix(text),
            "size": params["size"],
            "mode": params["mode"],
            "lines": lines,
            "char_boxes": {"member": CHARS_MEMBER, "count": len(chars[0]), "warp": [m.tolist() for m in layers.warps]},
            "fonts": [{"id": f, "file": Path(lib[f].source_file).name, "family": lib[f].family,
                       "style": lib[f].style, "face_index": lib[f].index} for f in faces],
            "char_px": sorted({ln["char_px"] for ln in lines}),
            "ink_height_px": float(np.median([ln["ink_height_px"] for ln in lines])) if lines else 0.0,
            "difficulty": {"level": lv.level, "name": lv.name, "char_px": list(scaled(lv.level, self.cfg.text.level_scale)),
                           "contrast": list(lv.contrast), "background_tries": lv.background_tries},
            "background": params["background"],
            "contrast": min((ln["contrast"] for ln in lines), default=None),
            "effects": params["effects"],
            "dropped_chars": len(params["dropped_chars"]),
            "seeds": params["seeds"],
            "params": params,
        }
