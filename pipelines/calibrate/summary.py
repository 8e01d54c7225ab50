"""Statistics of the measured samples, the calibration.json document, and the legibility table the cells
give (render_engine/legibility.py). See the package doc."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from render_engine.legibility import Legibility, Profile
from render_engine.levels import LEVELS
from textinfuse.configio import to_dict

from .config import SCRIPT_OF_LANG, CalibrateConfig
from .tasks import Face, Task, face_langs

CAL_VERSION = 1


# ---- statistics ----------------------------------------------------------------------------------

def stats(values: list[float]) -> dict[str, Any]:
    """n, mean, std (population), se (standard error of the mean), median, 10th percentile and min; None
    where there are no values."""
    v = np.asarray(values, np.float64)
    if not len(v):
        return {"n": 0, "mean": None, "std": None, "se": None, "median": None, "p10": None, "min": None}
    r = lambda x: round(float(x), 4)  # noqa: E731
    return {"n": int(len(v)), "mean": r(v.mean()), "std": r(v.std()), "se": r(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else None,
            "median": r(np.median(v)), "p10": r(np.percentile(v, 10)), "min": r(v.min())}


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


def level_verdict(levels: list[dict[str, Any]], langs: list[str]) -> dict[str, Any]:
    """Whether each measured level reads inside its own band (`band` == level) and whether readability
    falls strictly with level, per language."""
    out: dict[str, Any] = {}
    for lang in langs:
        rows = [(r["level"], r[lang]) for r in levels if r.get(lang, {}).get("mean") is not None]
        means = [st["mean"] for _, st in rows]
        out[lang] = {"in_band": {str(lv): st["band"] == lv for lv, st in rows},
                     "falling": all(a > b for a, b in zip(means, means[1:], strict=False))}
    out["all_in_band"] = all(v for lang in langs for v in out[lang]["in_band"].values())
    out["all_falling"] = all(out[lang]["falling"] for lang in langs)
    return out


def legibility_table(*docs: dict[str, Any]) -> Legibility | None:
    """The legibility profiles the documents' no-effect cells give (render_engine/legibility.py): one per
    face and language, its curve the mean F1 per size, pooled over the documents by sample count (a later
    run with other sizes or more samples adds to an earlier one); None without such cells. Only a
    page-mode calibration at `cell_level` 1 measures what the guard assumes (the easiest conditions)."""
    acc: dict[tuple[str, str, str], dict[int, list[float]]] = {}
    for doc in docs:
        for c in doc["cells"]:
            if c["effect"] == "none" and c["mean"] is not None and c["n"]:
                pt = acc.setdefault((c["family"], c["style"], c["lang"]), {}).setdefault(c["size"], [0.0, 0])
                pt[0] += c["mean"] * c["n"]
                pt[1] += c["n"]
    if not acc:
        return None
    return Legibility([Profile(f, st, lang, tuple((size, round(t / n, 4)) for size, (t, n) in sorted(pts.items())),
                               int(min(n for _, n in pts.values())))
                       for (f, st, lang), pts in sorted(acc.items())], "calibration")


def versions() -> dict[str, str]:
    """The render job's library versions (`render_job.versions`) plus the OCR engine's."""
    from importlib.metadata import PackageNotFoundError, version

    from ..render_job import versions as render_versions

    out = render_versions()
    for pkg in ("rapidocr", "onnxruntime"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "-"
    return out


def document(cfg: CalibrateConfig, h: str, faces: list[Face], skipped, tasks: list[Task],
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
        "summary": {**_summaries(cells, bands), "levels": level_verdict(levels, list(cfg.langs))},
    }

