#!/usr/bin/env python3
"""Rebuild the bundled text corpora in ``corpora/`` from Debian packages.

Every source is an openly licensed Debian package fetched with
``apt-get download`` (nothing is installed), unpacked with ``dpkg-deb -x``,
converted to plain text, cleaned and written as one paragraph per line.
Sources larger than their byte budget are sampled with a fixed seed, so the
output is deterministic for a given set of package versions.

Usage::

    python scripts/build_corpora.py --out corpora
"""
from __future__ import annotations

import argparse
import fnmatch
import html.parser
import logging
import random
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

LOG = logging.getLogger("build_corpora")
SEED = 20240601


@dataclass(frozen=True)
class Source:
    """One Debian package and the files taken from it."""

    name: str  # output file stem
    lang: str  # "zh" or "en"
    package: str
    globs: tuple[str, ...]  # fnmatch patterns, relative to the package root
    kind: str  # "html" or "fortune"
    budget: int  # maximum output size in bytes
    license_package: str | None = None  # package holding the copyright file
    exclude: str = ""  # fnmatch pattern of files to leave out


SOURCES: tuple[Source, ...] = (
    Source("debian_reference_zh", "zh", "debian-reference-zh-cn",
           ("usr/share/debian-reference/*.zh-cn.html",), "html", 350_000),
    Source("fortunes_zh", "zh", "fortunes-zh",
           ("usr/share/games/fortunes/tang300", "usr/share/games/fortunes/song100",
            "usr/share/games/fortunes/chinese"), "fortune", 700_000),
    Source("libreoffice_help_zh", "zh", "libreoffice-help-zh-cn",
           ("usr/share/libreoffice/help/zh-CN/text/*.html",), "html", 800_000),
    Source("lilypond_docs_zh", "zh", "lilypond-doc-html-zh",
           ("usr/share/doc/lilypond/html/Documentation/*-big-page.zh.html",), "html", 250_000),
    Source("kicad_docs_zh", "zh", "kicad-doc-zh", ("usr/share/doc/kicad/help/zh/*.html",),
           "html", 200_000),
    Source("gimp_help_zh", "zh", "gimp-help-zh-cn",
           ("usr/share/gimp/2.0/help/zh_CN/*.html",), "html", 150_000, "gimp-help-common",
           exclude="*/gfdl*.html"),
    Source("debian_faq_zh", "zh", "debian-faq-zh-cn",
           ("usr/share/doc/debian/FAQ/zh-cn/*.html",), "html", 150_000),
    Source("maint_guide_zh", "zh", "maint-guide-zh-cn",
           ("usr/share/doc/maint-guide-zh-cn/html/*.html",), "html", 150_000),
    Source("debian_edu_manual_zh", "zh", "debian-edu-doc-zh-cn",
           ("usr/share/doc/debian-edu-doc-zh-cn/debian-edu-bookworm-manual.html",), "html", 100_000),
    Source("debian_reference_en", "en", "debian-reference-en",
           ("usr/share/debian-reference/*.en.html",), "html", 350_000),
    Source("gnu_standards_en", "en", "gnu-standards",
           ("usr/share/doc/gnu-standards/*.html",), "html", 300_000),
    Source("python_docs_en", "en", "python3.11-doc",
           ("usr/share/doc/python3.11/html/tutorial/*.html", "usr/share/doc/python3.11/html/howto/*.html",
            "usr/share/doc/python3.11/html/faq/*.html"), "html", 350_000),
    Source("debian_faq_en", "en", "debian-faq",
           ("usr/share/doc/debian/FAQ/*.html",), "html", 150_000),
    Source("maint_guide_en", "en", "maint-guide",
           ("usr/share/doc/maint-guide/html/*.en.html",), "html", 150_000),
)

BLOCK_TAGS = {"p", "div", "li", "dd", "dt", "td", "th", "tr", "h1", "h2", "h3", "h4", "h5", "h6",
              "blockquote", "br", "table", "ul", "ol", "dl", "title", "section", "hr", "caption"}
SKIP_TAGS = {"pre", "script", "style", "head", "header", "aside", "nav", "footer", "noscript"}
SKIP_CLASSES = {"navheader", "navfooter", "toc", "list-of-tables", "list-of-figures", "related",
                "sphinxsidebar", "footer", "highlight", "doctest", "mobile-nav", "screen",
                "programlisting", "synopsis", "cmdsynopsis", "literallayout", "legalnotice",
                "MAC"}  # LibreOffice: macOS-only alternative of the default key names
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
CJK_OR_FW = r"[\u2e80-\u9fff\u3000-\u303f\uff00-\uffef]"
SPACE_BETWEEN_CJK = re.compile(rf"(?<={CJK_OR_FW}) +(?={CJK_OR_FW})")
HEADING = re.compile(r"^(?:第 ?[\d.]+ ?[章节部]|[表图例] ?[\dA-Z]+[.\d]*|[\dA-Z]+(?:\.\d+)+\.?)")
BAD_CHARS = re.compile(r"[\u2500-\u257f$#{}<>|\\]|\.\.\.\.|^[\W\d_]")


class TextExtractor(html.parser.HTMLParser):
    """Collect block-level text from HTML, skipping code and navigation."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self._buf: list[str] = []
        self._skip: list[tuple[str, int]] = []  # (tag, nesting depth of that tag)

    def _flush(self) -> None:
        if self._buf:
            self.blocks.append("".join(self._buf))
            self._buf = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip:
            if tag == self._skip[-1][0]:
                self._skip[-1] = (tag, self._skip[-1][1] + 1)
            return
        classes = set((dict(attrs).get("class") or "").split())
        if tag in SKIP_TAGS or classes & SKIP_CLASSES:
            self._flush()
            self._skip.append((tag, 1))
        elif tag in BLOCK_TAGS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if self._skip:
            name, depth = self._skip[-1]
            if tag == name:
                self._skip[-1] = (name, depth - 1)
                if depth == 1:
                    self._skip.pop()
            return
        if tag in BLOCK_TAGS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._buf.append(data)

    def close(self) -> None:
        super().close()
        self._flush()


def normalise(text: str) -> str:
    """Collapse whitespace; drop spaces that line wrapping put between CJK characters."""
    text = re.sub(r"\s+", " ", text.replace("\u00b6", "").replace("\u00a0", " ")).strip()
    return SPACE_BETWEEN_CJK.sub("", text)


def html_paragraphs(path: Path) -> list[str]:
    """Return the text blocks of an HTML file."""
    parser = TextExtractor()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    parser.close()
    return parser.blocks


def fortune_paragraphs(path: Path) -> list[str]:
    """Split a fortune file into paragraphs; drop coloured titles and '-- attribution' lines."""
    out: list[str] = []
    for entry in path.read_text(encoding="utf-8", errors="replace").split("\n%\n"):
        for block in re.split(r"\n\s*\n", entry):
            lines = [ln for ln in block.splitlines()
                     if not ln.startswith("\x1b") and not ln.strip().startswith("--")]
            out.append("\n".join(ANSI.sub("", ln) for ln in lines))
    return out


def is_simplified(text: str) -> bool:
    """Heuristic: at most 3% of the hanzi fall outside GB2312 (Traditional text fails this)."""
    han = "".join(HAN.findall(text))
    outside = len(han) - len(han.encode("gb2312", errors="ignore")) // 2
    return outside <= 0.03 * len(han)


def keep_zh(text: str) -> bool:
    """Running Simplified Chinese: >= 20 chars, >= 30% hanzi, no box drawing or shell syntax."""
    han = len(HAN.findall(text))
    visible = len(text.replace(" ", ""))
    return (len(text) >= 20 and han >= 10 and han >= 0.3 * visible and not HEADING.match(text)
            and not re.search(r"[\u2500-\u257f{}<>$|\\]", text) and is_simplified(text))


def keep_en(text: str) -> bool:
    """English prose: a sentence-like paragraph of mostly letters, not code or a heading."""
    words = text.split()
    letters = sum(c.isalpha() or c == " " for c in text)
    return (len(words) >= 10 and letters >= 0.85 * len(text) and text[-1] in ".?!:)\"'"
            and text[0].isupper() and not HEADING.match(text) and not BAD_CHARS.search(text)
            and not HAN.search(text))


COMMON_LICENSES = ("GPL-2", "GPL-3", "GFDL-1.2", "GFDL-1.3", "MPL-2.0")


def fetch(package: str, workdir: Path, licenses: Path) -> tuple[Path, str]:
    """Download and unpack a Debian package, copy its copyright file; return (root, version)."""
    subprocess.run(["apt-get", "download", package], cwd=workdir, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deb = sorted(workdir.glob(f"{package}_*.deb"))[-1]
    version = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], check=True,
                             capture_output=True, text=True).stdout.strip()
    root = workdir / package
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    copyright_file = root / "usr/share/doc" / package / "copyright"
    if copyright_file.is_file() and not copyright_file.parent.is_symlink():
        shutil.copyfile(copyright_file, licenses / f"{package}.copyright")
    LOG.info("fetched %s %s", package, version)
    return root, version


def collect(src: Source, root: Path, seen: set[str]) -> list[str]:
    """Extract, clean and filter one source; ``seen`` deduplicates across all sources."""
    files = sorted(p for p in root.rglob("*") if p.is_file()
                   and any(fnmatch.fnmatch(str(p.relative_to(root)), g) for g in src.globs)
                   and not (src.exclude and fnmatch.fnmatch(str(p), src.exclude)))
    if not files:
        raise RuntimeError(f"{src.package}: no files match {src.globs}")
    keep = keep_zh if src.lang == "zh" else keep_en
    reader = html_paragraphs if src.kind == "html" else fortune_paragraphs
    paras: list[str] = []
    dropped_trad = 0
    for f in files:
        for raw in reader(f):
            text = normalise(raw)
            if text in seen:
                continue
            if not keep(text):
                dropped_trad += src.lang == "zh" and len(text) >= 20 and not is_simplified(text)
                continue
            seen.add(text)
            paras.append(text)
    LOG.info("%s: %d files, %d paragraphs kept, %d dropped as non-Simplified",
             src.name, len(files), len(paras), dropped_trad)
    return paras


def sample(paras: list[str], budget: int, seed: int) -> list[str]:
    """Deterministically pick paragraphs up to ``budget`` bytes, keeping the original order."""
    if sum(len(p.encode()) + 1 for p in paras) <= budget:
        return paras
    order = list(range(len(paras)))
    random.Random(seed).shuffle(order)
    chosen: list[int] = []
    size = 0
    for i in order:
        n = len(paras[i].encode()) + 1
        if size + n <= budget:
            chosen.append(i)
            size += n
    return [paras[i] for i in sorted(chosen)]


def write_charsets(out: Path) -> tuple[list[str], list[str]]:
    """Write GB2312 level-1 (rows 16-55) and all GB2312 hanzi (rows 16-87), from Python's codec."""
    def rows(first: int, last: int) -> list[str]:
        chars = []
        for row in range(first, last + 1):
            for cell in range(1, 95):
                try:
                    chars.append(bytes([0xA0 + row, 0xA0 + cell]).decode("gb2312"))
                except UnicodeDecodeError:
                    pass
        return chars
    level1, allhan = rows(16, 55), rows(16, 87)
    assert len(level1) == 3755 and len(allhan) == 6763, (len(level1), len(allhan))
    (out / "charsets").mkdir(parents=True, exist_ok=True)
    (out / "charsets/gb2312_level1.txt").write_text("\n".join(level1) + "\n", encoding="utf-8")
    (out / "charsets/gb2312_all.txt").write_text("\n".join(allhan) + "\n", encoding="utf-8")
    return level1, allhan


def write_readme(out: Path, stats: list[tuple[str, int, int, int]], level1: list[str],
                 allhan: list[str]) -> None:
    """Compute coverage figures, log them and write corpora/README.md."""
    zh_text = "".join(p.read_text(encoding="utf-8") for p in sorted((out / "zh").glob("*.txt")))
    han = Counter(HAN.findall(zh_text))
    cov1 = sum(1 for c in level1 if c in han) / len(level1)
    cov_all = sum(1 for c in allhan if c in han) / len(allhan)
    outside = sorted(c for c in han if c not in set(allhan))
    lines = ["# Bundled corpora", "",
             "Generated by `python scripts/build_corpora.py --out corpora`; see SOURCES.md for",
             "provenance and licences. One paragraph per line, UTF-8.", "",
             "| file (Debian package, version) | paragraphs | characters | bytes |",
             "|---|---:|---:|---:|"]
    lines += [f"| {name} | {n} | {chars:,} | {size:,} |" for name, n, chars, size in stats]
    lines += ["", "## Chinese character statistics (all of corpora/zh)", "",
              f"- distinct hanzi: {len(han):,}",
              f"- coverage of GB2312 level 1 (3,755 chars, charsets/gb2312_level1.txt): {cov1:.2%}",
              f"- coverage of all GB2312 hanzi (6,763 chars, charsets/gb2312_all.txt): {cov_all:.2%}",
              f"- distinct hanzi outside GB2312: {len(outside)}", ""]
    (out / "README.md").write_text("\n".join(lines), encoding="utf-8")
    LOG.info("distinct hanzi %d; GB2312 L1 coverage %.2f%%; all-GB2312 coverage %.2f%%",
             len(han), 100 * cov1, 100 * cov_all)


def main() -> None:
    """Entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("corpora"))
    ap.add_argument("--keep-tmp", action="store_true", help="keep the download directory")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    out: Path = args.out
    work = Path(tempfile.mkdtemp(prefix="corpora-"))
    licenses = out / "licenses"
    licenses.mkdir(parents=True, exist_ok=True)
    for name in COMMON_LICENSES:  # full licence texts, from Debian's base-files
        shutil.copyfile(Path("/usr/share/common-licenses") / name, licenses / f"{name}.txt")
    stats: list[tuple[str, int, int, int]] = []
    versions: dict[str, str] = {}
    seen: set[str] = set()
    try:
        for src in SOURCES:
            root, versions[src.package] = fetch(src.package, work, licenses)
            if src.license_package:
                _, versions[src.license_package] = fetch(src.license_package, work, licenses)
            paras = sample(collect(src, root, seen), src.budget, SEED)
            target = out / src.lang / f"{src.name}.txt"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("\n".join(paras) + "\n", encoding="utf-8")
            chars = sum(len(p) for p in paras)
            stats.append((f"{src.lang}/{src.name}.txt ({src.package} {versions[src.package]})",
                          len(paras), chars, target.stat().st_size))
            LOG.info("wrote %s: %d paragraphs, %d chars", target, len(paras), chars)
        level1, allhan = write_charsets(out)
        write_readme(out, stats, level1, allhan)
    finally:
        if not args.keep_tmp:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
