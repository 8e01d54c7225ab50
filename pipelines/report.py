"""`textinfuse report DIR --out report.html`: one self-contained HTML page about a rendered dataset.

Charts (embedded PNG) of the manifest's histograms: difficulty level, language, layout mode, character
size, characters per image, contrast, font family, background source, effects; the totals (dropped
characters included); and sample grids per level and per language read back from the shards.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
from pathlib import Path
from typing import Any

from .preview import read_samples

CHARTS = [  # (histogram key, title, x label, sort numerically, horizontal bars)
    ("level", "Difficulty level", "level", True, False),
    ("lang", "Language", "language", False, False),
    ("mode", "Layout mode", "mode", False, False),
    ("char_px", "Character size (lines)", "em size, px", True, False),
    ("chars_per_image", "Characters per image", "characters (bins of 50)", True, False),
    ("contrast", "Achieved contrast (lowest line)", "WCAG ratio (rounded)", True, False),
    ("font_family", "Font family (lines)", "samples", False, True),
    ("background", "Background source (top 20)", "samples", False, True),
    ("effects", "Effects applied", "samples", False, True),
]


def png_b64(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def chart(hist: dict[str, int], title: str, xlabel: str, numeric: bool, horizontal: bool) -> str:
    """A bar chart as base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    import matplotlib.pyplot as plt

    items = list(hist.items())
    items.sort(key=(lambda kv: float(kv[0])) if numeric else (lambda kv: -kv[1]))
    if horizontal:
        items = items[:20][::-1]
    fig, ax = plt.subplots(figsize=(5.2, 3.2) if not horizontal else (5.2, 0.25 * len(items) + 1.2))
    labels, values = [k for k, _ in items], [v for _, v in items]
    if horizontal:
        ax.barh(labels, values, color="#4472c4")
        ax.set_xlabel(xlabel)
        ax.tick_params(axis="y", labelsize=7)
    else:
        ax.bar(labels, values, color="#4472c4")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("count")
        if len(labels) > 12:
            ax.tick_params(axis="x", labelrotation=90, labelsize=7)
    ax.set_title(title)
    try:
        return png_b64(fig)
    finally:
        plt.close(fig)


def grid_b64(images: list, cols: int = 4, size: int = 192) -> str:
    """A contact sheet of PIL images as base64 JPEG."""
    from PIL import Image

    if not images:
        return ""
    rows = -(-len(images) // cols)
    sheet = Image.new("RGB", (cols * (size + 4) + 4, rows * (size + 4) + 4), (230, 230, 230))
    for i, im in enumerate(images):
        im = im.copy()
        im.thumbnail((size, size))
        sheet.paste(im, (4 + (i % cols) * (size + 4), 4 + (i // cols) * (size + 4)))
    buf = io.BytesIO()
    sheet.save(buf, format="JPEG", quality=85)
    return base64.b64encode(buf.getvalue()).decode()


def sample_groups(folder: Path, per_group: int = 4, scan: int = 2000) -> dict[str, list]:
    """Up to `per_group` samples for each level and each language (first ones found in shard order)."""
    groups: dict[str, list] = {}
    for _, img, label, _ in read_samples(folder, scan):
        try:
            keys = (f"level {label['difficulty']['level']}", f"language {label['lang']}")
        except (KeyError, TypeError):
            keys = ("label unreadable",)
        for key in keys:
            g = groups.setdefault(key, [])
            if len(g) < per_group:
                g.append(img)
    return dict(sorted(groups.items()))


def report(folder: str | Path, out: str | Path) -> dict[str, Any]:
    """Write the HTML report; return the manifest totals it shows."""
    folder = Path(folder)
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    try:
        hist, t = dict(manifest["histograms"]), manifest["totals"]
        for k in ("samples", "shards", "chars", "dropped_chars", "bytes"):
            float(t[k])
        for k in ("num_shards", "failed_shards", "bad_backgrounds", "seed", "config_hash"):
            manifest[k]
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: not a render manifest ({type(e).__name__}: {e})") from None
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>TextInfuse dataset report</title>",
        "<style>body{font-family:sans-serif;margin:24px;max-width:1200px}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}"
        ".charts{display:flex;flex-wrap:wrap;gap:12px}.charts figure{margin:0}img{max-width:100%}</style>",
        f"</head><body><h1>TextInfuse dataset report</h1><p>{e(str(folder.resolve()))}</p>",
        "<h2>Totals</h2><table>",
    ]
    rows = [("samples", t["samples"]), ("shards", f"{t['shards']} of {manifest['num_shards']}"),
            ("characters", t["chars"]), ("characters per sample", f"{t['chars'] / max(t['samples'], 1):.0f}"),
            ("characters dropped (no glyph in any font)", t["dropped_chars"]),
            ("failed shards", len(manifest["failed_shards"])),
            ("bad backgrounds", len(manifest["bad_backgrounds"])), ("bytes", f"{t['bytes'] / 2**20:.1f} MiB"),
            ("seed", manifest["seed"]), ("recipe", manifest.get("recipe") or "-"), ("config hash", manifest["config_hash"])]
    parts += [f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in rows]
    parts.append("</table><h2>Distributions</h2><div class='charts'>")
    for key, title, xlabel, numeric, horizontal in CHARTS:
        if hist.get(key):
            parts.append(f"<figure><img alt='{e(title)}' class='chart' src='data:image/png;base64,"
                         f"{chart(hist[key], title, xlabel, numeric, horizontal)}'></figure>")
    parts.append("</div><h2>Samples</h2>")
    for name, imgs in sample_groups(folder).items():
        parts.append(f"<h3>{e(name)}</h3><img alt='{e(name)}' class='grid' src='data:image/jpeg;base64,{grid_b64(imgs)}'>")
    if manifest["bad_backgrounds"] or manifest["failed_shards"]:
        parts.append("<h2>Problems</h2><ul>")
        parts += [f"<li>background {e(b['source'])}: {e(b.get('error') or b['reason'])}</li>"
                  for b in manifest["bad_backgrounds"]]
        parts += [f"<li>shard {f['shard']}: {e(f['reason'])}</li>" for f in manifest["failed_shards"]]
        parts.append("</ul>")
    parts.append("</body></html>")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("\n".join(parts), encoding="utf-8", errors="backslashreplace")  # any folder name
    return t
