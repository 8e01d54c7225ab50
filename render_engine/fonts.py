"""Font library: find faces, know exactly which characters each covers, pick a face for a string.

Coverage comes from each face's best cmap (fontTools), computed once per face and cached for the
process. A string is only ever given to a face that covers every character in it; characters no
face covers are removed before layout and reported, so no missing-glyph box is ever drawn.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

FONT_EXTS = {".ttf", ".otf", ".ttc", ".otc", ".woff", ".woff2"}
COLLECTION_EXTS = {".ttc", ".otc"}
WHITESPACE = frozenset(" \t\n\u3000\u00a0")


@dataclass(frozen=True, eq=False)
class FontFace:
    """One face of one font file. `id` is stable across machines: path relative to its root + '#index'."""

    id: str
    path: str  # absolute path FreeType opens (a decompressed copy for WOFF/WOFF2)
    index: int
    family: str
    style: str
    category: str
    chars: frozenset[str] = field(repr=False)
    source_file: str = ""  # the file as found (differs from `path` for WOFF/WOFF2)

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


class FontError(Exception):
    pass


def _name(tt, name_id: int) -> str:
    name = tt["name"].getDebugName(name_id) if "name" in tt else None
    return name or ""


def _decompress_web_font(src: Path) -> Path:
    """WOFF/WOFF2 -> a plain sfnt in a per-user temp cache (FreeType builds may lack brotli)."""
    from fontTools.ttLib import TTFont

    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:16]
    cache = Path(tempfile.gettempdir()) / "textinfuse-fonts"
    cache.mkdir(exist_ok=True)
    out = cache / f"{src.stem}-{digest}.otf"
    if not out.exists():
        tt = TTFont(str(src))
        tt.flavor = None
        tmp = out.with_suffix(".tmp")
        tt.save(str(tmp))
        tmp.replace(out)
    return out


def _load_faces(path: Path, rel: str, meta: dict) -> list[FontFace]:
    """All faces in one file, or raise FontError with the reason."""
    import freetype
    from fontTools.ttLib import TTCollection, TTFont, TTLibError

    try:
        if path.stat().st_size == 0:
            raise FontError("empty file")
        if path.suffix.lower() in COLLECTION_EXTS:
            fonts = list(TTCollection(str(path), lazy=True).fonts)
        else:
            fonts = [TTFont(str(path), lazy=True)]
        ft_path = _decompress_web_font(path) if path.suffix.lower() in {".woff", ".woff2"} else path
        faces = []
        for i, tt in enumerate(fonts):
            cmap = tt.getBestCmap()
            if not cmap:
                raise FontError(f"face {i} has no usable cmap")
            freetype.Face(str(ft_path), i)  # FreeType must open it too
            chars = frozenset(chr(cp) for cp in cmap if cp >= 0x20 and not 0xD800 <= cp <= 0xDFFF)
            family = meta.get("family") or _name(tt, 16) or _name(tt, 1) or path.stem
            style = meta.get("style") or _name(tt, 17) or _name(tt, 2) or "Regular"
            faces.append(
                FontFace(
                    id=f"{rel}#{i}", path=str(ft_path), index=i, family=family, style=style,
                    category=meta.get("category", "unknown"), chars=chars, source_file=str(path),
                )
            )
        return faces
    except FontError:
        raise
    except (TTLibError, OSError, KeyError, AssertionError, ValueError, IndexError, freetype.FT_Exception) as e:
        raise FontError(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'unreadable'}") from None
    except Exception as e:  # fontTools raises assorted errors on damaged tables
        raise FontError(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'unreadable'}") from None


_FILE_CACHE: dict[tuple[str, int, int], list[FontFace]] = {}


class FontLibrary:
    """The faces available to a job. Build with `FontLibrary.load(dirs)`; picklable and cheap to reload."""

    def __init__(self, faces: list[FontFace], skipped: list[tuple[str, str]] | None = None):
        if not faces:
            raise FontError("no usable font faces found")
        self.faces = sorted(faces, key=lambda f: f.id)
        self.by_id = {f.id: f for f in self.faces}
        self.skipped = skipped or []
        self._union = frozenset().union(*(f.chars for f in self.faces))

    @classmethod
    def load(cls, dirs: list[str | Path]) -> FontLibrary:
        """Scan folders (recursively) or single files for fonts; broken files are skipped with a warning."""
        faces: list[FontFace] = []
        skipped: list[tuple[str, str]] = []
        for d in dirs:
            root = Path(d)
            if root.is_file():
                files, base = [root], root.parent
            elif root.is_dir():
                files, base = sorted(p for p in root.rglob("*") if p.suffix.lower() in FONT_EXTS), root
            else:
                log.warning("%s: font folder not found, skipped", root)
                skipped.append((str(root), "not found"))
                continue
            meta = _read_manifest(root if root.is_dir() else root.parent)
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
        return cls(faces, skipped)

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
        """
        need = set(text) - WHITESPACE
        missing = need - self._union
        dropped = "".join(c for c in text if c in missing) if missing else ""
        kept = "".join(c for c in text if c not in missing) if missing else text
        candidates = candidates or self.faces
        need -= missing
        full = [f for f in candidates if need <= f.chars]
        if full:
            return full[int(rng.integers(len(full)))], kept, dropped
        best = max(candidates, key=lambda f: (len(need & f.chars), f.id))
        lost = "".join(c for c in kept if not best.covers(c))
        return best, "".join(c for c in kept if best.covers(c)), dropped + lost


def _read_manifest(root: Path) -> dict[str, dict]:
    """Optional fonts/manifest.json: family/style/category per file (relative path)."""
    m = root / "manifest.json"
    if not m.exists():
        return {}
    try:
        data = json.loads(m.read_text(encoding="utf-8"))
        return {e["file"]: e for e in data.get("fonts", [])}
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.warning("%s: unreadable font manifest ignored (%s)", m, e)
        return {}
