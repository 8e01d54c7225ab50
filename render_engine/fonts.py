"""Font library: find faces, know exactly which characters each covers, pick a face for a string.

Coverage comes from each face's best cmap (fontTools), kept only where FreeType finds a glyph with an
outline, computed once per face and cached for the process. A string is only ever given to a face
that covers every character in it; characters no face covers are removed before layout and reported,
so no missing-glyph box and no silently blank character is ever in an image.

Font files are untrusted input: special files are refused unread, WOFF/WOFF2 decompression is bounded
before fontTools runs (it checks sizes only after decompressing), and the plain sfnt FreeType needs is
kept in a per-user cache (`webfonts.cached_sfnt`), never in the shared temp folder.
"""

from __future__ import annotations

import json
import logging
import stat
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from textinfuse.files import Refused, read_regular

from .webfonts import WebFontError, cached_sfnt

log = logging.getLogger(__name__)

FONT_EXTS = {".ttf", ".otf", ".ttc", ".otc", ".woff", ".woff2"}
COLLECTION_EXTS = {".ttc", ".otc"}
WEB_EXTS = {".woff", ".woff2"}
WHITESPACE = frozenset(" \t\n\u3000\u00a0")
MAX_WEB_FONT_BYTES = 128 * 2**20  # a .woff/.woff2 as found (the largest CJK web fonts are ~20 MB)
MAX_MANIFEST_BYTES = 4 * 2**20
# what each language of TextConfig.langs needs one face to write (mixed text is set in one Chinese face)
LANG_SCRIPTS = {"en": ("English", ("latin",)), "zh": ("Chinese", ("han",)),
                "mixed": ("mixed Chinese and English", ("han", "latin"))}
_LETTER = {"latin": lambda c: "A" <= c <= "Z" or "a" <= c <= "z", "han": lambda c: "\u4e00" <= c <= "\u9fff"}


@dataclass(frozen=True, eq=False)
class FontFace:
    """One face of one font file. `id` is stable across machines: path relative to its root + '#index'."""

    id: str
    # the file FreeType opens; for WOFF/WOFF2 a decompressed copy in this user's cache, valid on this machine
    # only: FontLibrary.load runs in each worker process (Renderer per worker), so pickled faces stay local
    path: str
    index: int
    family: str
    style: str
    category: str
    chars: frozenset[str] = field(repr=False)
    source_file: str = ""  # the file as found (differs from `path` for WOFF/WOFF2)
    # draws lowercase letters as capitals (an all-caps or small-caps face such as Bebas Neue): text set in
    # it is upper-cased before layout (`FontLibrary.pick`), so the label says what the image shows
    caps_only: bool = False

    @cached_property
    def scripts(self) -> tuple[str, ...]:
        """'han' and/or 'latin', from coverage of a few very common characters."""
        out = []
        if sum(1 for c in "永的是不了人我在有他这中大来上国" if c in self.chars) >= 12:
            out.append("han")
        if all(c in self.chars for c in "AZaz09"):
            out.append("latin")
        return tuple(out)

    def covers(self, text: str | set[str]) -> bool:
        return (set(text) - WHITESPACE) <= self.chars


class FontError(ValueError):
    """A font, or the set of fonts, that cannot serve (the message is the reason, one line)."""


def _name(tt, name_id: int) -> str:
    name = tt["name"].getDebugName(name_id) if "name" in tt else None
    return name or ""


def _drawn_chars(ft, cmap: dict[int, str]) -> tuple[frozenset[str], int]:
    """The characters of `cmap` FreeType draws with ink (or that are spaces), and how many it would draw
    blank or fail on. A glyph with no outline would leave a character in the label and none in the image;
    a glyph FreeType cannot load would fail the whole shard at render time."""
    import freetype

    flags = freetype.FT_LOAD_NO_SCALE | freetype.FT_LOAD_NO_BITMAP
    ok, bad, seen = [], 0, {}
    for cp in cmap:
        if cp < 0x20 or 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        gi = ft.get_char_index(cp)  # FreeType's cmap is the one rendering uses
        if gi not in seen:
            try:
                ft.load_glyph(gi, flags)
                seen[gi] = gi != 0 and ft.glyph.outline.n_contours > 0
            except freetype.FT_Exception:
                seen[gi] = False
        if seen[gi]:
            ok.append(ch)
            continue
        kind = unicodedata.category(ch)
        if gi != 0 and (ch in WHITESPACE or kind == "Zs"):  # spaces are meant to be blank
            ok.append(ch)
        elif kind not in ("Cc", "Cf", "Zl", "Zp"):  # invisible ones are stripped from text anyway
            bad += 1
    return frozenset(ok), bad


def _outline_shape(ft, cp: int):
    """(glyph id, contour ends, outline points scaled to a unit box) of a character, or None if blank."""
    import freetype

    gi = ft.get_char_index(cp)
    if gi == 0:
        return None
    ft.load_glyph(gi, freetype.FT_LOAD_NO_SCALE | freetype.FT_LOAD_NO_BITMAP)
    pts = np.asarray(ft.glyph.outline.points, float).reshape(-1, 2)
    if not len(pts):
        return None
    pts -= pts.min(0)
    return gi, tuple(ft.glyph.outline.contours), pts / max(float(pts.max()), 1.0)


def _caps_only(ft, chars: frozenset[str]) -> bool:
    """True when most lowercase letters are drawn with their capital's glyph, or its outline at another
    size (all-caps and small-caps faces): at least 20 of the 26 pairs, of which the face draws >= 10."""
    same = pairs = 0
    for lo in "abcdefghijklmnopqrstuvwxyz":
        if lo not in chars or lo.upper() not in chars:
            continue
        a, b = _outline_shape(ft, ord(lo)), _outline_shape(ft, ord(lo.upper()))
        if a is None or b is None:
            continue
        pairs += 1
        same += a[0] == b[0] or (a[1] == b[1] and a[2].shape == b[2].shape and
                                 float(np.abs(a[2] - b[2]).max()) <= 0.02)
    return pairs >= 10 and same >= 20


def _load_faces(path: Path, rel: str, meta: dict) -> list[FontFace]:
    """All faces in one file, or raise FontError with the reason."""
    import freetype
    from fontTools.ttLib import TTCollection, TTFont, TTLibError

    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise FontError("not a regular file")
        if st.st_size == 0:
            raise FontError("empty file")
        suffix = path.suffix.lower()
        ft_path = cached_sfnt(read_regular(path, MAX_WEB_FONT_BYTES)) if suffix in WEB_EXTS else path
        # coverage is read from the very file FreeType opens, so labels and images cannot disagree
        if suffix in COLLECTION_EXTS:
            fonts = list(TTCollection(str(ft_path), lazy=True).fonts)
        else:
            fonts = [TTFont(str(ft_path), lazy=True)]
        faces = []
        for i, tt in enumerate(fonts):
            cmap = tt.getBestCmap()
            if not cmap:
                raise FontError(f"face {i} has no usable cmap")
            ft = freetype.Face(str(ft_path), i)  # FreeType must open it too
            chars, bad = _drawn_chars(ft, cmap)
            if not chars - WHITESPACE:
                raise FontError(f"face {i} draws none of its {len(cmap)} characters")
            if bad > max(10, len(cmap) // 100):
                log.warning("%s: face %d: %d characters map to empty or broken glyphs; treated as missing",
                            path, i, bad)
            family = meta.get("family") or _name(tt, 16) or _name(tt, 1) or path.stem
            style = meta.get("style") or _name(tt, 17) or _name(tt, 2) or "Regular"
            faces.append(
                FontFace(
                    id=f"{rel}#{i}", path=str(ft_path), index=i, family=family, style=style,
                    category=meta.get("category", "unknown"), chars=chars, source_file=str(path),
                    caps_only=_caps_only(ft, chars),
                )
            )
        return faces
    except FontError:
        raise
    except (Refused, WebFontError) as e:
        raise FontError(str(e)) from None
    except (TTLibError, OSError, KeyError, AssertionError, ValueError, IndexError, freetype.FT_Exception) as e:
        raise FontError(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'unreadable'}") from None
    except Exception as e:  # fontTools raises assorted errors on damaged tables
        raise FontError(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'unreadable'}") from None


_FILE_CACHE: dict[tuple[str, int, int], list[FontFace]] = {}


class FontLibrary:
    """The faces available to a job. Build with `FontLibrary.load(dirs)`; picklable and cheap to reload."""

    def __init__(self, faces: list[FontFace], skipped: list[tuple[str, str]] | None = None,
                 sources: list[str] | None = None):
        if not faces:
            raise FontError(f"no usable font faces in {', '.join(sources or []) or 'the fonts given'}")
        self.faces = sorted(faces, key=lambda f: f.id)
        self.by_id = {f.id: f for f in self.faces}
        self.skipped = skipped or []
        self.sources = sources or sorted({str(Path(f.source_file).parent) for f in self.faces})
        self._union = frozenset().union(*(f.chars for f in self.faces))

    @classmethod
    def load(cls, dirs: list[str | Path]) -> FontLibrary:
        """Scan folders (recursively) or single files for fonts. Broken files, and folders that give no
        face, are skipped with a one-line warning and listed in `skipped` as (path, reason)."""
        faces: list[FontFace] = []
        skipped: list[tuple[str, str]] = []
        for d in dirs:
            root = Path(d)
            if root.is_file():
                files, base = [root], root.parent
            elif root.is_dir():
                files, base = sorted(p for p in root.rglob("*") if p.suffix.lower() in FONT_EXTS), root
            else:
                why = "not a font file or folder" if root.exists() else "not found"
                log.warning("%s: font folder skipped (%s)", root, why)
                skipped.append((str(root), why))
                continue
            meta = _read_manifest(root if root.is_dir() else root.parent)
            n = len(faces)
            for p in files:
                rel = f"{base.name}/{p.relative_to(base).as_posix()}"
                try:
                    st = p.stat()
                    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
                    if key not in _FILE_CACHE:
                        _FILE_CACHE[key] = _load_faces(p, rel, meta.get(p.relative_to(base).as_posix(), {}))
                    faces.extend(_FILE_CACHE[key])
                except (FontError, OSError) as e:
                    log.warning("%s: broken font skipped (%s)", p, e)
                    skipped.append((str(p), str(e)))
            if root.is_dir() and len(faces) == n:  # a --fonts folder that adds nothing must not pass unnoticed
                why = (f"none of its {len(files)} font files could be loaded" if files else
                       f"no font files in it ({' '.join(sorted(FONT_EXTS))})")
                log.warning("%s: font folder gives no faces: %s", root, why)
                skipped.append((str(root), why))
        return cls(faces, skipped, [str(d) for d in dirs])

    def require(self, langs: Iterable[str]) -> None:
        """Raise FontError if, for a language, no face writes even one letter of each script it needs (see
        LANG_SCRIPTS): the job would run to the end and drop every character of it. Partial coverage
        is not refused: characters no face covers are dropped and counted, sample by sample."""
        for lang in langs:
            name, scripts = LANG_SCRIPTS[lang]
            if not any(all(any(map(_LETTER[s], f.chars)) for s in scripts) for f in self.faces):
                need = " and ".join(f"'{s}'" for s in scripts)
                raise FontError(f"no font covers {name} (langs includes {lang}): the fonts given "
                                f"({', '.join(self.sources)}) have no face that writes {need}")

    def covered(self, ch: str) -> bool:
        return ch in self._union or ch in WHITESPACE

    def faces_for(self, script: str, without: str | None = None) -> list[FontFace]:
        """Faces that write `script` ('han' or 'latin'), optionally excluding those that also write `without`."""
        return [f for f in self.faces if script in f.scripts and (without is None or without not in f.scripts)]

    def pick(
        self, text: str, candidates: list[FontFace], rng: np.random.Generator
    ) -> tuple[FontFace, str, str]:
        """Choose a face for `text` among `candidates`; return (face, kept text, dropped chars).

        Characters no face of the library covers are dropped. Among candidates that cover everything
        left, one is chosen at random; if none does, the one covering most is used and the rest dropped.
        A `caps_only` face gets the text upper-cased (where the capital is one character it draws).
        """
        need = set(text) - WHITESPACE
        missing = need - self._union
        dropped = "".join(c for c in text if c in missing) if missing else ""
        kept = "".join(c for c in text if c not in missing) if missing else text
        candidates = candidates or self.faces
        need -= missing
        full = [f for f in candidates if need <= f.chars]
        if full:
            face = full[int(rng.integers(len(full)))]
        else:
            face = max(candidates, key=lambda f: (len(need & f.chars), f.id))
            dropped += "".join(c for c in kept if not face.covers(c))
            kept = "".join(c for c in kept if face.covers(c))
        return face, (_upper(kept, face) if face.caps_only else kept), dropped


def _upper(text: str, face: FontFace) -> str:
    """`text` with every letter whose capital is one character `face` draws replaced by that capital."""
    return "".join(u if len(u) == 1 and u in face.chars else c for c, u in ((c, c.upper()) for c in text))


def _read_manifest(root: Path) -> dict[str, dict]:
    """Optional fonts/manifest.json: family/style/category per file (relative path). Anything unusable in
    it is ignored with a warning: it only names fonts, and the fonts' own names are the fallback."""
    m = root / "manifest.json"
    if not m.exists():
        return {}
    try:
        data = json.loads(read_regular(m, MAX_MANIFEST_BYTES).decode("utf-8"))
        entries = data.get("fonts", []) if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise FontError("expected an object with a list 'fonts'")
        out, bad = {}, 0
        for e in entries:
            if not (isinstance(e, dict) and isinstance(e.get("file"), str)):
                bad += 1
                continue
            names = {k: v for k, v in e.items() if k in ("family", "style", "category")}
            out[e["file"]] = {k: v for k, v in names.items() if isinstance(v, str) and v}
            bad += len(out[e["file"]]) < len(names)
        if bad:
            log.warning("%s: %d font manifest entries ignored in whole or part (wrong types)", m, bad)
        return out
    except (OSError, ValueError, FontError, RecursionError) as e:
        log.warning("%s: unreadable font manifest ignored (%s)", m, e)
        return {}
