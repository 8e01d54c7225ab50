"""The renderer: `generate(seeds)` samples every parameter then renders; `render(params)` re-renders.

A sample's parameters (background crop, blocks with their exact lines, fonts, sizes, colours, effects)
are plain JSON and stored in its label under "params", so any sample can be re-rendered byte for byte
with `Renderer.render(label["params"])`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from . import effects as fx
from .backgrounds import BackgroundSet, Crop, apply_crop, expand_sources, sample_crop
from .color import colour_for_contrast, contrast_ratio, luminance, luminance_map
from .config import RenderConfig
from .fonts import FontFace, FontLibrary
from .glyphs import GlyphCache
from .layout import fill, grid, place
from .levels import LEVELS
from .paths import bundled_backgrounds, bundled_corpora, bundled_fonts
from .text import TextSource

log = logging.getLogger(__name__)
LABEL_VERSION = 1
# control and format characters (no ink, no meaning for OCR): removed from text before layout
_INVISIBLE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")


@dataclass
class Sample:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    label: dict[str, Any]
    alpha: np.ndarray  # (H, W) float32 text coverage after geometry (for checks and debugging)


class Assets:
    """Fonts, glyph cache, text and backgrounds for one config; build once per worker process."""

    def __init__(self, cfg: RenderConfig):
        fdirs = [*cfg.fonts.dirs, *([bundled_fonts()] if cfg.fonts.include_bundled or not cfg.fonts.dirs else [])]
        self.fonts = FontLibrary.load(fdirs)
        self.glyphs = GlyphCache()
        corpora = Path(cfg.text.corpora) if cfg.text.corpora else bundled_corpora()
        charset = Path(cfg.text.charset) if cfg.text.charset else bundled_corpora() / "charsets" / "gb2312_level1.txt"
        self.text = TextSource(corpora, charset if charset.exists() else None)
        if any(lang != "en" for lang in cfg.text.langs):
            self.text.preload()
        refs, self.background_problems = expand_sources(list(cfg.backgrounds.sources) or [str(bundled_backgrounds())])
        b = cfg.backgrounds
        self.backgrounds = BackgroundSet(refs, b.max_pixels, b.min_side)


_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
_DIGIT = re.compile(r"\d")
_SPACE = re.compile(r"\s")


def _script_mix(text: str) -> dict[str, float]:
    """Share of visible characters that are Han, Latin letters, digits or other (punctuation, symbols)."""
    n = len(text) - len(_SPACE.findall(text))
    han, latin, digit = (len(r.findall(text)) for r in (_HAN, _LATIN, _DIGIT))
    counts = {"han": han, "latin": latin, "digit": digit, "other": n - han - latin - digit}
    return {k: round(v / max(n, 1), 4) for k, v in counts.items()}


def _weighted(rng: np.random.Generator, items: tuple, weights: tuple[float, ...]):
    if not weights:
        return items[int(rng.integers(len(items)))]
    p = np.asarray(weights, float)
    return items[int(rng.choice(len(items), p=p / p.sum()))]


class Renderer:
    def __init__(self, cfg: RenderConfig, assets: Assets | None = None):
        self.cfg = cfg
        self.assets = assets or Assets(cfg)
        self.effects = fx.ordered(cfg.effects.enabled)

    # ---- measuring -------------------------------------------------------------------------------
    def _measure(self, face: FontFace, px: int):
        table = self.assets.glyphs.advances(face.path, face.index, px)
        get = table.__getitem__
        return (lambda s: sum(map(get, s))), get

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
        bg_i, img = self.assets.backgrounds.pick(rng, pool or list(range(len(self.assets.backgrounds))))
        crops = [sample_crop(rng, img.shape[:2], (W, H), cfg.backgrounds.scale) for _ in range(abs(lv.background_tries))]
        busy = [self.assets.backgrounds.busyness(bg_i, c, W) for c in crops]
        j = int(np.argmin(busy) if lv.background_tries > 0 else np.argmax(busy))
        crop = crops[j]
        bg = apply_crop(img, crop, (W, H))
        lo, hi = cfg.px_range(level, lang)
        blocks, dropped = [], ""
        bg_lum = luminance_map(bg)
        regions = self._page_region(rng, W, H) if page else self._scene_regions(rng, W, H, lo, hi)
        for region, px, columns in regions:
            block, lost = self._sample_block(rng, lang, page, region, px, columns, lv, bg_lum)
            dropped += lost
            if block:
                blocks.append(block)
        params = {
            "size": [W, H], "level": level, "lang": lang, "mode": "page" if page else "scene",
            "background": {"index": bg_i, "source": self.assets.backgrounds.refs[bg_i].name,
                           "crop": [crop.x, crop.y, crop.w, crop.h], "flip": crop.flip, "busyness": round(busy[j], 5)},
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

    def _sample_block(self, rng, lang, page, region, px, columns, lv, bg_lum):
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
        face, text, lost = fonts.pick(text, cands, rng)
        indent = (2.0 if lang != "en" else 1.5) if (page and rng.random() < 0.5) else 0.0
        align = "left" if page else str(_weighted(rng, ("left", "center", "right"), (0.6, 0.25, 0.15)))
        width, _ = self._measure(face, px)
        lines = fill(text, width, rows * columns, col_w, indent, px)
        if not lines:
            return None, lost
        x, y, _, _ = region
        target = round(float(rng.uniform(*lv.contrast)), 3)
        colours = []
        for i in range(len(lines)):  # each line's colour meets the target against the background behind it
            col, row = divmod(i, rows)
            ly, lx = int(y + row * px * spacing), int(x + col * (col_w + gap))
            local = float(bg_lum[ly : ly + int(px * spacing) + 1, lx : lx + int(col_w) + 1].mean())
            colours.append(list(colour_for_contrast(rng, local, target)))
        block = {"region": list(region), "font": face.id, "char_px": px, "line_spacing": spacing, "align": align,
                 "columns": columns, "gap": gap, "indent": indent, "colours": colours,
                 "contrast_target": target, "lines": [t for t, _ in lines], "para_starts": [s for _, s in lines]}
        return block, lost

    # ---- rendering -------------------------------------------------------------------------------
    def render(self, params: dict[str, Any]) -> Sample:
        """Re-render a sample from its recorded params (label["params"])."""
        b = params["background"]
        img = self.assets.backgrounds.image(b["index"])
        bg = apply_crop(img, Crop(*b["crop"], b["flip"]), tuple(params["size"]))
        return self._render(params, bg, None)

    def _draw(self, params: dict[str, Any]):
        """Compose every glyph of the sample in one vectorised pass.

        Returns the alpha (H, W) uint8, the text colour layer (H, W, 3) uint8, line dicts, (char, line)
        pairs for every inked character, and the boxes (lines first, then characters) as (N, 4) x0 y0 x1 y1.
        """
        W, H = params["size"]
        glyphs = self.assets.glyphs
        lines: list[dict[str, Any]] = []
        chars: list[tuple[str, int]] = []
        gls, pens, bases = [], [], []
        for bi, blk in enumerate(params["blocks"]):
            face = self.assets.fonts.by_id[blk["font"]]
            px = blk["char_px"]
            table = glyphs.table(face.path, face.index, px)
            width, adv = self._measure(face, px)
            laid = place(list(zip(blk["lines"], blk["para_starts"], strict=True)), width, adv, tuple(blk["region"]),
                         px, blk["line_spacing"], blk["align"], blk["columns"], blk["gap"], blk["indent"])
            for ln, rgb in zip(laid, blk["colours"], strict=True):
                li, n0 = len(lines), len(gls)
                for ch, pen in zip(ln.text, ln.xs, strict=True):
                    gl = table[ch]
                    if gl.ink is not None:
                        gls.append(gl)
                        pens.append(pen)
                        chars.append((ch, li))
                if len(gls) > n0:
                    bases.extend([ln.baseline] * (len(gls) - n0))
                    lines.append({"text": ln.text, "block": bi, "font": face.id, "char_px": px,
                                  "colour": tuple(rgb), "_baseline": ln.baseline, "_first": n0})
        if len(lines) > 254:
            raise ValueError(f"{len(lines)} lines in one sample (at most 254)")
        alpha = np.zeros((H, W), np.uint8)
        index = np.zeros((H, W), np.uint8)  # which line's colour each pixel takes (palette index)
        palette = np.zeros((256, 1, 3), np.uint8)
        if not gls:
            return alpha, cv2.merge([index, index, index]), lines, chars, np.zeros((0, 4))
        ox = np.rint(np.asarray(pens)).astype(np.int32)
        oy = np.asarray(bases, np.int32)
        ink = np.asarray([g.ink for g in gls], np.int32)
        cb = np.stack([ox + ink[:, 0], oy + ink[:, 1], ox + ink[:, 2], oy + ink[:, 3]], 1)
        if cb[:, :2].min() < 0 or cb[:, 2].max() > W or cb[:, 3].max() > H:
            raise RuntimeError("glyph ink outside the canvas (layout bug)")
        counts = np.fromiter((len(g.val) for g in gls), np.int64, len(gls))
        flat = ((np.repeat(oy, counts) + np.concatenate([g.dy for g in gls])) * W
                + np.repeat(ox, counts) + np.concatenate([g.dx for g in gls]))
        cover = np.bincount(flat, np.concatenate([g.val for g in gls]), H * W)  # overlaps add, then clip
        alpha = np.minimum(cover, 255).astype(np.uint8).reshape(H, W)
        starts = np.array([ln["_first"] for ln in lines])
        index.reshape(-1)[flat] = np.repeat(np.repeat(np.arange(1, len(lines) + 1, dtype=np.uint8),
                                                      np.diff(np.append(starts, len(gls)))), counts)
        x0s, y0s = np.minimum.reduceat(cb[:, 0], starts), np.minimum.reduceat(cb[:, 1], starts)
        x1s, y1s = np.maximum.reduceat(cb[:, 2], starts), np.maximum.reduceat(cb[:, 3], starts)
        boxes = []
        for k, ln in enumerate(lines):
            palette[k + 1, 0] = ln["colour"]
            base, px = ln.pop("_baseline"), ln["char_px"]
            del ln["_first"]
            x0, x1, top, bottom = int(x0s[k]), int(x1s[k]), int(y0s[k]), int(y1s[k])
            y0, y1 = max(0, min(top, base - round(0.8 * px))), min(H, max(bottom, base + round(0.2 * px)))
            ln["ink_height_px"] = bottom - top
            boxes.append((x0, y0, x1, y1))
            # colour the empty surroundings too, so warps never blend the text with a stray colour
            reg = index[max(0, top - 2) : bottom + 2, max(0, x0 - 2) : x1 + 2]
            np.copyto(reg, k + 1, where=reg == 0)
        colour = cv2.LUT(cv2.merge([index, index, index]), palette)
        return alpha, colour, lines, chars, np.concatenate([np.asarray(boxes, np.int32).reshape(-1, 4), cb])

    def _render(self, params: dict[str, Any], bg: np.ndarray, rng: np.random.Generator | None,
                bg_lum: np.ndarray | None = None) -> Sample:
        alpha8, colour, lines, chars, b = self._draw(params)
        quads = b[:, [0, 1, 2, 1, 2, 3, 0, 3]].reshape(-1, 4, 2).astype(np.float64)  # clockwise from top-left
        layers = fx.Layers(bg.astype(np.float32), alpha8.astype(np.float32) / 255.0, colour.astype(np.float32), quads)
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
        image = cv2.convertScaleAbs(cv2.max(layers.image, 0.0))  # round and saturate to uint8
        lum = luminance_map(layers.base) if layers.under else (bg_lum if bg_lum is not None else luminance_map(bg))
        return Sample(image, self._label(params, lines, chars, layers, lum), layers.alpha)

    def _sample_effects(self, rng, params, lines, layers) -> None:
        if not lines:
            return
        blocks = params["blocks"]
        for eff in self.effects:
            if rng.random() >= eff.probability(params["level"]) * self.cfg.effects.strength:
                continue
            q = layers.quads[: len(lines)]
            ctx = fx.EffectContext(
                size=tuple(params["size"]), level=params["level"], min_px=min(b["char_px"] for b in blocks),
                contrast_target=blocks[0]["contrast_target"],
                line_colours=tuple(tuple(int(v) for v in ln["colour"]) for ln in lines),
                line_boxes=tuple((float(a[:, 0].min()), float(a[:, 1].min()), float(a[:, 0].max()), float(a[:, 1].max())) for a in q),
                quads=layers.quads)
            p = eff.sample(rng, ctx)
            if p is None:
                continue
            params["effects"].append({"name": eff.name, "params": p})
            if eff.stage != "image":
                eff.apply(layers, p)

    def _label(self, params, lines, chars, layers: fx.Layers, lum: np.ndarray) -> dict[str, Any]:
        """The label; `lum` is the luminance behind the text (background plus under-layers)."""
        n = len(lines)
        quads = layers.quads
        a = layers.alpha
        for i, (ln, q) in enumerate(zip(lines, np.round(quads[:n], 3).tolist(), strict=True)):
            ln["box"] = q
            x0, y0 = np.maximum(np.floor(quads[i].min(0)).astype(int), 0)
            x1, y1 = np.ceil(quads[i].max(0)).astype(int)
            w = a[y0:y1, x0:x1]
            under = float((lum[y0:y1, x0:x1] * w).sum() / max(float(w.sum()), 1e-6))
            ln["contrast"] = round(contrast_ratio(luminance(ln.pop("colour")), under), 3)
        cq = quads[n:]
        exact = cq.astype(np.int32)  # without a geometric effect the boxes are whole pixels: write ints
        boxes = exact.tolist() if np.array_equal(exact, cq) else np.round(cq, 3).tolist()
        chars = [{"char": c, "line": li, "box": q} for (c, li), q in zip(chars, boxes, strict=True)]
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
            "characters": chars,
            "fonts": [{"id": f, "file": Path(lib[f].source_file).name, "family": lib[f].family,
                       "style": lib[f].style, "face_index": lib[f].index} for f in faces],
            "char_px": sorted({ln["char_px"] for ln in lines}),
            "ink_height_px": float(np.median([ln["ink_height_px"] for ln in lines])) if lines else 0.0,
            "difficulty": {"level": lv.level, "name": lv.name, "char_px": list(lv.char_px),
                           "contrast": list(lv.contrast), "background_tries": lv.background_tries},
            "background": params["background"],
            "contrast": min((ln["contrast"] for ln in lines), default=None),
            "effects": params["effects"],
            "dropped_chars": len(params["dropped_chars"]),
            "seeds": params["seeds"],
            "params": params,
        }
