"""`textinfuse filter-report DIR --out report.html`: score histograms with the thresholds drawn, and grids
of kept and dropped examples nearest each threshold (so a person can see where the line falls)."""

from __future__ import annotations

import html
import io
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from .filters import ordered
from .report import grid_b64, png_b64


def load_image(source: dict[str, str]):
    """The original image of a scores.jsonl record (a file, or a member of a tar), as PIL RGB."""
    import tarfile

    from PIL import Image

    if "path" in source:
        return Image.open(source["path"]).convert("RGB")
    with tarfile.open(source["shard"]) as tf:
        f = tf.extractfile(source["key"])  # read into memory only: nothing is written to disk
        return Image.open(io.BytesIO(f.read())).convert("RGB")


def histogram(values: list[float], threshold: float, title: str, log: bool) -> str:
    import matplotlib

    matplotlib.use("Agg")
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    import matplotlib.pyplot as plt

    v = np.asarray(values, float)
    fig, ax = plt.subplots(figsize=(5.2, 3.0))
    if log:
        v = np.maximum(v, 1e-6)
        bins = np.logspace(np.log10(v.min()), np.log10(max(v.max(), v.min() * 1.01)), 30)
        ax.set_xscale("log")
    else:
        bins = 30
    ax.hist(v, bins=bins, color="#4472c4")
    ax.axvline(threshold, color="#c00000", linewidth=2, label=f"threshold {threshold:g}")
    ax.set_title(title)
    ax.set_ylabel("images")
    ax.legend()
    try:
        return png_b64(fig)
    finally:
        plt.close(fig)


def filter_report(folder: str | Path, out: str | Path, per_side: int = 4) -> dict[str, Any]:
    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    cfg = manifest["config"]
    recs = [json.loads(ln) for ln in (folder / "scores.jsonl").read_text().splitlines() if ln.strip()]
    e = html.escape
    t = manifest["totals"]
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>TextInfuse filter report</title>",
             "<style>body{font-family:sans-serif;margin:24px;max-width:1200px}td,th{border:1px solid #ccc;"
             "padding:4px 10px}table{border-collapse:collapse}img{max-width:100%}</style></head><body>",
             f"<h1>TextInfuse filter report</h1><p>{e(str(folder.resolve()))}: {t['kept']} of {t['inputs']} kept</p>",
             "<h2>Decisions</h2><table><tr><th>reason</th><th>images</th></tr>"]
    parts += [f"<tr><td>{e(k)}</td><td>{v}</td></tr>" for k, v in t["reasons"].items()]
    parts.append("</table>")
    for flt, rule in ((f.name, r) for f in ordered() for r in f.rules):
        key, cfg_key = rule.score, rule.key
        section = cfg.get(flt, {})
        if not section.get("enabled", True):
            continue
        if section.get(cfg_key) is None:  # a threshold this run's config did not have
            continue
        thr = float(section[cfg_key])
        have = [(r[flt][key], r) for r in recs if isinstance(r.get(flt), dict) and key in r[flt]]
        if not have:
            continue
        parts.append(f"<h2>{e(flt)}.{e(key)} ({'≥' if rule.way == 'min' else '≤'} {thr:g})</h2>")
        parts.append(f"<img class='chart' alt='{e(key)}' src='data:image/png;base64,"
                     f"{histogram([v for v, _ in have], thr, f'{flt}.{key}', rule.log)}'>")
        passing = [(v, r) for v, r in have if rule.passes(v, thr)]
        failing = [(v, r) for v, r in have if not rule.passes(v, thr)]
        for label, group in (("passing, nearest the threshold", passing), ("failing, nearest the threshold", failing)):
            near = sorted(group, key=lambda vr: abs(vr[0] - thr))[:per_side]
            imgs = []
            for _, r in near:
                try:
                    imgs.append(load_image(r["source"]))
                except Exception:  # a source that is gone or unreadable is simply not shown
                    continue
            if imgs:
                vals = ", ".join(f"{v:g}" for v, _ in near)
                parts.append(f"<h3>{label}: {e(vals)}</h3><img class='grid' src='data:image/jpeg;base64,{grid_b64(imgs)}'>")
    parts.append("</body></html>")
    Path(out).write_text("\n".join(parts), encoding="utf-8")
    return t
