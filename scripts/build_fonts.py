#!/usr/bin/env python3
"""Rebuild the bundled ``fonts/`` folder from Debian font packages.

Downloads the packages with ``apt-get download``, extracts them with
``dpkg-deb -x``, subsets the fonts with fontTools, copies the licence texts
and writes ``fonts/manifest.json`` and ``fonts/README.md``.

Fonts with an OFL Reserved Font Name (RFN) are either shipped unmodified or,
when subsetting is unavoidable (LXGW WenKai), renamed as OFL clause 3 requires.

Usage: python scripts/build_fonts.py --out fonts [--work /tmp/textinfuse-fonts]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

log = logging.getLogger("build_fonts")

LATIN_RANGES = [(0x20, 0x7E), (0xA0, 0x17F), (0x2000, 0x206F), (0x20A0, 0x20CF)]
ZH_EXTRA_RANGES = [(0x20, 0x7E), (0xA0, 0xFF), (0x2000, 0x206F), (0x3000, 0x303F), (0xFF00, 0xFFEF)]
APACHE_TEXT = ("base-files", "usr/share/common-licenses/Apache-2.0")


@dataclass(frozen=True)
class Spec:
    """One output face: where it comes from and how it is processed."""

    out: str  # path relative to fonts/
    package: str
    path: str  # path inside the package
    category: str
    license: str
    license_file: str  # file name under fonts/licenses/
    face: int = 0  # index inside a TTC/OTC collection
    subset: bool = True  # False: copied byte for byte (fonts with an OFL RFN)
    rename: tuple[str, str] | None = None  # (family, PostScript family) for RFN fonts

    @property
    def is_zh(self) -> bool:
        return self.out.startswith("zh/")


# fmt: off
DJV = "usr/share/fonts/truetype/dejavu/"
NOTO = "usr/share/fonts/opentype/noto/"
SPECS = [
    Spec("latin/DejaVuSans.ttf", "fonts-dejavu-core", DJV + "DejaVuSans.ttf", "sans", "Bitstream-Vera", "DejaVu.txt"),
    Spec("latin/DejaVuSans-Bold.ttf", "fonts-dejavu-core", DJV + "DejaVuSans-Bold.ttf", "sans", "Bitstream-Vera", "DejaVu.txt"),
    Spec("latin/DejaVuSansMono.ttf", "fonts-dejavu-core", DJV + "DejaVuSansMono.ttf", "mono", "Bitstream-Vera", "DejaVu.txt"),
    Spec("latin/LiberationSerif-Regular.ttf", "fonts-liberation2", "usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf", "serif", "OFL-1.1", "Liberation.txt", subset=False),
    Spec("latin/LiberationSerif-Bold.ttf", "fonts-liberation2", "usr/share/fonts/truetype/liberation2/LiberationSerif-Bold.ttf", "serif", "OFL-1.1", "Liberation.txt", subset=False),
    Spec("latin/RobotoCondensed-Regular.ttf", "fonts-roboto-unhinted", "usr/share/fonts/truetype/roboto/unhinted/RobotoCondensed-Regular.ttf", "condensed", "Apache-2.0", "Roboto.txt"),
    Spec("latin/ComicNeue-Regular.otf", "fonts-comic-neue", "usr/share/fonts/opentype/comic-neue/ComicNeue-Regular.otf", "handwriting", "OFL-1.1", "ComicNeue.txt", subset=False),
    Spec("latin/DancingScript-Regular.otf", "fonts-dancingscript", "usr/share/fonts/opentype/dancingscript/DancingScript-Regular.otf", "handwriting", "OFL-1.1", "DancingScript.txt", subset=False),
    Spec("latin/BebasNeue-Regular.otf", "fonts-bebas-neue", "usr/share/fonts/opentype/bebas-neue/BebasNeue-Regular.otf", "display", "OFL-1.1", "BebasNeue.txt", subset=False),
    Spec("latin/YanoneKaffeesatz-Regular.otf", "fonts-yanone-kaffeesatz", "usr/share/fonts/opentype/yanone-kaffeesatz/YanoneKaffeesatz-Regular.otf", "condensed", "OFL-1.1", "YanoneKaffeesatz.txt", subset=False),
    Spec("latin/Cantarell-Regular.otf", "fonts-cantarell", "usr/share/fonts/opentype/cantarell/Cantarell-Regular.otf", "sans", "OFL-1.1", "Cantarell.txt", subset=False),
    Spec("zh/NotoSansSC-Regular.otf", "fonts-noto-cjk", NOTO + "NotoSansCJK-Regular.ttc", "sans", "OFL-1.1", "NotoCJK.txt", face=2),
    Spec("zh/NotoSansSC-Bold.otf", "fonts-noto-cjk", NOTO + "NotoSansCJK-Bold.ttc", "sans", "OFL-1.1", "NotoCJK.txt", face=2),
    Spec("zh/NotoSerifSC-Regular.otf", "fonts-noto-cjk", NOTO + "NotoSerifCJK-Regular.ttc", "serif", "OFL-1.1", "NotoCJK.txt", face=2),
    Spec("zh/TextInfuseKai-Regular.ttf", "fonts-lxgw-wenkai", "usr/share/fonts/truetype/lxgw-wenkai/LXGWWenKai-Regular.ttf", "kai", "OFL-1.1", "LXGWWenKai.txt", rename=("TextInfuse Kai", "TextInfuseKai")),
    Spec("zh/SmileySans-Oblique.ttf", "fonts-smiley-sans", "usr/share/fonts/truetype/smiley-sans/SmileySans-Oblique.ttf", "display", "OFL-1.1", "SmileySans.txt"),
]
# fmt: on


def gb2312_hanzi() -> list[int]:
    """Return the 6,763 GB2312 hanzi (rows 16-87) as code points."""
    out = []
    for hi in range(0xB0, 0xF8):
        for lo in range(0xA1, 0xFF):
            try:
                out.append(ord(bytes([hi, lo]).decode("gb2312")))
            except UnicodeDecodeError:
                continue
    return out


def expand(ranges: list[tuple[int, int]]) -> set[int]:
    return {cp for lo, hi in ranges for cp in range(lo, hi + 1)}


def fetch(package: str, work: Path) -> tuple[Path, str]:
    """Download and extract *package* into *work*; return (root, version)."""
    debs = work / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        log.info("apt-get download %s", package)
        subprocess.run(["apt-get", "download", package], cwd=debs, check=True)
        found = sorted(debs.glob(f"{package}_*.deb"))
    deb = found[-1]
    version = subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Version"], check=True, capture_output=True, text=True
    ).stdout.strip()
    root = work / "x" / package
    if not root.exists():
        root.mkdir(parents=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root, version


def rename(font: TTFont, family: str, ps_family: str) -> None:
    """Replace all family-bearing name records (OFL RFN compliance)."""
    name = font["name"]
    style = name.getDebugName(17) or name.getDebugName(2) or "Regular"
    name.names = [r for r in name.names if r.nameID not in (1, 3, 4, 6, 16, 17, 18, 21, 22)]
    ps_style = style.replace(" ", "")
    records = {
        1: family,
        2: style,
        3: f"{ps_family}-{ps_style};TextInfuse subset",
        4: f"{family} {style}",
        6: f"{ps_family}-{ps_style}",
    }
    for nid, value in records.items():
        name.setName(value, nid, 3, 1, 0x409)


def build_face(spec: Spec, src: Path, dest: Path, want: set[int]) -> None:
    """Subset (or copy) one face from *src* to *dest*."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not spec.subset:
        shutil.copyfile(src, dest)
        return
    font = TTFont(src, fontNumber=spec.face, recalcTimestamp=False, lazy=False)
    opts = subset.Options()
    opts.name_IDs = ["*"]
    opts.name_languages = ["*"]
    opts.name_legacy = True
    opts.notdef_outline = True
    opts.glyph_names = False
    opts.hinting = not spec.is_zh
    opts.desubroutinize = False
    opts.layout_features = ["kern", "liga", "locl", "ccmp", "vert", "vrt2", "vhal", "vpal"]
    opts.drop_tables += ["DSIG", "meta"]
    sub = subset.Subsetter(opts)
    sub.populate(unicodes=sorted(want & set(font.getBestCmap())))
    sub.subset(font)
    if spec.rename:
        rename(font, *spec.rename)
    font.save(dest)


def describe(path: Path, gb: set[int]) -> dict:
    """Read family/style/weight and coverage of a built font."""
    font = TTFont(path, lazy=True)
    name = font["name"]
    cmap = set(font.getBestCmap())
    data = path.read_bytes()
    return {
        "family": name.getDebugName(16) or name.getDebugName(1),
        "style": name.getDebugName(17) or name.getDebugName(2),
        "weight": font["OS/2"].usWeightClass,
        "num_chars": len(cmap),
        "num_gb2312_hanzi": len(cmap & gb),
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
    }


def copy_license(spec: Spec, root: Path, out: Path, apache: Path | None) -> None:
    """Copy the package's copyright file (plus the Apache text it references)."""
    text = (root / "usr/share/doc" / spec.package / "copyright").read_text(encoding="utf-8")
    if spec.license == "Apache-2.0" and apache is not None:
        text += "\n\n" + "=" * 72 + f"\nFull text of /{APACHE_TEXT[1]} (Debian base-files):\n\n"
        text += apache.read_text(encoding="utf-8")
    dest = out / "licenses" / spec.license_file
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text, encoding="utf-8")


def write_readme(out: Path, fonts: list[dict]) -> None:
    """Write fonts/README.md with a table generated from the manifest."""
    rows = "\n".join(
        f"| `{f['file']}` | {f['family']} {f['style']} | {f['category']} | {f['license']} "
        f"| {f['num_gb2312_hanzi'] or '-'} | {f['bytes'] / 1e6:.2f} MB |"
        for f in fonts
    )
    total = sum(f["bytes"] for f in fonts) / 1e6
    (out / "README.md").write_text(
        f"""# Bundled fonts

Openly licensed fonts used by the TextInfuse renderer (English and Simplified
Chinese). Every file is a single face (no collections; face index 0). All come
from Debian bookworm packages; `manifest.json` records the package, version,
path inside the package, licence, sha256 and character coverage of each.

| File | Face | Category | Licence | GB2312 hanzi | Size |
|---|---|---|---|---|---|
{rows}

Total: {total:.2f} MB.

## Modifications

* Latin fonts marked Bitstream-Vera/Apache-2.0 are subset to Basic Latin,
  Latin-1, Latin Extended-A, General Punctuation and Currency Symbols.
  Fonts with an OFL Reserved Font Name (Liberation, Dancing Script) and the
  other small OFL Latin fonts are shipped unmodified.
* Chinese fonts are subset (hinting dropped) to the 6,763 GB2312 hanzi plus
  ASCII, Latin-1, General Punctuation, CJK Symbols and Punctuation and
  Halfwidth/Fullwidth Forms, keeping only characters the source font has.
* `TextInfuse Kai` is a subset of LXGW WenKai (霞鹜文楷). Its Reserved Font
  Names ("霞鹜", "LXGW") may not be used by a Modified Version (OFL-1.1 §3),
  so the subset is renamed; it is otherwise the same design.

## Licences

`licenses/` holds the Debian `copyright` file of each source package, which
contains the full licence text (for Apache-2.0 the text is appended from
Debian's `base-files`). OFL-1.1 fonts remain under OFL-1.1; DejaVu is under
the Bitstream Vera licence (DejaVu changes public domain).

## Rebuild

On Debian bookworm (needs `apt-get`, `dpkg-deb` and `fonttools`):

    python scripts/build_fonts.py --out fonts
""",
        encoding="utf-8",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("fonts"))
    parser.add_argument(
        "--work", type=Path, default=Path("/tmp/textinfuse-fonts"), help="download/extract cache directory"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    logging.getLogger("fontTools").setLevel(logging.WARNING)

    gb_list = gb2312_hanzi()
    assert len(gb_list) == 6763, len(gb_list)
    gb = set(gb_list)
    latin_want, zh_want = expand(LATIN_RANGES), expand(ZH_EXTRA_RANGES) | gb
    for sub_dir in ("latin", "zh", "licenses"):
        shutil.rmtree(args.out / sub_dir, ignore_errors=True)

    apache_root, _ = fetch(APACHE_TEXT[0], args.work)
    fonts = []
    for spec in SPECS:
        root, version = fetch(spec.package, args.work)
        dest = args.out / spec.out
        log.info("%s <- %s:%s#%d", spec.out, spec.package, spec.path, spec.face)
        build_face(spec, root / spec.path, dest, zh_want if spec.is_zh else latin_want)
        copy_license(spec, root, args.out, apache_root / APACHE_TEXT[1])
        info = describe(dest, gb)
        face = f", face {spec.face}" if spec.path.endswith((".ttc", ".otc")) else ""
        note = (
            f"; subset, renamed from {TTFont(root / spec.path, lazy=True)['name'].getDebugName(1)}"
            if spec.rename
            else ("; subset" if spec.subset else "; unmodified")
        )
        fonts.append(
            {
                "file": spec.out,
                "family": info["family"],
                "style": info["style"],
                "weight": info["weight"],
                "category": spec.category,
                "scripts": ["han", "latin"] if spec.is_zh else ["latin"],
                "num_chars": info["num_chars"],
                "num_gb2312_hanzi": info["num_gb2312_hanzi"],
                "sha256": info["sha256"],
                "bytes": info["bytes"],
                "license": spec.license,
                "license_file": f"licenses/{spec.license_file}",
                "source": f"Debian package {spec.package} {version} ({spec.path}{face}{note})",
            }
        )
        log.info(
            "  %-32s %8.1f KB  chars=%d gb2312=%d",
            info["family"],
            info["bytes"] / 1024,
            info["num_chars"],
            info["num_gb2312_hanzi"],
        )

    manifest = {"version": 1, "fonts": fonts}
    (args.out / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    write_readme(args.out, fonts)
    total = sum(f["bytes"] for f in fonts)
    log.info("total font bytes: %d (%.2f MB) in %d files", total, total / 1e6, len(fonts))


if __name__ == "__main__":
    main()
