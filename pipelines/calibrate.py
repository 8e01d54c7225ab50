"""Readability calibration: how well the bundled OCR reads each difficulty level, and each face at each size.

`run_calibrate(cfg, out_dir)` measures two things with `textinfuse.ocr.read` and the order-free character
F1 of its output against the label (`textinfuse.metrics.char_f1`):

1. **Levels**: `samples_per_level` samples per level (1-5) per language (en, zh), rendered with the
   `render` config restricted to that level and language, i.e. exactly what a render job draws there.
   Reported per level and language: mean, std, median, 10th percentile and n of the per-sample F1.
2. **Cells**: for each face (bundled, or `render.fonts`'s), each em size in `sizes`, each script the
   face writes (en for Latin, zh for Han; `cjk_latin` adds English set in Chinese faces) and each effect
   in `effects` ("none" or an effect of `render_engine/effects/`), `samples_per_cell` controlled samples:
   that one face, that em size, page layout (one column, on the paper sheet; `cell_mode: scene` sets
   scene text straight on the photo instead), the contrast and background choice of `cell_level` (level
   1: WCAG 7-21, calmest of 4 crops) and only that effect, with its chance raised to 1
   (`effects.strength` = 1 / the effect's chance at `cell_level`; an effect may still decline a sample,
   perspective where the warp would push text off the canvas: `applied` counts where it did).
   The size is fixed honestly, not by a level whose range happens to cover it: `text.level_scale` stretches
   `cell_level`'s em range so that it starts at the size (size / range start) and `text.char_px` is
   [size, size], so every block of every sample is set at exactly that size and the label's
   `difficulty.char_px` says so. Effect parameters are `cell_level`'s (level 1: blur sigma 0.3-0.9,
   noise sigma 1.5-4, JPEG quality 70-95, perspective corners up to 3 % of the canvas).

Cost of the defaults (16 bundled faces: 11 Latin, 5 Chinese that also write Latin): levels 5 x 2 x 40 =
400 OCR calls; cells (11 + 5 x 2 = 21 face-scripts) x 6 sizes x 5 effects = 630 cells x 6 = 3,780 OCR
calls; 4,180 in all, one per sample. Measured per sample (render + OCR, 256x256, one busy core): ~1 s for
the level mix, ~2 s for a cell (a dense page: many lines to recognise): ~8,000 core-seconds, about 8-10
minutes on 16 cores (`--executor ray --workers 16`), over two hours on one. Shrink it with `sizes`,
`effects`, `faces` and the sample counts.

Work runs on the project's executors: one task per cell and one per `samples_per_task` level samples,
each sample seeded from (seed, what it measures, its index), so results do not depend on worker count,
chunking or order. A sample that fails to render, or whose OCR raises, is counted (per level and per
cell, with the first errors' messages) and left out of the statistics; a sample without any text is
counted as `empty` and left out too; a face that cannot be loaded fails its cells only, and fonts the
library skipped are listed. None of these ends the run.

Outputs, in DIR: `calibration.json` (config, config hash, versions, the per-level table, one row per
cell, summaries), `calibration.html` (self-contained: charts as inline PNG), `levels.png` (mean F1 per
level per language, std as error bars) and `examples/` (the example images the page shows).
`calibration.json` is written last: a folder holding it with the same config hash is reused as it is (no
OCR at all; missing charts or page are redrawn from it) unless `overwrite`; one from another config is
refused unless `overwrite`. Until then every finished task is appended to `calibration.partial.jsonl`
(its example images already in `examples/`): a run stopped before the end (Ctrl-C, a lost machine) and
started again with the same config in the same folder measures only the tasks that are missing (a task
that failed is measured again); another config is refused there too, and `overwrite` starts over. The
file goes when the run completes. `seconds` in the JSON is the last run's wall time; `task_seconds` sums every task's.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from render_engine.config import LayoutConfig, RenderConfig
from render_engine.labels import label_text
from render_engine.levels import LEVELS
from textinfuse.configio import config_hash, to_dict
from textinfuse.metrics import char_f1
from textinfuse.progress import Progress

from .executors import Executor, LocalExecutor, describe
from .jobdir import FolderInUse
from .shards import write_json_atomic

log = logging.getLogger(__name__)

JSON_NAME = "calibration.json"
HTML_NAME = "calibration.html"
LEVELS_PNG = "levels.png"
EXAMPLES = "examples"
PARTIAL = "calibration.partial.jsonl"  # finished tasks of a run not yet done (see run_calibrate)
SCRIPT_OF_LANG = {"en": "latin", "zh": "han"}
CAL_VERSION = 1


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
    sizes: tuple[int, ...] = (6, 8, 10, 13, 16, 20)  # em px
    effects: tuple[str, ...] = ("none", "blur", "noise", "jpeg", "perspective")  # "none": no effect at all
    cjk_latin: bool = True  # also measure English set in faces that write Han (Latin in a Chinese font)
    cell_level: int = 1  # whose contrast, background choice and effect parameters the cells use
    # the cells' layout: "page" (a dense page crop in one column, on the paper sheet when render.layout's
    # paper_prob says so: by default always) or "scene" (1 to layout.max_blocks blocks straight on the photo)
    cell_mode: Literal["page", "scene"] = "page"
    # readability bands, best first: level 1 reads >= bands[0], level 2 >= bands[1], ..., level 5 below bands[-1]
    bands: tuple[float, ...] = (0.97, 0.9, 0.7, 0.4)
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
    fonts = replace(r.fonts, dirs=(font_file,), include_bundled=False, latin_in_cjk_font=in_cjk)
    layout: LayoutConfig = replace(r.layout, page_prob=1.0 if cfg.cell_mode == "page" else 0.0, columns_prob=0.0)
    effects = replace(r.effects, enabled=() if effect == "none" else (effect,),
                      strength=effect_strength(effect, cfg.cell_level))
    out = replace(r, levels=(cfg.cell_level,), level_weights=(), text=text, fonts=fonts, layout=layout,
                  effects=effects)
    got = out.px_range(cfg.cell_level, lang)
    if got != (size, size):  # cannot happen with level_scale = size / lo; guards the rounding
        raise ValueError(f"cell size {size} px drew {got}")
    return out


# ---- the faces -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Face:
    id: str
    family: str
    style: str
    file: str  # the font file as found
    index: int  # face index in the file
    scripts: tuple[str, ...]


def select_faces(cfg: CalibrateConfig) -> tuple[list[Face], list[tuple[str, str]]]:
    """The faces to measure (render.fonts's, by default the bundled ones; `cfg.faces` narrows them) and the
    fonts the library skipped as broken, as (path, reason)."""
    from render_engine.fonts import FontLibrary
    from render_engine.paths import bundled_fonts

    f = cfg.render.fonts
    dirs = [*f.dirs, *([bundled_fonts()] if f.include_bundled or not f.dirs else [])]
    lib = FontLibrary.load(dirs)
    faces = [Face(x.id, x.family, x.style, x.source_file or x.path, x.index, tuple(x.scripts)) for x in lib.faces]
    if cfg.faces:
        want = {w.lower(): w for w in cfg.faces}
        names = lambda x: {x.id.lower(), Path(x.file).name.lower(), Path(x.file).stem.lower(),  # noqa: E731
                           x.family.lower(), f"{x.family} {x.style}".lower()}
        chosen = [x for x in faces if names(x) & set(want)]
        missing = [w for k, w in want.items() if not any(k in names(x) for x in faces)]
        if missing:
            raise ValueError(f"faces: no face matches {missing}; known: {', '.join(x.id for x in faces)}")
        faces = chosen
    return faces, list(lib.skipped)


def face_langs(face: Face, cfg: CalibrateConfig) -> list[str]:
    """The languages a face is measured in: zh if it writes Han, en if it writes Latin (in a face that
    also writes Han only with `cjk_latin`), among `cfg.langs`."""
    out = []
    for lang in cfg.langs:
        script = SCRIPT_OF_LANG[lang]
        if script in face.scripts and not (lang == "en" and "han" in face.scripts and not cfg.cjk_latin):
            out.append(lang)
    return out


# ---- tasks ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Task:
    kind: str  # "level" or "cell"
    lang: str
    level: int = 0  # level tasks
    face: str = ""  # cell tasks: face id, size, effect
    size: int = 0
    effect: str = ""
    start: int = 0  # first sample index
    count: int = 0
    examples: int = 0  # how many of the first samples come back as example images

    @property
    def key(self) -> str:
        if self.kind == "level":
            return f"level/{self.level}/{self.lang}"
        return f"cell/{self.face}/{self.lang}/{self.size}/{self.effect}"

    def __str__(self) -> str:  # how logs name it
        return f"{self.key}[{self.start}:{self.start + self.count}]"


def make_tasks(cfg: CalibrateConfig, faces: list[Face]) -> list[Task]:
    tasks = []
    if cfg.samples_per_level:
        for lv in cfg.levels:
            for lang in cfg.langs:
                for start in range(0, cfg.samples_per_level, cfg.samples_per_task):
                    n = min(cfg.samples_per_task, cfg.samples_per_level - start)
                    ex = max(0, min(n, cfg.examples_per_level - start))
                    tasks.append(Task("level", lang, level=lv, start=start, count=n, examples=ex))
    if cfg.samples_per_cell:
        for f in faces:
            for lang in face_langs(f, cfg):
                for s in cfg.sizes:
                    for e in cfg.effects:
                        tasks.append(Task("cell", lang, face=f.id, size=s, effect=e, count=cfg.samples_per_cell))
    return tasks


def sample_rng(seed: int, key: str, i: int) -> np.random.Generator:
    """The generator of sample `i` of what `key` names: independent of chunking, workers and order."""
    h = hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()
    return np.random.default_rng([seed, int.from_bytes(h[:8], "little"), int.from_bytes(h[8:16], "little"), i])


_RENDERERS: OrderedDict[str, Any] = OrderedDict()  # per worker process: renderers, least recent out
_SHARED: dict[str, Any] = {}  # per worker process: text, backgrounds and glyph cache, one set per base config


def _shared_assets(rcfg: RenderConfig):
    """Assets for `rcfg`'s corpora and backgrounds, built once per process: every renderer of a task copies
    it and sets its own fonts, so the corpora, the decoded backgrounds (an LRU of up to 256 MB each) and the
    glyph cache exist once per worker, not once per level or cell."""
    import cv2

    from render_engine.config import FontConfig, TextConfig
    from render_engine.engine import Assets

    t, b = rcfg.text, rcfg.backgrounds
    key = config_hash({"corpora": t.corpora, "charset": t.charset, "backgrounds": to_dict(b)})
    if key not in _SHARED:
        cv2.setNumThreads(1)  # one task per core
        base = replace(rcfg, levels=(rcfg.levels[0],), text=TextConfig(langs=("zh",), corpora=t.corpora, charset=t.charset),
                       fonts=FontConfig())  # the bundled fonts write zh, so the Chinese corpus is preloaded
        _SHARED.clear()
        _SHARED[key] = Assets(base)
    return _SHARED[key]


def _renderer(rcfg: RenderConfig, face: tuple[str, int] | None):
    """A Renderer for `rcfg` (cached per process); with `face` (file, index) its library holds only that face
    (a collection file holds several)."""
    import copy

    from render_engine.engine import Renderer, load_fonts
    from render_engine.fonts import FontLibrary

    key = config_hash(rcfg) + repr(face)
    r = _RENDERERS.get(key)
    if r is None:
        assets = copy.copy(_shared_assets(rcfg))
        assets.fonts = load_fonts(rcfg)
        if face is not None:
            same = [x for x in assets.fonts.faces if (x.source_file or x.path) == face[0] and x.index == face[1]]
            if not same:
                raise RuntimeError(f"face {face[1]} of {face[0]} did not load")
            if len(assets.fonts.faces) > 1:
                assets.fonts = FontLibrary(same)
        r = Renderer(rcfg, assets)
        _RENDERERS[key] = r
        while len(_RENDERERS) > 32:
            _RENDERERS.popitem(last=False)
    _RENDERERS.move_to_end(key)
    return r


def _png(image: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def calibrate_task(shared: tuple[CalibrateConfig, dict[str, Face]], task: Task) -> dict[str, Any]:
    """Render and OCR one task's samples; return their F1 values and what went wrong (never raises for a
    bad sample or a face that does not load: those are counted)."""
    from textinfuse import ocr

    cfg, faces = shared
    t0 = time.perf_counter()
    res: dict[str, Any] = {"f1": [], "empty": 0, "render_failed": 0, "ocr_failed": 0, "applied": 0,
                           "errors": [], "examples": []}

    def error(kind: str, msg: str, n: int = 1) -> None:
        res[kind] += n
        if len(res["errors"]) < 3 and msg not in res["errors"]:
            res["errors"].append(msg)

    try:
        if task.kind == "level":
            renderer = _renderer(level_config(cfg, task.level, task.lang), None)
        else:
            f = faces[task.face]
            renderer = _renderer(cell_config(cfg, f.file, f.scripts, task.lang, task.size, task.effect),
                                 (f.file, f.index))
    except Exception as e:  # a face that cannot be loaded: its cell fails, the run goes on
        error("render_failed", f"setup: {describe(e)}", task.count)
        res["seconds"] = round(time.perf_counter() - t0, 3)
        return res
    for i in range(task.start, task.start + task.count):
        try:
            s = renderer.generate(sample_rng(cfg.seed, task.key, i))
        except Exception as e:
            error("render_failed", f"sample {i}: render: {describe(e)}")
            continue
        want = label_text(s.label)
        if not want.strip():
            res["empty"] += 1
            continue
        try:
            text = "\n".join(ln.text for ln in ocr.read(s.image))
        except Exception as e:
            error("ocr_failed", f"sample {i}: ocr: {describe(e)}")
            continue
        f1 = char_f1(text, want)
        res["f1"].append(f1)
        if task.effect not in ("", "none") and any(e["name"] == task.effect for e in s.label["effects"]):
            res["applied"] += 1
        if len(res["examples"]) < task.examples:
            res["examples"].append({"index": i, "f1": round(f1, 4), "png": _png(s.image), "ocr": text[:300],
                                    "label": "\n".join(ln["text"] for ln in s.label["lines"])[:300],
                                    "char_px": s.label["char_px"], "contrast": s.label["contrast"],
                                    "effects": [e["name"] for e in s.label["effects"]]})
    res["seconds"] = round(time.perf_counter() - t0, 3)
    return res


# ---- statistics ----------------------------------------------------------------------------------

def stats(values: list[float]) -> dict[str, Any]:
    """n, mean, std (population), median, 10th percentile and min; None where there are no values."""
    v = np.asarray(values, np.float64)
    if not len(v):
        return {"n": 0, "mean": None, "std": None, "median": None, "p10": None, "min": None}
    r = lambda x: round(float(x), 4)  # noqa: E731
    return {"n": int(len(v)), "mean": r(v.mean()), "std": r(v.std()), "median": r(np.median(v)),
            "p10": r(np.percentile(v, 10)), "min": r(v.min())}


def band_of(f1: float | None, bands: tuple[float, ...] | list[float]) -> int | None:
    """The level whose readability band holds `f1` (1: >= bands[0] ... 5: below bands[-1])."""
    if f1 is None:
        return None
    for k, b in enumerate(bands, 1):
        if f1 >= b:
            return k
    return len(bands) + 1


def _summaries(cells: list[dict[str, Any]], bands: list[float]) -> dict[str, Any]:
    """Per face and script (no effect): the smallest size from which on every larger measured size reads at
    least each band's threshold; per script and effect: mean F1 and the paired change against no effect."""
    by: dict[tuple[str, str], dict[int, float]] = {}
    fam: dict[str, tuple[str, str]] = {}
    for c in cells:
        if c["effect"] == "none" and c["mean"] is not None:
            by.setdefault((c["face"], c["lang"]), {})[c["size"]] = c["mean"]
            fam[c["face"]] = (c["family"], c["style"])
    min_size = []
    for (face, lang), curve in sorted(by.items()):
        sizes = sorted(curve)
        row: dict[str, Any] = {"face": face, "family": fam[face][0], "style": fam[face][1], "lang": lang}
        for k, b in enumerate(bands, 1):
            ok = [s for i, s in enumerate(sizes) if all(curve[t] >= b for t in sizes[i:])]
            row[f"level{k}"] = ok[0] if ok else None
        row["curve"] = [[s, curve[s]] for s in sizes]  # [size, mean F1], by size
        min_size.append(row)
    none = {(c["face"], c["lang"], c["size"]): c["mean"] for c in cells if c["effect"] == "none"}
    eff: dict[tuple[str, str], list[tuple[float, float | None]]] = {}
    for c in cells:
        if c["mean"] is not None:
            base = none.get((c["face"], c["lang"], c["size"]))
            eff.setdefault((c["lang"], c["effect"]), []).append((c["mean"], None if base is None else c["mean"] - base))
    effects = []
    for (lang, e), vals in sorted(eff.items()):
        deltas = [d for _, d in vals if d is not None]
        effects.append({"lang": lang, "effect": e, "cells": len(vals), "mean": round(float(np.mean([m for m, _ in vals])), 4),
                        "delta_vs_none": round(float(np.mean(deltas)), 4) if deltas else None})
    return {"min_size": min_size, "effects": effects}


def versions() -> dict[str, str]:
    """The render job's library versions (`render_job.versions`) plus the OCR engine's."""
    from importlib.metadata import PackageNotFoundError, version

    from .render_job import versions as render_versions

    out = render_versions()
    for pkg in ("rapidocr", "onnxruntime"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "-"
    return out


# ---- the run -------------------------------------------------------------------------------------

def run_calibrate(cfg: CalibrateConfig, out_dir: str | Path, executor: Executor | None = None,
                  overwrite: bool = False) -> dict[str, Any]:
    """Measure readability (see the module doc) into `out_dir`; return the calibration.json document.

    A folder whose calibration.json has this config's hash is reused without any OCR (its page and chart
    redrawn if missing); one with another config's is refused (FolderInUse) unless `overwrite`. An
    interrupted run of this config there is continued (calibration.partial.jsonl) unless `overwrite`; one
    of another config is refused the same way."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    h = config_hash(cfg)
    jpath = out / JSON_NAME
    if jpath.exists() and not overwrite:
        try:
            old = json.loads(jpath.read_text(encoding="utf-8"))
            old_hash = old.get("config_hash") if isinstance(old, dict) else None
        except (OSError, ValueError) as e:
            old, old_hash = None, f"unreadable ({type(e).__name__})"
        if old_hash == h:
            log.info("%s: calibration with config %s already there: reused (overwrite to measure again)", jpath, h)
            if not (out / HTML_NAME).exists() or not (out / LEVELS_PNG).exists():
                write_report(old, out)
            return old
        raise FolderInUse(f"{out} holds a calibration of another config ({old_hash}, this is {h}): "
                          "use another folder, or overwrite")
    _need_ocr()
    t0 = time.perf_counter()
    faces, skipped = select_faces(cfg)
    tasks = make_tasks(cfg, faces)
    by_id = {f.id: f for f in faces}
    ppath = out / PARTIAL
    if overwrite:
        ppath.unlink(missing_ok=True)
    done = _read_partial(ppath, h)
    if not done:  # a fresh start: an earlier run's examples go (only our own file names)
        for p in (out / EXAMPLES).glob("level*-*-*.png"):
            p.unlink()
    todo = [t for t in tasks if str(t) not in done]
    total = sum(t.count for t in tasks)
    log.info("calibrating: %d faces, %d tasks, %d samples (one OCR call each)%s", len(faces), len(tasks), total,
             f"; {len(tasks) - len(todo)} tasks done by an earlier run, reused" if done else "")
    prog = Progress(total, "samples", already=total - sum(t.count for t in todo))
    results: dict[str, dict[str, Any]] = {}
    failed_tasks: list[dict[str, str]] = []

    def add(task: Task, res: dict[str, Any]) -> None:
        acc = results.setdefault(task.key, {"f1": [], "empty": 0, "render_failed": 0, "ocr_failed": 0,
                                            "applied": 0, "errors": [], "examples": [], "seconds": 0.0, "chunks": {}})
        acc["chunks"][task.start] = res  # chunks in sample order below, whatever order they came in

    for t in tasks:
        if str(t) in done:
            add(t, done[str(t)])
    with open(ppath, "a" if done else "w", encoding="utf-8") as pf:
        if not done:
            pf.write(json.dumps({"config_hash": h}) + "\n")
            pf.flush()

        def on_result(task: Task, res: dict[str, Any] | None, err: str | None) -> None:
            if err is not None:  # the task itself failed twice (a crashed worker): all its samples failed
                failed_tasks.append({"task": str(task), "reason": err})
                res = {"f1": [], "empty": 0, "render_failed": task.count, "ocr_failed": 0, "applied": 0,
                       "errors": [f"task: {err}"], "examples": [], "seconds": 0.0}
            else:  # done: its examples to files, its result to the partial file (a restart skips it)
                res = {**res, "examples": [_save_example(out, task, e) for e in res["examples"]]}
                pf.write(json.dumps({"task": str(task), "result": res}, ensure_ascii=False) + "\n")
                pf.flush()
            add(task, res)
            prog.advance(task.count, failures=res["render_failed"] + res["ocr_failed"])

        ex = executor or LocalExecutor()
        ex.run(calibrate_task, (cfg, by_id), todo, on_result)
    prog.close()
    for acc in results.values():
        for _, res in sorted(acc.pop("chunks").items()):
            for k in ("f1", "examples"):
                acc[k] += res[k]
            for k in ("empty", "render_failed", "ocr_failed", "applied", "seconds"):
                acc[k] += res[k]
            acc["errors"] += [e for e in res["errors"] if e not in acc["errors"]][: max(0, 3 - len(acc["errors"]))]
    doc = _document(cfg, h, faces, skipped, tasks, results, failed_tasks, time.perf_counter() - t0)
    write_report(doc, out)
    write_json_atomic(jpath, doc)  # last: its presence means the run finished
    ppath.unlink(missing_ok=True)
    log.info("calibration -> %s (%s, %s)", out, JSON_NAME, HTML_NAME)
    return doc


def _save_example(out: Path, task: Task, e: dict[str, Any]) -> dict[str, Any]:
    """Write an example's PNG to DIR/examples/; return the example with its file name instead of its bytes."""
    d = out / EXAMPLES
    d.mkdir(exist_ok=True)
    name = f"level{task.level}-{task.lang}-{e['index']}.png"
    (d / name).write_bytes(e["png"])
    return {"file": f"{EXAMPLES}/{name}", **{k: v for k, v in e.items() if k != "png"}}


def _read_partial(path: Path, h: str) -> dict[str, dict[str, Any]]:
    """Results of tasks an interrupted run of this config finished (by task), from DIR/calibration.partial.jsonl;
    empty when there is none; FolderInUse when it belongs to another config. A line cut short by the
    interruption is skipped."""
    if not path.exists():
        return {}
    done = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f):
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if n == 0:
                if not isinstance(rec, dict) or rec.get("config_hash") != h:
                    old = rec.get("config_hash") if isinstance(rec, dict) else "unreadable"
                    raise FolderInUse(f"{path.parent} holds an unfinished calibration of another config ({old}, this "
                                      f"is {h}): run that config again to finish it, use another folder, or overwrite")
                continue
            if isinstance(rec, dict) and isinstance(rec.get("result"), dict) and isinstance(rec.get("task"), str):
                done[rec["task"]] = rec["result"]
    return done


def _need_ocr() -> None:
    """Fail now, not once per sample, when the OCR engine is not installed."""
    try:
        import onnxruntime  # noqa: F401
        import rapidocr  # noqa: F401
    except ImportError as e:
        raise ImportError("calibrate needs the OCR engine: pip install 'textinfuse[ocr]'") from e


def _document(cfg: CalibrateConfig, h: str, faces: list[Face], skipped, tasks: list[Task],
              results: dict[str, dict[str, Any]], failed_tasks, seconds: float) -> dict[str, Any]:
    bands = list(cfg.bands)
    keys = {t.key: t for t in tasks}
    levels = []
    if cfg.samples_per_level:
        for lv in cfg.levels:
            row: dict[str, Any] = {"level": lv, "name": LEVELS[lv].name}
            for lang in cfg.langs:
                acc = results.get(f"level/{lv}/{lang}", {})
                st = stats(acc.get("f1", []))
                st.update({k: acc.get(k, 0) for k in ("empty", "render_failed", "ocr_failed")},
                          errors=acc.get("errors", []), band=band_of(st["mean"], bands),
                          values=[round(v, 4) for v in acc.get("f1", [])])
                st["examples"] = acc.get("examples", [])
                row[lang] = st
            levels.append(row)
    fam = {f.id: f for f in faces}
    cells = []
    for key, t in keys.items():
        if t.kind != "cell":
            continue
        acc = results.get(key, {})
        st = stats(acc.get("f1", []))
        f = fam[t.face]
        cells.append({"face": t.face, "family": f.family, "style": f.style, "lang": t.lang,
                      "script": SCRIPT_OF_LANG[t.lang], "size": t.size, "effect": t.effect,
                      "mean": st["mean"], "std": st["std"], "median": st["median"], "min": st["min"], "n": st["n"],
                      "band": band_of(st["mean"], bands), "applied": acc.get("applied", 0) if t.effect != "none" else None,
                      **{k: acc.get(k, 0) for k in ("empty", "render_failed", "ocr_failed")},
                      "errors": acc.get("errors", [])})
    calls = sum(len(a.get("f1", [])) + a.get("ocr_failed", 0) for a in results.values())
    totals = {k: sum(a.get(k, 0) for a in results.values()) for k in ("empty", "render_failed", "ocr_failed")}
    return {
        "kind": "calibration", "version": CAL_VERSION, "config": to_dict(cfg), "config_hash": h,
        "versions": versions(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seconds": round(seconds, 1),
        "task_seconds": round(sum(a.get("seconds", 0.0) for a in results.values()), 1),
        "metric": "order-free character F1 of textinfuse.ocr.read output against the label (textinfuse.metrics.char_f1)",
        "samples": sum(t.count for t in tasks), "ocr_calls": calls, "totals": totals,
        "faces": [{"id": f.id, "family": f.family, "style": f.style, "file": Path(f.file).name, "scripts": list(f.scripts),
                   "langs": face_langs(f, cfg)} for f in faces],
        "skipped_fonts": [{"path": p, "reason": r} for p, r in skipped],
        "failed_tasks": failed_tasks, "bands": bands, "levels": levels, "cells": cells,
        "summary": _summaries(cells, bands),
    }


# ---- the page ------------------------------------------------------------------------------------

def _plt():
    import matplotlib

    matplotlib.use("Agg")
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    import matplotlib.pyplot as plt

    return plt


def _b64(fig, path: Path | None = None) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    if path is not None:
        path.write_bytes(buf.getvalue())
    return base64.b64encode(buf.getvalue()).decode()


def _band_lines(ax, bands: list[float]) -> None:
    for b in bands:
        ax.axhline(b, color="#999", lw=0.7, ls="--", zorder=0)


def levels_chart(doc: dict[str, Any], path: Path | None = None) -> str:
    """Mean F1 per level per language, std as error bars (base64 PNG; also written to `path`)."""
    plt = _plt()
    langs = doc["config"]["langs"]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    lv = [r["level"] for r in doc["levels"]]
    w = 0.8 / max(len(langs), 1)
    for k, lang in enumerate(langs):
        m = np.array([r[lang]["mean"] if r[lang]["mean"] is not None else np.nan for r in doc["levels"]])
        s = np.array([r[lang]["std"] or 0.0 for r in doc["levels"]])
        err = np.stack([np.minimum(s, np.nan_to_num(m)), np.minimum(s, 1 - np.nan_to_num(m))])  # kept in [0, 1]
        x = np.arange(len(lv)) + (k - (len(langs) - 1) / 2) * w
        ax.bar(x, m, w, yerr=err, capsize=3, label=f"{lang} (n={doc['config']['samples_per_level']} per level)")
    _band_lines(ax, doc["bands"])
    ax.set_xticks(np.arange(len(lv)), [f"{n}\n{LEVELS[n].name}" for n in lv])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("char F1: mean, std (clipped to [0, 1])")
    ax.set_title("Readability per level (bundled OCR)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=len(langs), frameon=False)
    try:
        return _b64(fig, path)
    finally:
        plt.close(fig)


def size_chart(doc: dict[str, Any], lang: str, effect: str = "none") -> str | None:
    """Mean F1 against em size, one line per face, for one language and one effect."""
    rows = [c for c in doc["cells"] if c["lang"] == lang and c["effect"] == effect and c["mean"] is not None]
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    ax.set_prop_cycle(color=plt.cm.tab20.colors)  # up to 20 faces in distinct colours
    for face in sorted({c["face"] for c in rows}):
        pts = sorted((c["size"], c["mean"]) for c in rows if c["face"] == face)
        fam = next(c for c in rows if c["face"] == face)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3,
                label=f"{fam['family']} {fam['style']}".replace(" Regular", ""))
    _band_lines(ax, doc["bands"])
    ax.set_xlabel("em size, px")
    ax.set_ylabel("char F1 (mean)")
    ax.set_ylim(0, 1.03)
    ax.set_title(f"{lang}: readability against size ({'no effect' if effect == 'none' else effect})")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    try:
        return _b64(fig)
    finally:
        plt.close(fig)


def effect_chart(doc: dict[str, Any], lang: str) -> str | None:
    """Mean F1 over faces against size, one line per effect, for one language."""
    rows = [c for c in doc["cells"] if c["lang"] == lang and c["mean"] is not None]
    effects = list(dict.fromkeys(c["effect"] for c in rows))
    if len(effects) < 2:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for e in effects:
        sizes = sorted({c["size"] for c in rows if c["effect"] == e})
        m = [float(np.mean([c["mean"] for c in rows if c["effect"] == e and c["size"] == s])) for s in sizes]
        ax.plot(sizes, m, marker="o", ms=3, label=e)
    _band_lines(ax, doc["bands"])
    ax.set_xlabel("em size, px")
    ax.set_ylabel("char F1 (mean over faces)")
    ax.set_ylim(0, 1.03)
    ax.set_title(f"{lang}: effects (each always applied, at level {doc['config']['cell_level']}'s strength)")
    ax.legend(fontsize=8)
    try:
        return _b64(fig)
    finally:
        plt.close(fig)


def examples_sheet(doc: dict[str, Any], row: dict[str, Any], out: Path, tile: int = 256) -> str | None:
    """One level's example images at their own resolution (a row per language, larger ones shrunk to `tile`),
    each captioned with its language, F1 and em sizes (base64 PNG)."""
    from PIL import Image, ImageDraw

    langs = [lang for lang in doc["config"]["langs"] if row.get(lang, {}).get("examples")]
    if not langs:
        return None
    cols = max(len(row[lang]["examples"]) for lang in langs)
    cap, pad = 16, 6
    sheet = Image.new("RGB", (pad + cols * (tile + pad), pad + len(langs) * (tile + cap + pad)), (235, 235, 235))
    draw = ImageDraw.Draw(sheet)
    for i, lang in enumerate(langs):
        for j, ex in enumerate(row[lang]["examples"]):
            x, y = pad + j * (tile + pad), pad + i * (tile + cap + pad)
            p = out / ex["file"]
            if p.exists():
                with Image.open(p) as im:
                    im = im.convert("RGB")
                    im.thumbnail((tile, tile))
                    sheet.paste(im, (x, y + cap))
            px = "/".join(map(str, ex.get("char_px", [])))
            draw.text((x, y + 2), f"{lang}  F1 {ex['f1']:.2f}  {px} px", fill=(0, 0, 0))
    buf = io.BytesIO()
    sheet.save(buf, format="PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode()


_BAND_COLOURS = {1: "#c6efce", 2: "#e2f0d9", 3: "#fff2cc", 4: "#fce4d6", 5: "#f4b6b6", None: "#eee"}


def _fmt(v: Any, nd: int = 3) -> str:
    return "-" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))


def write_report(doc: dict[str, Any], out: Path) -> None:
    """calibration.html (self-contained) and levels.png from a calibration document."""
    e = html.escape
    cfg = doc["config"]
    bands = doc["bands"]
    band_txt = ", ".join([f"level 1 &ge; {bands[0]}"] + [f"level {k + 2}: {bands[k + 1]}-{bands[k]}" for k in range(len(bands) - 1)]
                         + [f"level {len(bands) + 1} &lt; {bands[-1]}"])
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>TextInfuse readability calibration</title>",
        "<style>body{font-family:sans-serif;margin:24px;max-width:1300px}table{border-collapse:collapse;margin:8px 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}"
        "td.l,th.l{text-align:left}img{max-width:100%}.charts{display:flex;flex-wrap:wrap;gap:12px}</style>",
        "</head><body><h1>Readability calibration</h1>",
        f"<p>{e(doc['metric'])}. {doc['samples']} samples, {doc['ocr_calls']} OCR calls, {doc['seconds']} s; "
        f"config hash {e(doc['config_hash'])}; created {e(doc['created'])}.</p>",
        f"<p>Readability bands: {band_txt} (mean char F1).</p>",
        "<p>Versions: " + e(", ".join(f"{k} {v}" for k, v in doc["versions"].items())) + "</p>",
    ]
    t = doc["totals"]
    if any(t.values()) or doc["skipped_fonts"] or doc["failed_tasks"]:
        parts.append("<h2>Problems</h2><ul>")
        parts.append(f"<li>samples without text {t['empty']}, failed renders {t['render_failed']}, failed OCR "
                     f"{t['ocr_failed']} (left out of every figure)</li>")
        parts += [f"<li>font skipped: {e(s['path'])}: {e(s['reason'])}</li>" for s in doc["skipped_fonts"]]
        parts += [f"<li>task failed: {e(f['task'])}: {e(f['reason'])}</li>" for f in doc["failed_tasks"]]
        parts.append("</ul>")
    if doc["levels"]:
        img = levels_chart(doc, out / LEVELS_PNG)
        parts.append(f"<h2>Levels</h2><img alt='levels' src='data:image/png;base64,{img}'>")
        for lang in cfg["langs"]:
            parts.append(f"<h3>{e(lang)}</h3><table><tr><th>level</th><th class='l'>name</th><th>mean</th><th>std</th>"
                         "<th>median</th><th>p10</th><th>min</th><th>n</th><th>band</th><th>empty</th><th>failed</th></tr>")
            for r in doc["levels"]:
                s = r[lang]
                parts.append(f"<tr><td>{r['level']}</td><td class='l'>{e(r['name'])}</td><td>{_fmt(s['mean'])}</td>"
                             f"<td>{_fmt(s['std'])}</td><td>{_fmt(s['median'])}</td><td>{_fmt(s['p10'])}</td>"
                             f"<td>{_fmt(s['min'])}</td><td>{s['n']}</td><td style='background:{_BAND_COLOURS[s['band']]}'>"
                             f"{_fmt(s['band'])}</td><td>{s['empty']}</td><td>{s['render_failed'] + s['ocr_failed']}</td></tr>")
            parts.append("</table>")
    else:
        (out / LEVELS_PNG).unlink(missing_ok=True)
    cells = doc["cells"]
    if cells:
        langs = list(dict.fromkeys(c["lang"] for c in cells))
        parts.append("<h2>Readability against size (no effect)</h2><p>One line per face; dashed lines: band "
                     f"thresholds. Cells: one face, page layout, level {cfg['cell_level']}'s contrast and background, "
                     f"{cfg['samples_per_cell']} samples each, {e(cfg.get('cell_mode', 'page'))} layout.</p><div class='charts'>")
        for lang in langs:
            img = size_chart(doc, lang)
            if img:
                parts.append(f"<img alt='size {e(lang)}' src='data:image/png;base64,{img}'>")
        parts.append("</div>")
        for lang in langs:
            parts.append(_grid_table(doc, lang))
        effects = [s for s in doc["summary"]["effects"]]
        if len({s["effect"] for s in effects}) > 1:
            parts.append("<h2>Effects</h2><div class='charts'>")
            for lang in langs:
                img = effect_chart(doc, lang)
                if img:
                    parts.append(f"<img alt='effects {e(lang)}' src='data:image/png;base64,{img}'>")
            parts.append("</div><table><tr><th class='l'>lang</th><th class='l'>effect</th><th>cells</th>"
                         "<th>mean F1</th><th>change vs none (paired)</th></tr>")
            parts += [f"<tr><td class='l'>{e(s['lang'])}</td><td class='l'>{e(s['effect'])}</td><td>{s['cells']}</td>"
                      f"<td>{_fmt(s['mean'])}</td><td>{_fmt(s['delta_vs_none'])}</td></tr>" for s in effects]
            parts.append("</table>")
        parts.append("<h2>Smallest size per band (no effect)</h2><p>The smallest measured em size from which on "
                     "every larger measured size reads at least the band's threshold; '-': never.</p><table>"
                     "<tr><th class='l'>face</th><th class='l'>lang</th>"
                     + "".join(f"<th>&ge; {b}</th>" for b in bands) + "</tr>")
        for r in doc["summary"]["min_size"]:
            parts.append(f"<tr><td class='l'>{e(r['family'])} {e(r.get('style', ''))}</td><td class='l'>{e(r['lang'])}</td>"
                         + "".join(f"<td>{_fmt(r[f'level{k}'])}</td>" for k in range(1, len(bands) + 1)) + "</tr>")
        parts.append("</table><details><summary>Every cell</summary><table><tr><th class='l'>face</th>"
                     "<th class='l'>lang</th><th>size</th><th class='l'>effect</th><th>mean</th><th>std</th><th>n</th>"
                     "<th>applied</th><th>band</th><th>failed</th><th class='l'>errors</th></tr>")
        for c in cells:
            parts.append(f"<tr><td class='l'>{e(c['family'])} {e(c['style'])}</td><td class='l'>{e(c['lang'])}</td>"
                         f"<td>{c['size']}</td><td class='l'>{e(c['effect'])}</td><td>{_fmt(c['mean'])}</td>"
                         f"<td>{_fmt(c['std'])}</td><td>{c['n']}</td><td>{_fmt(c['applied'])}</td>"
                         f"<td style='background:{_BAND_COLOURS[c['band']]}'>{_fmt(c['band'])}</td>"
                         f"<td>{c['render_failed'] + c['ocr_failed']}</td><td class='l'>{e('; '.join(c['errors']))}</td></tr>")
        parts.append("</table></details>")
    if any(r[lang].get("examples") for r in doc["levels"] for lang in cfg["langs"]):
        parts.append("<h2>Examples per level</h2>")
        for r in doc["levels"]:
            img = examples_sheet(doc, r, out)
            if img:
                parts.append(f"<h3>Level {r['level']} ({e(r['name'])})</h3>"
                             f"<img alt='level {r['level']} examples' src='data:image/png;base64,{img}'>")
    parts.append("</body></html>")
    tmp = out / (HTML_NAME + ".part")
    tmp.write_text("\n".join(parts), encoding="utf-8", errors="backslashreplace")
    tmp.replace(out / HTML_NAME)


def _grid_table(doc: dict[str, Any], lang: str) -> str:
    """Faces x sizes, mean F1 with no effect, coloured by band."""
    e = html.escape
    rows = [c for c in doc["cells"] if c["lang"] == lang and c["effect"] == "none"]
    if not rows:
        return ""
    sizes = sorted({c["size"] for c in rows})
    faces = list(dict.fromkeys(c["face"] for c in rows))
    at = {(c["face"], c["size"]): c for c in rows}
    out = [f"<h3>{e(lang)}: mean F1 by face and size (no effect)</h3><table><tr><th class='l'>face</th>"
           + "".join(f"<th>{s} px</th>" for s in sizes) + "</tr>"]
    for f in faces:
        c0 = next(c for c in rows if c["face"] == f)
        cells = []
        for s in sizes:
            c = at.get((f, s))
            band = c["band"] if c else None
            cells.append(f"<td style='background:{_BAND_COLOURS[band]}'>{_fmt(c['mean'] if c else None, 2)}</td>")
        out.append(f"<tr><td class='l'>{e(c0['family'])} {e(c0['style'])}</td>{''.join(cells)}</tr>")
    out.append("</table>")
    return "".join(out)
