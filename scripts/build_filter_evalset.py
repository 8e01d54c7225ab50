#!/usr/bin/env python3
"""Build a small labelled evaluation set for ``textinfuse filter`` from real, offline, free sources.

Text-rich crops: pages of the PDF manuals shipped by Debian documentation packages (English and
Simplified Chinese), rendered with ``pdftoppm``, and Chinese HTML chapters rendered by headless
Chromium (1024x4000 screenshots). Crops are labelled by page geometry and ink statistics only (no OCR), so the labels are
independent of the filters under evaluation. Natural crops: the licensed photos in ``backgrounds/``
(photos showing text and photos too small for a native 512 px crop are skipped). Every sharp crop
(lossless PNG) also gets degraded copies: Gaussian blur (sigma 1.5, 2.5), x3 down-then-up (cubic)
and JPEG quality 10. Writes ``labels.jsonl`` and ``SOURCES.md``.

Needs ``apt-get``, ``dpkg-deb``, ``pdftoppm`` (poppler-utils), ``chromium`` and a CJK font
(fonts-wqy-microhei) for the HTML pages. Usage: ``python scripts/build_filter_evalset.py --out DIR``
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

LOG = logging.getLogger("build_filter_evalset")
SEED, SIDE, PER_CLASS = 20240611, 512, 200
REPO = Path(__file__).resolve().parents[1]
BACKGROUNDS = REPO / "backgrounds"
SKIP_PHOTOS = {"skimage-astronaut.jpg", "skimage-rocket.jpg"}  # name patch / flag, lettering on the rocket
SPDX = {"GPL-2+": "GPL-2.0-or-later", "GPL-2.0+": "GPL-2.0-or-later", "GPL-2": "GPL-2.0-only"}
# (package, path inside the package, language, kind, number of crops, max crops per page)
TEXT_SOURCES = [
    ("debian-reference-en", "usr/share/debian-reference/debian-reference.en.pdf", "en", "pdf", 40, 2),
    ("developers-reference", "usr/share/developers-reference/developers-reference.pdf", "en", "pdf", 35, 2),
    ("maint-guide", "usr/share/doc/maint-guide/maint-guide.en.pdf", "en", "pdf", 25, 2),
    ("debian-reference-zh-cn", "usr/share/debian-reference/debian-reference.zh-cn.pdf", "zh", "pdf", 60, 2),
    ("debian-reference-zh-cn", "usr/share/debian-reference/*.zh-cn.html", "zh", "html", 40, 5),
]
DEGRADE = ("blur1.5", "blur2.5", "updown3", "jpeg10")
CHROMIUM = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
            "--force-device-scale-factor=1", "--window-size=1024,4000"]  # 1024 px wide, 4000 tall: several screens


def fetch(pkg: str, work: Path, licence: str | None = None) -> tuple[Path, str, str]:
    """Download and unpack a Debian package; return (root, version, licence of ``Files: *``). Where the
    file used has its own stanza (or the copyright file is free-form), the caller passes its `licence`."""
    root = work / pkg
    if not root.exists():
        subprocess.run(["apt-get", "download", pkg], cwd=work, check=True, capture_output=True)
        deb = next(work.glob(f"{pkg}_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    deb = next(work.glob(f"{pkg}_*.deb"))
    version = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True,
                             check=True).stdout.strip()
    if licence:
        return root, version, licence
    text = (root / "usr/share/doc" / pkg / "copyright").read_text(errors="replace")
    m = re.search(r"^Files:\s*\*\s*$.*?^License:\s*(\S+)", text, re.M | re.S)
    if not m or m.group(1) not in SPDX:
        raise SystemExit(f"{pkg}: unexpected or missing licence in its copyright file")
    return root, version, SPDX[m.group(1)]


def text_like(g: np.ndarray) -> bool:
    """Ink/geometry test of a grey crop: dark ink on a light page, laid out in several text lines."""
    ink = float((g < 128).mean())
    light = float((g > 200).mean())
    mid = float(((g >= 60) & (g <= 200)).mean())  # antialiased edges; photos and figures have far more
    rows = (g < 128).mean(1) > 0.01
    runs = int(np.count_nonzero(np.diff(rows.astype(np.int8)) == 1))  # separate inked row bands = lines
    return 0.02 <= ink <= 0.30 and light >= 0.55 and mid <= 0.25 and 0.2 <= rows.mean() <= 0.92 and runs >= 4


def page_crops(img: np.ndarray, rng: np.random.Generator, k: int) -> list[tuple[int, int]]:
    """Up to k top-left corners of non-overlapping, text-like 512x512 crops of a page image."""
    h, w = img.shape[:2]
    if h < SIDE or w < SIDE:
        return []
    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    cands = [(int(y), int(x)) for y in range(int(rng.integers(0, 64)), h - SIDE + 1, 96)
             for x in range(int(rng.integers(0, 32)), w - SIDE + 1, 64)]
    rng.shuffle(cands)
    out: list[tuple[int, int]] = []
    for y, x in cands:
        if len(out) >= k:
            break
        if all(abs(y - y2) >= SIDE or abs(x - x2) >= SIDE for y2, x2 in out) and text_like(g[y:y + SIDE, x:x + SIDE]):
            out.append((y, x))
    return out


def render_pages(root: Path, rel: str, kind: str, rng: np.random.Generator, tmp: Path):
    """Yield (page id, RGB image) for pages of a PDF (random order and 100-150 dpi) or HTML files."""
    if kind == "pdf":
        pdf = root / rel
        n = int(re.search(r"Pages:\s+(\d+)", subprocess.run(["pdfinfo", str(pdf)], capture_output=True,
                                                              text=True, check=True).stdout).group(1))
        for p in rng.permutation(np.arange(4, n + 1)):  # skip the cover pages
            dpi = int(rng.choice([100, 120, 150]))
            stem = tmp / f"p{p}"
            subprocess.run(["pdftoppm", "-r", str(dpi), "-png", "-singlefile", "-f", str(p), "-l", str(p), str(pdf),
                            str(stem)], check=True)
            yield f"page {p} @ {dpi} dpi", np.asarray(Image.open(f"{stem}.png").convert("RGB"))
    else:
        htmls = sorted(root.glob(rel))
        for html in (htmls[i] for i in rng.permutation(len(htmls))):
            shot = tmp / f"{html.stem}.png"
            with tempfile.TemporaryDirectory() as prof:
                subprocess.run(CHROMIUM + [f"--user-data-dir={prof}", f"--screenshot={shot}", html.as_uri()],
                               check=True, capture_output=True, timeout=120)
            yield f"{html.name} (chromium 1024x4000 screenshot)", np.asarray(Image.open(shot).convert("RGB"))


def natural_sources() -> list[tuple[Path, str, str]]:
    """(photo, origin, licence) rows from backgrounds/SOURCES.md, skipping text and small photos."""
    rows = re.findall(r"^\| `([^`]+\.jpg)` \| ([^|]+) \| [^|]+ \| ([^|]+) \|$",
                      (BACKGROUNDS / "SOURCES.md").read_text(), re.M)
    out = []
    for name, origin, lic in rows:
        with Image.open(BACKGROUNDS / name) as im:
            if name not in SKIP_PHOTOS and min(im.size) >= SIDE:
                out.append((BACKGROUNDS / name, origin.strip(), lic.strip()))
    return out


def degrade(img: np.ndarray, kind: str) -> np.ndarray:
    """A degraded copy of an RGB crop (JPEG is applied when saving)."""
    if kind.startswith("blur"):
        return cv2.GaussianBlur(img, (0, 0), float(kind[4:]))
    if kind == "updown3":
        small = cv2.resize(img, (SIDE // 3, SIDE // 3), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (SIDE, SIDE), interpolation=cv2.INTER_CUBIC)
    return img


def save_all(out: Path, name: str, crop: np.ndarray, meta: dict) -> list[dict]:
    """Write a sharp crop and its degraded copies (skipping existing files); return their labels."""
    rows = []
    for kind in (None, *DEGRADE):
        fn = f"{'sharp' if kind is None else kind}/{name}.{'jpg' if kind == 'jpeg10' else 'png'}"
        if not (out / fn).exists():
            (out / fn).parent.mkdir(parents=True, exist_ok=True)
            im = Image.fromarray(degrade(crop, kind) if kind else crop)
            im.save(out / fn, quality=10) if kind == "jpeg10" else im.save(out / fn, optimize=False)
        rows.append({"file": fn, "degraded": kind, **meta})
    return rows


def build(out: Path) -> None:
    """Build the whole set into ``out``."""
    rng = np.random.default_rng(SEED)
    labels: list[dict] = []
    packages: dict[str, tuple[str, str]] = {}
    with tempfile.TemporaryDirectory() as tmpd:
        work = Path(tmpd)
        for pkg, rel, lang, kind, quota, per_page in TEXT_SOURCES:
            root, version, lic = fetch(pkg, work)
            packages[pkg] = (version, lic)
            got = 0
            srng = np.random.default_rng([SEED, len(labels)])
            for page, img in render_pages(root, rel, kind, srng, work):
                for y, x in page_crops(img, srng, min(per_page, quota - got)):
                    name = f"text-{pkg}-{kind}-{got:03d}"
                    meta = {"text_rich": True, "lang": lang, "licence": lic,
                            "source": {"package": f"{pkg} {version}", "file": rel if kind == "pdf" else page.split()[0],
                                       "page": page, "crop_xywh": [x, y, SIDE, SIDE]}}
                    labels += save_all(out, name, img[y:y + SIDE, x:x + SIDE], meta)
                    got += 1
                if got >= quota:
                    break
            LOG.info("%s %s: %d text crops", pkg, kind, got)
            if got < quota:
                LOG.warning("%s %s: only %d of %d crops", pkg, kind, got, quota)
    photos = natural_sources()
    n = 0
    for k, (path, origin, lic) in enumerate(photos):
        per_photo = PER_CLASS // len(photos) + (k < PER_CLASS % len(photos))
        img = np.asarray(Image.open(path).convert("RGB"))
        h, w = img.shape[:2]
        tries = 0
        for i in range(per_photo):
            while n < PER_CLASS and tries < 50:
                tries += 1
                size = int(rng.integers(SIDE, min(h, w, 2 * SIDE) + 1))  # native or downscaled, never upscaled
                y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
                crop = cv2.resize(img[y:y + size, x:x + size], (SIDE, SIDE), interpolation=cv2.INTER_AREA)
                if cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).std() >= 12:  # drop featureless crops (sky, bokeh)
                    meta = {"text_rich": False, "lang": None, "licence": lic,
                            "source": {"package": origin.split(":")[0], "file": f"backgrounds/{path.name}",
                                       "page": None, "crop_xywh": [x, y, size, size]}}
                    labels += save_all(out, f"photo-{path.stem}-{i}", crop, meta)
                    n += 1
                    break
    LOG.info("%d natural crops from %d photos", n, len(photos))
    with open(out / "labels.jsonl", "w") as f:
        for row in labels:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    write_sources(out, packages, labels)


def write_sources(out: Path, packages: dict[str, tuple[str, str]], labels: list[dict]) -> None:
    """Write SOURCES.md: packages, versions, licences and counts."""
    sharp = [r for r in labels if r["degraded"] is None]
    lines = ["# Filter evaluation set", "",
             f"Built by `scripts/build_filter_evalset.py` (seed {SEED}). Labels come from page geometry and ink statistics",
             "(text) or from the source being a photograph (natural), never from OCR.", "",
             f"- sharp crops: {sum(r['text_rich'] for r in sharp)} text-rich, {sum(not r['text_rich'] for r in sharp)} natural;"
             f" each also as {', '.join(DEGRADE)} ({len(labels)} images in all)", "",
             "## Text-rich (Debian bookworm documentation packages)", "",
             "| Package | Version | Licence (copyright file, `Files: *`) |", "|---|---|---|"]
    lines += [f"| `{p}` | {v} | {lic} |" for p, (v, lic) in packages.items()]
    lines += ["", "Licence evidence: `usr/share/doc/<package>/copyright` in each .deb. Crops are modified",
              "excerpts (rendered at 100-150 dpi or screenshot by Chromium) and stay under the GPL.", "",
              "## Natural (photos from `backgrounds/`, see backgrounds/SOURCES.md for authors)", "",
              "| Photo | Crops | Licence |", "|---|---|---|"]
    seen: dict[str, list] = {}
    for r in sharp:
        if not r["text_rich"]:
            seen.setdefault(r["source"]["file"], [0, r["licence"]])[0] += 1
    lines += [f"| `{f}` | {c} | {lic} |" for f, (c, lic) in seen.items()]
    (out / "SOURCES.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("~/.cache/textinfuse/filter-evalset").expanduser())
    ap.add_argument("--force", action="store_true", help="rebuild even if labels.jsonl is complete")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    labels = args.out / "labels.jsonl"
    if labels.exists() and not args.force:
        rows = [json.loads(ln) for ln in labels.read_text().splitlines()]
        if rows and all((args.out / r["file"]).exists() for r in rows):
            LOG.info("%s is complete (%d images); --force to rebuild", args.out, len(rows))
            return
    for sub in ("sharp", *DEGRADE):  # files from an older, different build must not be reused
        shutil.rmtree(args.out / sub, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    build(args.out)


if __name__ == "__main__":
    main()
