#!/usr/bin/env python3
"""Build the real images `textinfuse ablate` uses: document crops for evaluation (English and Chinese),
photo crops for evaluation, and real text-rich crops for the `real-text` training arm.

Every image comes from a Debian bookworm package (pinned versions below, fetched with `apt-get download`
and unpacked with `dpkg-deb`), and the three roles never share a document:

- `docs-en/`, `docs-zh/` (evaluation): pages of PDF manuals rendered with pypdfium2, then cut by the
  project's own `bench-build` into 256x256 crops of dense text at a chosen character size (`--em`, the
  font size in pixels; English `en_char_px` is the cap height, 0.7 em).
- `photos/` (evaluation): 256x256 crops of the photographic KDE Plasma wallpapers, each wallpaper
  shrunk so a crop shows a scene, not a texture.
- `real-text/` (training data of the `real-text` arm): the same bench-build cut from other manuals.
- `screens-en/` (evaluation, `eval.images`: real text in images, reported beside the documents): the
  screenshots of The Debian Administrator's Handbook (desktops, installer, applications: UI text on
  wallpapers, panels, terminals and dialogs, light on dark as well as dark on light), cut by the same
  bench-build at the same em (a screenshot's 11-13 px UI text is scaled up about 1.6-2x).

Writes `SOURCES.md` (package, version, file, licence, pages of every crop) into the output folder.
Usage: `python scripts/build_ablation_sets.py --out datasets/ablation [--em 24]`; needs apt-get and
dpkg-deb (no network at run time of `ablate`: this script is the install step, and its output ships).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_filter_evalset import fetch  # noqa: E402  (the same pinned apt-get download + licence check)

LOG = logging.getLogger("build_ablation_sets")
SEED = 20261203
# role -> [(package, PDF inside it, language, crops wanted, pages tried)]
# Licences read from each package's copyright file: its `Files: *` stanza, except these (checked by hand):
LICENCES = {
    "python-reportlab-doc": "LicenseRef-ReportLab-BSD",  # free-form file: "BSD-style", ReportLab Inc. 2000-2014
    "debian-edu-doc-legacy-zh-cn": "GPL-3.0-or-later",  # the ITIL manual's own stanza (Knut Yrvin et al.)
    "debian-handbook": "GPL-2.0-or-later OR CC-BY-SA-3.0",  # `Files: *` offers both
}
DOCS = {
    "docs-en": [("c++-annotations-pdf", "usr/share/doc/c++-annotations/cplusplus.pdf", "en", 16, 40),
                ("python-reportlab-doc", "usr/share/doc/python-reportlab-doc/reportlab-userguide.pdf", "en", 16, 30)],
    "docs-zh": [("debian-edu-doc-legacy-zh-cn", "usr/share/doc/debian-edu-doc-legacy-zh-cn/debian-edu-itil-manual.pdf",
                 "zh", 32, 40)],
    "real-text": [("debian-reference-en", "usr/share/debian-reference/debian-reference.en.pdf", "en", 40, 12),
                  ("developers-reference", "usr/share/developers-reference/developers-reference.pdf", "en", 20, 6),
                  ("maint-guide", "usr/share/doc/maint-guide/maint-guide.en.pdf", "en", 20, 6),
                  ("debian-reference-zh-cn", "usr/share/debian-reference/debian-reference.zh-cn.pdf", "zh", 80, 24)],
}
PHOTO_PKG = "plasma-workspace-wallpapers"
# Photographs among the wallpapers (the others are renders and gradients); the largest JPEG of each.
PHOTOS = ["Autumn", "BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey",
          "Kite", "OneStandsOut", "PastelHills", "Path", "summer_1am"]
PHOTO_CROPS = 2  # per wallpaper
RENDER_DPI = 300.0
SCREENS_PKG = "debian-handbook"
SCREENS_DIR = "usr/share/doc/debian-handbook/html/en-US/images"
# the handbook's screenshots (its diagrams, logos and icons are left out)
SCREENS = ["aptitude", "case-study", "cinnamon", "evolution", "existing-setup-1", "existing-setup-2",
           "existing-setup-4", "firefox", "fwbuilder", "gnome", "gnome-packagekit", "inst-autopartman-mode",
           "inst-basesystem", "inst-boot", "inst-complete", "inst-complete-txt", "inst-country", "inst-country-txt",
           "inst-gdm", "inst-keyboard", "inst-keyboard-txt", "inst-lang", "inst-lang-txt", "inst-mirror",
           "inst-partman", "inst-partman-disk", "inst-partman-partition", "inst-partman-validation", "inst-rootpw",
           "inst-tasksel", "inst-username", "kde", "kmail", "lxde", "lxqt", "mate", "synaptic", "testkvm",
           "thunderbird", "webmin", "wireshark", "xfce"]
SCREEN_CROPS, SCREEN_PER_IMAGE = 64, 4


def pdf_pages(pdf: Path, n: int, tmp: Path, rng: np.random.Generator) -> list[Path]:
    """`n` pages spread over the body (the first and last 5 % skipped: covers, contents, indexes), as PNGs."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(pdf))
    total = len(doc)
    lo, hi = int(total * 0.05), max(int(total * 0.95), int(total * 0.05) + 1)
    picks = sorted(rng.choice(np.arange(lo, hi), size=min(n, hi - lo), replace=False).tolist())
    out = []
    for k in picks:
        img = doc[k].render(scale=RENDER_DPI / 72).to_pil().convert("RGB")
        p = tmp / f"{pdf.stem}-p{k:04d}.png"
        img.save(p, compress_level=1)
        out.append(p)
    return out


def keep_copyright(root: Path, pkg: str, out: Path) -> None:
    """Ship the package's own copyright file (its licence terms and authors) beside the crops."""
    dest = out / "licenses"
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(root / "usr/share/doc" / pkg / "copyright", dest / f"{pkg}.copyright")
    for name in ("GPL-2", "GPL-3"):
        src = Path("/usr/share/common-licenses") / name
        if src.exists() and not (dest / name).exists():
            shutil.copy(src, dest / name)


def build_docs(role: str, out: Path, work: Path, em: float, licences: dict, only: set[str]) -> list[dict]:
    from evaluation.bench_build import CAP_TO_EM, BenchConfig, build_benchmark

    rows = []
    dest = out / role
    dest.mkdir(parents=True, exist_ok=True)
    for pkg, rel, lang, want, pages in DOCS[role]:
        if only and pkg not in only:
            continue
        root, version, lic = fetch(pkg, work, LICENCES.get(pkg))
        keep_copyright(root, pkg, out)
        licences[lic] = True
        rng = np.random.default_rng([SEED, len(rows), pages])
        tmp = work / f"pages-{pkg}"
        tmp.mkdir(exist_ok=True)
        cfg = BenchConfig(lang=lang, en_char_px=em * CAP_TO_EM, zh_char_px=em, en_chars=(80, 600),
                          zh_chars=(40, 600))
        got = build_benchmark(pdf_pages(root / rel, pages, tmp, rng), work / f"bench-{role}-{pkg}", cfg)
        by_page: dict[str, int] = {}
        kept = 0
        for r in got:
            if kept >= want or by_page.get(r["source"], 0) >= 2:
                continue
            by_page[r["source"]] = by_page.get(r["source"], 0) + 1
            name = f"{pkg}-{Path(r['source']).stem.rsplit('-p', 1)[1]}-{kept:02d}.png"
            shutil.copy(work / f"bench-{role}-{pkg}" / r["file"], dest / name)
            rows.append({"role": role, "file": f"{role}/{name}", "package": f"{pkg} {version}", "path": rel,
                         "page_index": int(Path(r["source"]).stem.rsplit("-p", 1)[1]), "box": r["box"],
                         "scale": r["scale"], "lang": lang, "chars": r["chars"], "licence": lic})
            kept += 1
        LOG.info("%s: %d crops from %s", role, kept, pkg)
        if kept < want:
            LOG.warning("%s %s: only %d of %d crops", role, pkg, kept, want)
    return rows


def build_photos(out: Path, work: Path, licences: dict) -> list[dict]:
    root, version, lic = fetch(PHOTO_PKG, work)
    keep_copyright(root, PHOTO_PKG, out)
    licences[lic] = True
    dest = out / "photos"
    dest.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    rows = []
    for name in PHOTOS:
        files = sorted((root / "usr/share/wallpapers" / name / "contents/images").glob("*.jpg"))
        if not files:
            LOG.warning("wallpaper %s: no JPEG in %s %s", name, PHOTO_PKG, version)
            continue
        src = max(files, key=lambda p: p.stat().st_size)
        img = np.asarray(Image.open(src).convert("RGB"))
        k = 768 / min(img.shape[:2])  # a 256 crop is a third of the short side: a scene, not a texture
        small = cv2.resize(img, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
        h, w = small.shape[:2]
        for i in range(PHOTO_CROPS):
            y, x = int(rng.integers(0, h - 256 + 1)), int(rng.integers(0, w - 256 + 1))
            fn = f"photos/{name}-{i}.png"
            Image.fromarray(small[y:y + 256, x:x + 256]).save(out / fn)
            rows.append({"role": "photos", "file": fn, "package": f"{PHOTO_PKG} {version}",
                         "path": str(src.relative_to(root)), "scale": round(k, 6), "box": [x, y, x + 256, y + 256],
                         "licence": lic})
    LOG.info("photos: %d crops from %d wallpapers", len(rows), len(PHOTOS))
    return rows


def build_screens(out: Path, work: Path, em: float, licences: dict) -> list[dict]:
    """`screens-en/`: up to SCREEN_PER_IMAGE crops per screenshot, SCREEN_CROPS in all, drawn at random
    (seeded) from what bench-build keeps (crops holding at least 40 OCR characters: UI text is sparse)."""
    from evaluation.bench_build import CAP_TO_EM, BenchConfig, build_benchmark

    root, version, lic = fetch(SCREENS_PKG, work, LICENCES[SCREENS_PKG])
    keep_copyright(root, SCREENS_PKG, out)
    licences[lic] = True
    files = [root / SCREENS_DIR / f"{n}.png" for n in SCREENS if (root / SCREENS_DIR / f"{n}.png").exists()]
    cfg = BenchConfig(lang="en", en_char_px=em * CAP_TO_EM, en_chars=(40, 600))
    got = build_benchmark(files, work / "bench-screens", cfg)
    dest = out / "screens-en"
    dest.mkdir(parents=True, exist_ok=True)
    per: dict[str, int] = {}
    rows = []
    for i in np.random.default_rng(SEED).permutation(len(got)):
        r = got[int(i)]
        if len(rows) >= SCREEN_CROPS or per.get(r["source"], 0) >= SCREEN_PER_IMAGE:
            continue
        per[r["source"]] = per.get(r["source"], 0) + 1
        shutil.copy(work / "bench-screens" / r["file"], dest / r["file"])
        rows.append({"role": "screens-en", "file": f"screens-en/{r['file']}", "package": f"{SCREENS_PKG} {version}",
                     "path": f"{SCREENS_DIR}/{Path(r['source']).name}", "box": r["box"], "scale": r["scale"],
                     "lang": "en", "chars": r["chars"], "licence": lic})
    LOG.info("screens-en: %d crops from %d of %d screenshots", len(rows), len(per), len(files))
    return sorted(rows, key=lambda r: r["file"])


def write_sources(out: Path, rows: list[dict], em: float) -> None:
    with open(out / "sources.jsonl", "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    pk: dict[tuple, list] = {}
    for r in rows:
        pk.setdefault((r["role"], r["package"], r["path"], r["licence"]), []).append(r)
    lines = ["# Real images of the text-infusion ablation", "",
             f"Built by `python scripts/build_ablation_sets.py --out {out} --em {em:g}` from Debian bookworm packages "
             "(`apt-get download`, `dpkg-deb -x`). Document crops: PDF pages rendered with pypdfium2 at "
             f"{RENDER_DPI:g} dpi, then cut by `textinfuse bench-build` at a {em:g} px em (English cap height "
             f"{em * 0.7:g} px). Screenshot crops (`screens-en`, real text in images): the Debian Administrator's "
             "Handbook's screenshots cut by the same bench-build at the same em (crops with >= 40 OCR characters, "
             f"at most {SCREEN_PER_IMAGE} per screenshot). Photo crops: wallpapers shrunk to a 768 px short side. Per-crop page, box and "
             "scale: `sources.jsonl`. Licences: each package's Debian `copyright` file and the GPL texts are in "
             "`licenses/`.", "",
             "| role | package | file | licence | crops | pages |", "|---|---|---|---|---|---|"]
    for (role, pkg, path, lic), rs in sorted(pk.items()):
        pages = sorted({r.get("page_index") for r in rs if r.get("page_index") is not None})
        lines.append(f"| {role} | {pkg} | `{path}` | {lic} | {len(rs)} | {', '.join(map(str, pages)) or '-'} |")
    (out / "SOURCES.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--em", type=float, default=24.0, help="font size (em) in px of the document crops")
    ap.add_argument("--roles", default="docs-en,docs-zh,photos,real-text,screens-en")
    ap.add_argument("--work", type=Path, help="keep downloads here (default: a temporary folder)")
    ap.add_argument("--packages", help="comma list: rebuild only these packages' crops (the rest of --out is kept)")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    a.out.mkdir(parents=True, exist_ok=True)
    only = set(a.packages.split(",")) if a.packages else set()
    roles = a.roles.split(",")
    old = a.out / "sources.jsonl"
    rows: list[dict] = [r for r in map(json.loads, old.read_text().splitlines() if old.exists() else [])
                        if r["role"] not in roles or (only and r["package"].split()[0] not in only)]
    licences: dict = {}
    with tempfile.TemporaryDirectory() as tmpd:
        work = a.work or Path(tmpd)
        work.mkdir(parents=True, exist_ok=True)
        for role in roles:
            if role == "photos":
                rows += build_photos(a.out, work, licences)
            elif role == "screens-en":
                rows += build_screens(a.out, work, a.em, licences)
            else:
                rows += build_docs(role, a.out, work, a.em, licences, only)
    write_sources(a.out, rows, a.em)


if __name__ == "__main__":
    main()
