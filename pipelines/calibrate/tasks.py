"""The faces measured, the tasks (level chunks and cells), and the worker function that renders and reads
one task's samples. See the package doc."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from render_engine.config import RenderConfig
from render_engine.labels import label_text
from textinfuse.configio import config_hash, to_dict
from textinfuse.metrics import char_f1

from ..executors import describe
from .config import SCRIPT_OF_LANG, CalibrateConfig, cell_config, level_config

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
