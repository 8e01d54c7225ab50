"""RenderConfig: every knob of one rendered sample, as nested frozen dataclasses.

Load it with `textinfuse.configio.load(RenderConfig, path, overrides)`; values are checked here.
Empty source lists mean "the bundled data" (fonts/, corpora/, backgrounds/).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .levels import LEVELS, size_range

LANGS = ("en", "zh", "mixed")


def _check_range(name: str, r: tuple[float, float], lo: float, hi: float) -> None:
    if not (lo <= r[0] <= r[1] <= hi):
        raise ValueError(f"{name} must satisfy {lo} <= min <= max <= {hi}, got {list(r)}")


@dataclass(frozen=True)
class TextConfig:
    """Languages, their weights, the em-size range and where text comes from."""

    langs: tuple[str, ...] = ("en", "zh")
    lang_weights: tuple[float, ...] = ()  # empty: equal
    char_px: tuple[int, int] = (5, 20)  # em size in px, inclusive
    corpora: str = ""  # folder with en/*.txt and zh/*.txt; "" = bundled corpora/
    zh_sampling: Literal["natural", "balanced"] = "natural"  # balanced: rare charset characters too
    charset: str = ""  # character list for balanced sampling; "" = bundled GB2312 level 1
    char_px_by_lang: dict[str, tuple[int, int]] = field(default_factory=dict)  # narrows char_px per language
    level_scale: float = 1.0  # multiplies every level's em range (levels.scaled); char_px still bounds it
    # chance a page block is printed in ink (levels.INK_CONTRAST: dark on a light page, as documents and
    # screens are) instead of at its level's contrast; scene text always takes the level's contrast
    ink_share: float = 0.5

    def __post_init__(self) -> None:
        bad = [lang for lang in self.langs if lang not in LANGS]
        if bad or not self.langs:
            raise ValueError(f"text.langs: {bad or 'empty'} not in {LANGS}")
        if self.lang_weights and (len(self.lang_weights) != len(self.langs) or min(self.lang_weights) < 0
                                  or sum(self.lang_weights) <= 0):
            raise ValueError("text.lang_weights must be one non-negative weight per language, not all zero")
        _check_range("text.char_px", self.char_px, 5, 64)
        if not 0.25 <= self.level_scale <= 4.0:
            raise ValueError(f"text.level_scale {self.level_scale}: use 0.25-4")
        if not 0 <= self.ink_share <= 1:
            raise ValueError(f"text.ink_share {self.ink_share}: must be in [0, 1]")
        for lang, r in self.char_px_by_lang.items():
            if lang not in LANGS:
                raise ValueError(f"text.char_px_by_lang: {lang!r} not in {LANGS}")
            _check_range(f"text.char_px_by_lang.{lang}", r, 5, 64)

    def px_for(self, lang: str) -> tuple[int, int]:
        """The job's em-size range for one language."""
        lo, hi = self.char_px_by_lang.get(lang, self.char_px)
        return max(lo, self.char_px[0]), min(hi, self.char_px[1])


@dataclass(frozen=True)
class FontConfig:
    dirs: tuple[str, ...] = ()  # font folders or files; empty = bundled fonts/
    include_bundled: bool = True  # also use bundled fonts when dirs are given
    latin_in_cjk_font: float = 0.2  # chance English text is set in a Chinese font (as in zh documents)
    # measured legibility per face (render_engine/legibility.py): "bundled" (fonts/legibility.json), a
    # calibration's legibility.json for other faces, or "none"; a face is drawn at a level only at sizes
    # where it reads at least the level's readability floor
    legibility: str = "bundled"


@dataclass(frozen=True)
class BackgroundConfig:
    sources: tuple[str, ...] = ()  # folders, globs, image files or .tar shards; empty = bundled
    scale: tuple[float, float] = (0.5, 2.0)  # source px per output px (log-uniform)
    per_shard: int = 12  # distinct images one shard draws from (each decoded once per worker)
    max_pixels: int = 64_000_000  # larger images are refused (decompression bombs); PIL caps it at 178,956,970
    min_side: int = 16  # smaller images are refused

    def __post_init__(self) -> None:
        _check_range("backgrounds.scale", self.scale, 0.05, 20)
        if self.per_shard < 1 or self.max_pixels < 1 or self.min_side < 1:
            raise ValueError("backgrounds.per_shard, max_pixels and min_side must be positive")


@dataclass(frozen=True)
class LayoutConfig:
    page_prob: float = 0.5  # chance of a dense page crop (else scene text: a few blocks)
    max_blocks: int = 4  # scene blocks per image
    columns_prob: float = 0.25  # chance a page crop is set in two columns
    line_spacing: tuple[float, float] = (1.15, 1.6)  # line pitch in em
    margin: tuple[int, int] = (2, 12)  # page margin in px
    # chance a page crop is a sheet of paper lying in the scene: a light, nearly opaque rectangle covering
    # most of the canvas, the photo around it and faintly through it; its text is set on the sheet. On by
    # default: the text-infusion ablation measured page text set straight on photos teaching an autoencoder
    # to read real documents far less than the same text on a sheet (README, "The text-infusion ablation")
    paper_prob: float = 1.0
    paper_opacity: tuple[float, float] = (0.9, 1.0)  # of the sheet over the photo (1: the photo is hidden)
    paper_size: tuple[float, float] = (0.9, 1.0)  # the sheet's side as a share of the canvas's, per side
    paper_white: tuple[float, float] = (225.0, 255.0)  # the sheet's brightness (0-255) before its tint
    paper_tint: float = 18.0  # at most this much is taken off each channel of the sheet's colour

    def __post_init__(self) -> None:
        for n in ("page_prob", "columns_prob", "paper_prob"):
            if not 0 <= getattr(self, n) <= 1:
                raise ValueError(f"layout.{n} must be in [0, 1]")
        if self.max_blocks < 1:
            raise ValueError("layout.max_blocks must be >= 1")
        _check_range("layout.line_spacing", self.line_spacing, 1.0, 3.0)
        _check_range("layout.margin", self.margin, 0, 100)
        _check_range("layout.paper_opacity", self.paper_opacity, 0, 1)
        _check_range("layout.paper_size", self.paper_size, 0.05, 1)
        _check_range("layout.paper_white", self.paper_white, 0, 255)
        if not 0 <= self.paper_tint <= 255:
            raise ValueError("layout.paper_tint must be in [0, 255]")


def _default_effects() -> tuple[str, ...]:
    from .effects import default_enabled

    return default_enabled()


@dataclass(frozen=True)
class EffectsConfig:
    # default: every registered effect that is on by default (today plate, stroke, shadow, rotate,
    # perspective, blur, noise, jpeg); an effect module or plugin file is active without editing this
    enabled: tuple[str, ...] = field(default_factory=_default_effects)
    strength: float = 1.0  # multiplies every effect's per-level chance (0 disables all)

    def __post_init__(self) -> None:
        from .effects import REGISTRY

        unknown = [n for n in self.enabled if n not in REGISTRY]
        if unknown:
            raise ValueError(f"effects.enabled: unknown {unknown}; known: {sorted(REGISTRY)}")
        if self.strength < 0:
            raise ValueError("effects.strength must be >= 0")


@dataclass(frozen=True)
class RenderConfig:
    """One sample's recipe. Levels are drawn with `level_weights` (empty: equal)."""

    width: int = 256
    height: int = 256
    levels: tuple[int, ...] = (1, 2, 3, 4, 5)
    level_weights: tuple[float, ...] = ()
    text: TextConfig = field(default_factory=TextConfig)
    fonts: FontConfig = field(default_factory=FontConfig)
    backgrounds: BackgroundConfig = field(default_factory=BackgroundConfig)
    layout: LayoutConfig = field(default_factory=LayoutConfig)
    effects: EffectsConfig = field(default_factory=EffectsConfig)

    def __post_init__(self) -> None:
        if not (32 <= self.width <= 8192 and 32 <= self.height <= 8192):
            raise ValueError(f"size {self.width}x{self.height}: each side must be 32..8192 px")
        bad = [lv for lv in self.levels if lv not in LEVELS]
        if bad or not self.levels:
            raise ValueError(f"levels: {bad or 'empty'} not in {sorted(LEVELS)}")
        if self.level_weights and (len(self.level_weights) != len(self.levels) or min(self.level_weights) < 0
                                   or sum(self.level_weights) <= 0):
            raise ValueError("level_weights must be one non-negative weight per level, not all zero")
        for lv in self.levels:
            for lang in self.text.langs:
                self.px_range(lv, lang)  # raises if a level cannot be drawn in a language

    def px_range(self, level: int, lang: str) -> tuple[int, int]:
        """Em-size range of one level in one language: level range ∩ char_px ∩ char_px_by_lang."""
        try:
            return size_range(level, self.text.px_for(lang), self.text.level_scale)
        except ValueError as e:
            raise ValueError(f"{e} (language {lang})") from None
