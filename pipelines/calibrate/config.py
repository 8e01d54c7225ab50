"""The calibration's config and the render configs it measures: one level as a render job draws it, or
one controlled cell (one face, one size, one effect). See the package doc."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from render_engine.config import LayoutConfig, RenderConfig
from render_engine.levels import LEVELS
from render_engine.levels import bands as level_bands

SCRIPT_OF_LANG = {"en": "latin", "zh": "han"}


@dataclass(frozen=True)
class CalibrateConfig:
    seed: int = 0
    # part 1: the levels as a render job draws them
    levels: tuple[int, ...] = (1, 2, 3, 4, 5)
    langs: tuple[str, ...] = ("en", "zh")
    samples_per_level: int = 40  # per level per language; 0 skips the levels
    samples_per_task: int = 10  # level samples per task
    examples_per_level: int = 6  # per level per language, shown on the page (each is one of the samples)
    # part 2: the cells (face x size x script x effect)
    samples_per_cell: int = 6  # 0 skips the cells
    faces: tuple[str, ...] = ()  # empty: every face; else ids, file names, file stems or families (any case)
    sizes: tuple[int, ...] = (5, 6, 8, 10, 13, 16, 20)  # em px: the levels span 5-20
    effects: tuple[str, ...] = ("none", "blur", "noise", "jpeg", "perspective")  # "none": no effect at all
    cjk_latin: bool = True  # also measure English set in faces that write Han (Latin in a Chinese font)
    cell_level: int = 1  # whose contrast, background choice and effect parameters the cells use
    # the cells' layout: "page" (a dense page crop in one column, on the paper sheet when render.layout's
    # paper_prob says so: by default always) or "scene" (1 to layout.max_blocks blocks straight on the photo)
    cell_mode: Literal["page", "scene"] = "page"
    # readability bands, best first: level 1 reads >= bands[0], level 2 >= bands[1], ..., level 5 below
    # bands[-1]; by default the levels' own (render_engine/levels.py: character error rates of 1, 3, 10, 40 %)
    bands: tuple[float, ...] = level_bands()
    # the base render config: canvas size, backgrounds, corpora and fonts (render.fonts picks the faces)
    render: RenderConfig = field(default_factory=RenderConfig)

    def __post_init__(self) -> None:
        from render_engine.effects import REGISTRY

        if not 0 <= self.seed < 2**63:
            raise ValueError("seed must be in [0, 2**63)")
        for n in ("samples_per_level", "samples_per_cell", "examples_per_level"):
            if getattr(self, n) < 0:
                raise ValueError(f"{n} must be >= 0")
        if self.samples_per_task < 1:
            raise ValueError("samples_per_task must be >= 1")
        if self.samples_per_level + self.samples_per_cell == 0:
            raise ValueError("samples_per_level and samples_per_cell are both 0: nothing to measure")
        bad = [lv for lv in self.levels if lv not in LEVELS]
        if bad or (self.samples_per_level and not self.levels):
            raise ValueError(f"levels: {bad or 'empty'} not in {sorted(LEVELS)}")
        bad = [lang for lang in self.langs if lang not in SCRIPT_OF_LANG]
        if bad or not self.langs:
            raise ValueError(f"langs: {bad or 'empty'} not in {sorted(SCRIPT_OF_LANG)}")
        if self.cell_level not in LEVELS:
            raise ValueError(f"cell_level {self.cell_level} not in {sorted(LEVELS)}")
        unknown = [e for e in self.effects if e != "none" and e not in REGISTRY]
        if unknown:
            raise ValueError(f"effects: unknown {unknown}; known: none, {', '.join(sorted(REGISTRY))}")
        for e in self.effects:
            if e != "none" and REGISTRY[e].probability(self.cell_level) <= 0:
                raise ValueError(f"effects: {e} never applies at cell_level {self.cell_level}")
        if len(set(self.effects)) != len(self.effects) or len(set(self.sizes)) != len(self.sizes):
            raise ValueError("effects and sizes must not repeat")
        if self.samples_per_cell and not (self.sizes and self.effects):
            raise ValueError("sizes and effects must not be empty when samples_per_cell > 0")
        if list(self.bands) != sorted(self.bands, reverse=True) or not all(0 < b <= 1 for b in self.bands) \
                or len(self.bands) != len(LEVELS) - 1:
            raise ValueError(f"bands: {len(LEVELS) - 1} thresholds in (0, 1], best first, got {list(self.bands)}")
        for lv in self.levels if self.samples_per_level else ():
            for lang in self.langs:
                level_config(self, lv, lang)  # raises (naming the level) if render cannot draw it
        for s in self.sizes if self.samples_per_cell else ():
            for lang in self.langs:
                try:
                    cell_config(self, "font.ttf", ("latin", "han"), lang, s, "none")
                except ValueError as e:
                    raise ValueError(f"sizes: {s} px cannot be rendered ({e})") from None


# ---- the render configs ---------------------------------------------------------------------------

def level_config(cfg: CalibrateConfig, level: int, lang: str) -> RenderConfig:
    """The render config restricted to one level and one language (everything else as `cfg.render`)."""
    r = cfg.render
    return replace(r, levels=(level,), level_weights=(), text=replace(r.text, langs=(lang,), lang_weights=()))


def effect_strength(effect: str, level: int) -> float:
    """`effects.strength` that makes `effect`'s chance at `level` reach 1 (the engine applies an effect when
    rng.random() < p_by_level[level] * strength, and rng.random() < 1); 0 for "none"."""
    from render_engine.effects import REGISTRY

    if effect == "none":
        return 0.0
    return 1.0001 / REGISTRY[effect].probability(level)


def cell_config(cfg: CalibrateConfig, font_file: str, scripts: tuple[str, ...], lang: str, size: int,
                effect: str) -> RenderConfig:
    """The controlled render config of one cell: one font file, em size `size`, `cfg.cell_mode`'s layout (by
    default a page in one column), `cfg.cell_level`'s contrast and background, only `effect` (always
    applied). See the module doc."""
    r = cfg.render
    lo = LEVELS[cfg.cell_level].char_px[0]
    text = replace(r.text, langs=(lang,), lang_weights=(), char_px=(size, size), char_px_by_lang={},
                   level_scale=size / lo)
    in_cjk = 1.0 if lang == "en" and "han" in scripts else 0.0  # English in a Chinese face: always that face
    fonts = replace(r.fonts, dirs=(font_file,), include_bundled=False, latin_in_cjk_font=in_cjk, legibility="none")
    layout: LayoutConfig = replace(r.layout, page_prob=1.0 if cfg.cell_mode == "page" else 0.0, columns_prob=0.0)
    effects = replace(r.effects, enabled=() if effect == "none" else (effect,),
                      strength=effect_strength(effect, cfg.cell_level))
    out = replace(r, levels=(cfg.cell_level,), level_weights=(), text=text, fonts=fonts, layout=layout,
                  effects=effects)
    got = out.px_range(cfg.cell_level, lang)
    if got != (size, size):  # cannot happen with level_scale = size / lo; guards the rounding
        raise ValueError(f"cell size {size} px drew {got}")
    return out

