"""calibration.html and levels.png, drawn from a calibration.json document. See the package doc."""

from __future__ import annotations

import base64
import html
import io
import logging
from pathlib import Path
from typing import Any

import numpy as np

from render_engine.levels import LEVELS

HTML_NAME = "calibration.html"
LEVELS_PNG = "levels.png"


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


def _verdict(lang: str, v: dict[str, Any]) -> str:
    out = [k for k, ok in v["in_band"].items() if not ok]
    return (f"{html.escape(lang)}: every level reads in its own band: {'yes' if not out else 'NO (level ' + ', '.join(out) + ')'}"
            f"; readability falls with level: {'yes' if v['falling'] else 'NO'}")


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
            parts.append(f"<h3>{e(lang)}</h3><table><tr><th>level</th><th class='l'>name</th><th>mean</th><th>&plusmn; se</th><th>std</th>"
                         "<th>median</th><th>p10</th><th>min</th><th>n</th><th>band</th><th>empty</th><th>failed</th></tr>")
            for r in doc["levels"]:
                s = r[lang]
                parts.append(f"<tr><td>{r['level']}</td><td class='l'>{e(r['name'])}</td><td>{_fmt(s['mean'])}</td>"
                             f"<td>{_fmt(s.get('se'))}</td><td>{_fmt(s['std'])}</td><td>{_fmt(s['median'])}</td><td>{_fmt(s['p10'])}</td>"
                             f"<td>{_fmt(s['min'])}</td><td>{s['n']}</td><td style='background:{_BAND_COLOURS[s['band']]}'>"
                             f"{_fmt(s['band'])}</td><td>{s['empty']}</td><td>{s['render_failed'] + s['ocr_failed']}</td></tr>")
            parts.append("</table>")
        v = doc["summary"].get("levels")
        if v:  # older documents lack the verdict
            parts.append("<p>" + "; ".join(_verdict(lang, v[lang]) for lang in cfg["langs"] if lang in v) + "</p>")
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
