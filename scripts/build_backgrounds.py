#!/usr/bin/env python3
"""Rebuild the default set of background photographs shipped in ``backgrounds/``.

The photos come from pinned Debian packages (``apt-get download``) and pinned
PyPI wheels (``pip download --no-deps``); every file is listed explicitly below
with its licence, as checked in the package's ``copyright`` file or the
library's own documentation.  Images are converted to sRGB JPEG (longer side at
most 1024 px, quality 88, no metadata) so that reruns with the same Pillow
version give byte-identical output.  Needs Pillow, ``apt-get`` and ``pip``.

Usage: ``python scripts/build_backgrounds.py --out backgrounds``
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import NamedTuple

from PIL import Image, ImageCms, ImageOps

LOG = logging.getLogger("build_backgrounds")
MAX_SIDE, MIN_SHORT_SIDE, QUALITY, MAX_GREYSCALE = 1024, 256, 88, 2
COMMON_LICENSES = Path("/usr/share/common-licenses")


class Source(NamedTuple):
    """A pinned package: ``kind`` is ``deb`` or ``wheel``."""

    kind: str
    name: str
    version: str
    copyright_path: str  # licence/attribution document inside the package


SOURCES: dict[str, Source] = {
    "skimage": Source("wheel", "scikit-image", "0.26.0", "skimage/data/_fetchers.py"),
    "sklearn": Source("wheel", "scikit-learn", "1.9.1", "sklearn/datasets/images/README.txt"),
    "mate": Source("deb", "mate-backgrounds", "1.26.0-1",
                   "usr/share/doc/mate-backgrounds/copyright"),
    "lomiri1604": Source("deb", "lomiri-wallpapers-16.04", "20.04.0-2",
                         "usr/share/doc/lomiri-wallpapers-16.04/copyright"),
    "lomiri2004": Source("deb", "lomiri-wallpapers-20.04", "20.04.0-2",
                         "usr/share/doc/lomiri-wallpapers-20.04/copyright"),
}

PD = "LicenseRef-PublicDomain"
SKI, MATE, L16 = "skimage/data/", "usr/share/backgrounds/mate/nature/", "usr/share/backgrounds/"
# (output name, source key, path inside package, licence, attribution)
IMAGES: list[tuple[str, str, str, str, str]] = [
    ("astronaut", "skimage", SKI + "astronaut.png", PD, "NASA (Eileen Collins portrait), via scikit-image"),
    ("chelsea", "skimage", SKI + "chelsea.png", "CC0-1.0", "Stefan van der Walt, via scikit-image"),
    ("coffee", "skimage", SKI + "coffee.png", "CC0-1.0", "Rachel Michetti (Pikolo Espresso Bar), via scikit-image"),
    ("rocket", "skimage", SKI + "rocket.jpg", PD, "SpaceX (DSCOVR launch), via scikit-image"),
    ("hubble-deep-field", "skimage", SKI + "hubble_deep_field.jpg", PD, "NASA / Hubble eXtreme Deep Field, via scikit-image"),
    ("retina", "skimage", SKI + "retina.jpg", "CC0-1.0", "Mikael Häggström (Wikimedia Commons), via scikit-image"),
    ("brick", "skimage", SKI + "brick.png", "CC0-1.0", "CC0Textures (Bricks25), via scikit-image"),
    ("gravel", "skimage", SKI + "gravel.png", "CC0-1.0", "CC0Textures (Gravel04), via scikit-image"),
    ("china", "sklearn", "sklearn/datasets/images/china.jpg", "CC-BY-2.0",
     "danielbuechele, https://www.flickr.com/photos/danielbuechele/6061409035/ (via scikit-learn)"),
    ("flower", "sklearn", "sklearn/datasets/images/flower.jpg", "CC-BY-2.0",
     "vultilion, https://www.flickr.com/photos/vultilion/6056698931/ (via scikit-learn)"),
    ("aitzgorri", "lomiri1604", L16 + "aitzgorri_by_Aitzol_Berasategi.jpg", "CC-BY-4.0", "Aitzol Berasategi, 2018"),
    ("friends", "lomiri1604", L16 + "friends_by_Aitzol_Berasategi.jpg", "CC-BY-4.0", "Aitzol Berasategi, 2018"),
    ("life", "lomiri1604", L16 + "life_by_Aitzol_Berasategi.jpg", "CC-BY-4.0", "Aitzol Berasategi, 2018"),
    ("picosdeeuropa", "lomiri1604", L16 + "picosdeeuropa_by_Aitzol_Berasategi.jpg", "CC-BY-4.0", "Aitzol Berasategi, 2018"),
    ("sunset", "lomiri1604", L16 + "sunset_by_Aitzol_Berasategi.jpg", "CC-BY-4.0", "Aitzol Berasategi, 2018"),
    ("fig-bowl", "lomiri1604", L16 + "Picture_0B_by_freespace.jpg", "CC-BY-4.0", 'Trevor "Freespace", 2018'),
    ("brushes", "lomiri1604", L16 + "Picture_1A_by_freespace.jpg", "CC-BY-4.0", 'Trevor "Freespace", 2018'),
    ("wine", "lomiri1604", L16 + "Wine_by_Jakkub_Mede.jpg", "CC-BY-4.0", "Jakub Mede, 2018"),
    ("seeding", "lomiri1604", L16 + "seeding_by_Clements_Engelhardt.jpg", "CC0-1.0", "Clemens Engelhardt, 2018"),
    ("bridge", "lomiri1604", L16 + "Bridge_by_Sander_Klootwijk.jpg", "CC-BY-SA-4.0", "Sander Klootwijk, 2018"),
    ("dragonfly", "lomiri1604", L16 + "Dragonfly_by_Bolly.jpg", "CC-BY-SA-4.0", '"Bolly", 2018'),
    ("free", "lomiri1604", L16 + "free_by_Peter_Nerlich.jpg", "CC-BY-SA-4.0", "Peter Nerlich, 2018"),
    ("greentock", "lomiri1604", L16 + "greentock_by_Peter_Nerlich.jpg", "CC-BY-SA-4.0", "Peter Nerlich, 2018"),
    ("textured-surface", "lomiri1604", L16 + "analogpattern_by_Peter_Nerlich.jpg", "CC-BY-SA-4.0", "Peter Nerlich, 2018"),
    ("kleiber", "lomiri2004", L16 + "Kleiber_by_Lukas_Baubkus.jpg", "CC-BY-SA-3.0", "Lukas Baubkus, 2021"),
    ("aqua", "mate", MATE + "Aqua.jpg", "GPL-2.0-or-later", "Charles Barbin, 2008"),
    ("ladybird", "mate", MATE + "LadyBird.jpg", "GPL-2.0-or-later", "Charles Barbin, 2008"),
    ("yellow-flower", "mate", MATE + "YellowFlower.jpg", "GPL-2.0-or-later", "Charles Barbin, 2008"),
    ("garden", "mate", MATE + "Garden.jpg", "GPL-2.0-or-later", "Charles Barbin, 2008"),
    ("two-wings", "mate", MATE + "TwoWings.jpg", "GPL-2.0-or-later", "Charles Barbin, Hylke Bons, 2008"),
    ("blinds", "mate", MATE + "Blinds.jpg", "GPL-2.0-or-later", "Lennart Poettering, Andrea Cimitan, 2008"),
    ("dune", "mate", MATE + "Dune.jpg", "GPL-2.0-or-later", "Marco Cogoni 2007, Hylke Bons 2008"),
    ("fresh-flower", "mate", MATE + "FreshFlower.jpg", "GPL-2.0-or-later", "Jens Ansorg, 2005"),
    ("green-meadow", "mate", MATE + "GreenMeadow.jpg", "GPL-2.0-or-later", "Timothy Schellhase 2005, Lapo Calamandrei 2008"),
    ("raindrops", "mate", MATE + "RainDrops.jpg", "GPL-2.0-or-later", '"blackcombwhistler07", 2008'),
    ("storm", "mate", MATE + "Storm.jpg", "GPL-2.0-or-later", "Sergey Nazarov, 2008"),
    ("wood", "mate", MATE + "Wood.jpg", "GPL-2.0-or-later", "Jean-François Fortin Tam, 2008"),
]

LICENSE_URLS = {
    PD: "(no licence: public domain as stated by the source; see PUBLIC-DOMAIN.txt)",
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/legalcode",
    "CC-BY-2.0": "https://creativecommons.org/licenses/by/2.0/legalcode",
    "CC-BY-4.0": "https://creativecommons.org/licenses/by/4.0/legalcode",
    "CC-BY-SA-3.0": "https://creativecommons.org/licenses/by-sa/3.0/legalcode",
    "CC-BY-SA-4.0": "https://creativecommons.org/licenses/by-sa/4.0/legalcode",
    "GPL-2.0-or-later": "https://www.gnu.org/licenses/old-licenses/gpl-2.0.txt",
}


def fetch(source: Source, workdir: Path) -> Path:
    """Download and unpack one pinned package; return its extraction root."""
    dest = workdir / source.name
    dest.mkdir()
    if source.kind == "deb":
        cmd = ["apt-get", "download", f"{source.name}={source.version}"]
        subprocess.run(cmd, cwd=workdir, check=True, capture_output=True)
        deb = next(workdir.glob(f"{source.name}_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], check=True)
    else:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
               "--only-binary=:all:", "--platform", "manylinux_2_28_x86_64",
               "--python-version", "3.11", "-d", str(workdir),
               f"{source.name}=={source.version}"]
        subprocess.run(cmd, check=True)
        wheel = next(workdir.glob(f"{source.name.replace('-', '_')}-{source.version}-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(dest)
    LOG.info("fetched %s %s", source.name, source.version)
    return dest


def to_jpeg(path: Path) -> tuple[bytes, int, int, bool]:
    """Return (jpeg bytes, width, height, is_greyscale) for one source image."""
    with Image.open(path) as src:
        im = ImageOps.exif_transpose(src)
        icc = src.info.get("icc_profile")
        grey = src.mode in ("1", "L", "LA", "I", "I;16")
        im = im.convert("RGBA").convert("RGB") if "A" in im.mode or im.mode == "P" else im.convert("RGB")
        if icc:  # map embedded colour profiles to sRGB
            prof = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            im = ImageCms.profileToProfile(im, prof, ImageCms.createProfile("sRGB"), outputMode="RGB")
    if min(im.size) < MIN_SHORT_SIDE:
        raise ValueError(f"{path.name}: short side {min(im.size)} < {MIN_SHORT_SIDE}")
    scale = MAX_SIDE / max(im.size)
    if scale < 1:
        size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
        im = im.resize(size, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=QUALITY, optimize=True, subsampling="4:2:0", exif=b"")
    return buf.getvalue(), im.width, im.height, grey


def license_texts(roots: dict[str, Path]) -> dict[str, str]:
    """Collect the licence texts relied on, from the packages and the host."""
    texts: dict[str, str] = {}
    copyright_file = roots["lomiri1604"] / SOURCES["lomiri1604"].copyright_path
    for block in copyright_file.read_text(encoding="utf-8").split("\n\n"):
        block = block.strip("\n")
        match = re.match(r"License: (CC-BY-4\.0|CC-BY-SA-3\.0|CC-BY-SA-4\.0)\n", block)
        if match and block.count("\n") > 3:
            body = [ln[1:] for ln in block.splitlines()[1:]]
            texts[match.group(1)] = "\n".join("" if ln == "." else ln for ln in body) + "\n"
    for spdx, name in (("CC0-1.0", "CC0-1.0"), ("GPL-2.0-or-later", "GPL-2")):
        host = COMMON_LICENSES / name
        texts[spdx] = host.read_text(encoding="utf-8") if host.exists() else (
            f"Full text: {LICENSE_URLS[spdx]}\n")
    readme = roots["sklearn"] / SOURCES["sklearn"].copyright_path
    texts["CC-BY-2.0"] = ("Creative Commons Attribution 2.0 Generic (CC BY 2.0)\n"
                          f"Legal code: {LICENSE_URLS['CC-BY-2.0']}\n(Section 4a allows "
                          "including the licence URI instead of a copy.)\n\nAttribution "
                          "notice from scikit-learn (sklearn/datasets/images/README.txt):\n\n"
                          + readme.read_text(encoding="utf-8"))
    texts[PD] = ("Public-domain images from scikit-image "
                 f"{SOURCES['skimage'].version} (skimage/data/_fetchers.py docstrings):\n"
                 "- astronaut.png: NASA Great Images database; released into the public domain.\n"
                 "- rocket.jpg: SpaceX; released into the public domain (2015).\n"
                 "- hubble_deep_field.jpg: captured by NASA; may be freely used in the public domain.\n")
    return texts


def write_docs(out: Path, entries: list[dict[str, object]], rows: list[str]) -> None:
    """Write manifest.json and SOURCES.md."""
    manifest = {"version": 1, "images": entries}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                                       encoding="utf-8")
    pkgs = "\n".join(f"- `{s.name}` {s.version} ({'Debian bookworm .deb' if s.kind == 'deb' else 'PyPI wheel'}); "
                     f"licence evidence: `{s.copyright_path}`" for s in SOURCES.values())
    lic = "\n".join(f"- `{k}`: {v}" for k, v in LICENSE_URLS.items())
    (out / "SOURCES.md").write_text(
        "# Background photographs\n\nReal photographs used as backgrounds by the synthetic "
        "text renderer. Each was converted to sRGB JPEG (longer side <= 1024 px, quality "
        f"{QUALITY}, metadata stripped); these are modified versions of the originals.\n\n"
        "| File | Origin (package version: path) | Author / attribution | Licence |\n"
        "|---|---|---|---|\n" + "\n".join(rows) + "\n\n## Packages\n\n" + pkgs +
        "\n\n## Licences\n\nTexts are in `licenses/`.\n\n" + lic +
        "\n\nShare-alike (CC-BY-SA) and GPL images stay under their own licences when "
        "redistributed; they are data files, not linked code.\n\n## Rebuild\n\n"
        "```\npython scripts/build_backgrounds.py --out backgrounds\n```\n\n"
        "Needs Debian `apt-get`, `dpkg-deb`, `pip` and Pillow; output is byte-identical "
        f"for the same Pillow version (built with Pillow {Image.__version__}).\n",
        encoding="utf-8")


def build(out: Path) -> None:
    """Fetch every source, convert the listed images and write all metadata."""
    out.mkdir(parents=True, exist_ok=True)
    old = out / "manifest.json"
    if old.exists():  # remove images from a previous build so none are stale
        for item in json.loads(old.read_text(encoding="utf-8"))["images"]:
            (out / item["file"]).unlink(missing_ok=True)
    entries: list[dict[str, object]] = []
    rows: list[str] = []
    greys = 0
    with tempfile.TemporaryDirectory(prefix="bg-") as tmp:
        roots = {key: fetch(src, Path(tmp)) for key, src in SOURCES.items()}
        for name, key, inner, lic, attribution in IMAGES:
            src = SOURCES[key]
            try:
                data, width, height, grey = to_jpeg(roots[key] / inner)
            except ValueError as err:
                LOG.warning("skipped: %s", err)
                continue
            greys += grey
            if greys > MAX_GREYSCALE:
                raise SystemExit(f"more than {MAX_GREYSCALE} greyscale images")
            fname = f"{key.rstrip('0123456789')}-{name}.jpg"
            (out / fname).write_bytes(data)
            origin = f"{src.name} {src.version}: {inner}"
            entries.append({"file": fname, "width": width, "height": height,
                            "sha256": hashlib.sha256(data).hexdigest(), "license": lic,
                            "source": origin, "attribution": attribution})
            rows.append(f"| `{fname}` | {src.name} {src.version}: `{inner}` | {attribution} | {lic} |")
            LOG.info("%s %dx%d %d KiB", fname, width, height, len(data) // 1024)
        lic_dir = out / "licenses"
        lic_dir.mkdir(exist_ok=True)
        used = {e["license"] for e in entries}
        for spdx, text in sorted(license_texts(roots).items()):
            if spdx in used:
                fname = "PUBLIC-DOMAIN.txt" if spdx == PD else f"{spdx}.txt"
                (lic_dir / fname).write_text(text, encoding="utf-8")
    write_docs(out, entries, rows)
    total = sum((out / str(e["file"])).stat().st_size for e in entries)
    LOG.info("%d images, %.2f MB", len(entries), total / 1e6)


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("backgrounds"), help="output directory")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    build(args.out)


if __name__ == "__main__":
    main()
