"""Measured legibility of each face: how well the bundled OCR reads it at each em size, and the smallest
size at which a face may be drawn at each difficulty level.

A profile is one face (family + style) in one language with its readability curve: [em px, mean order-free
character F1] pairs measured by `textinfuse calibrate` under the easiest conditions (a page on the paper
sheet, level-1 contrast, no effect). The bundled faces' profiles ship in `fonts/legibility.json`; a
calibration writes the same file for any `--fonts` faces (`DIR/legibility.json`), which
`fonts.legibility` points the renderer at.

The renderer uses them as a guard (`Legibility.admits`): at level L a face is drawn at `px` only if its
curve reads at least the level's readability floor (`Level.readability[0]`) at that size, even under the
easiest conditions; otherwise the block's face is chosen again among the faces that do. Curves are made
non-decreasing in size first (pool-adjacent-violators: readability does not fall as text grows, and a
dip at one size is measurement noise), so a face's minimum size for a floor is well defined. Faces
without a profile are not restricted (they are listed, once, by `missing`).

The file holds data only (JSON; nothing in it is executed); anything malformed in it is refused with a
one-line error naming the file.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textinfuse.files import read_regular

from .paths import bundled_fonts

FILE_NAME = "legibility.json"
VERSION = 1
MAX_BYTES = 4 << 20
_SCRIPT = {"en": "latin", "zh": "han"}  # the script a language's text is set in
_PROFILE_LANG = {"mixed": "zh"}  # mixed Chinese-English text is set in Chinese faces: their zh profile


class LegibilityError(ValueError):
    """A legibility file that cannot be used: the message names the file and the reason."""


def bundled_table() -> Path:
    return bundled_fonts() / FILE_NAME


def monotone(curve: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """`curve` (by size) made non-decreasing by pool-adjacent-violators (the least-squares fit, equal
    weights): the readability a face is credited with at each measured size."""
    blocks: list[list[float]] = []  # [sum, count]
    for _, v in sorted(curve):
        blocks.append([v, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            s, n = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += n
    fitted = [b[0] / b[1] for b in blocks for _ in range(int(b[1]))]
    return [(s, round(f, 4)) for (s, _), f in zip(sorted(curve), fitted, strict=True)]


def min_size(curve: list[tuple[int, float]], floor: float) -> float:
    """The smallest measured size at which the monotone curve reads >= `floor` (then so does every larger
    one); infinity if it never does. Sizes between measured ones count from that measured size on."""
    for s, v in monotone(curve):
        if v >= floor:
            return float(s)
    return math.inf


@dataclass(frozen=True)
class Profile:
    family: str
    style: str
    lang: str
    curve: tuple[tuple[int, float], ...]  # (em px, mean char F1), by size, as measured
    n: int = 0  # samples per point (information)


def _key(family: str, style: str) -> tuple[str, str]:
    return family.strip().lower(), style.strip().lower()


class Legibility:
    """Profiles by (family, style, lang), and the guard built on them."""

    def __init__(self, profiles: list[Profile], source: str = "", sha256: str = ""):
        self.source = source
        self.sha256 = sha256  # of the file it was read from (a render manifest records it)
        self._by = {(*_key(p.family, p.style), p.lang): p for p in profiles}
        self._cache: dict[tuple[str, str, str, float], float] = {}

    def __len__(self) -> int:
        return len(self._by)

    def profiles(self) -> list[Profile]:
        return list(self._by.values())

    def over(self, base: Legibility) -> Legibility:
        """This table's profiles plus `base`'s for the faces and languages this one does not measure."""
        return Legibility(list({**base._by, **self._by}.values()), self.source)

    def profile(self, family: str, style: str, lang: str) -> Profile | None:
        return self._by.get((*_key(family, style), lang))

    def min_px(self, family: str, style: str, lang: str, floor: float) -> float:
        """The smallest em size at which the face reads >= floor in `lang`; 0 without a profile (no limit)."""
        k = (*_key(family, style), _PROFILE_LANG.get(lang, lang), floor)
        if k not in self._cache:
            p = self._by.get(k[:3])
            self._cache[k] = 0.0 if p is None or floor <= 0 else min_size(list(p.curve), floor)
        return self._cache[k]

    def admits(self, face: Any, lang: str, px: int, floor: float) -> bool:
        """Whether `face` (anything with .family and .style) may be drawn at `px` where text must read >=
        `floor`: no profile, or the profile reaches the floor at or below `px`."""
        return px >= self.min_px(face.family, face.style, lang, floor)

    def missing(self, faces: list[Any], langs: list[str]) -> list[str]:
        """'family style (lang)' of each face (with .family, .style, .scripts) x language it writes that
        has no profile."""
        return sorted({f"{f.family} {f.style} ({lang})" for f in faces for lang in langs
                       if _SCRIPT.get(lang) in f.scripts and (*_key(f.family, f.style), lang) not in self._by})

    def to_json(self) -> dict[str, Any]:
        return {"version": VERSION, "metric": "char_f1", "profiles": [
            {"family": p.family, "style": p.style, "lang": p.lang, "n": p.n, "curve": [list(c) for c in p.curve]}
            for p in sorted(self._by.values(), key=lambda p: (p.lang, p.family, p.style))]}

    @classmethod
    def from_json(cls, doc: Any, source: str = "", sha256: str = "") -> Legibility:
        where = source or "legibility table"
        if not isinstance(doc, dict) or doc.get("version") != VERSION or not isinstance(doc.get("profiles"), list):
            raise LegibilityError(f"{where}: not a legibility table (expected version {VERSION} and a list 'profiles')")
        out = []
        for i, p in enumerate(doc["profiles"]):
            try:
                curve = tuple(sorted((int(s), float(v)) for s, v in p["curve"]))
                if not curve or any(s < 1 or not 0 <= v <= 1 for s, v in curve) or len({s for s, _ in curve}) != len(curve):
                    raise ValueError("curve: [size >= 1, readability in [0, 1]] pairs, sizes once each")
                out.append(Profile(str(p["family"]), str(p["style"]), str(p["lang"]), curve, int(p.get("n", 0))))
            except KeyError as e:
                raise LegibilityError(f"{where}: profile {i}: no {e} key") from None
            except (TypeError, ValueError) as e:
                raise LegibilityError(f"{where}: profile {i}: {e}") from None
        return cls(out, source, sha256)

    @classmethod
    def load(cls, path: str | Path) -> Legibility:
        try:
            raw = read_regular(path, MAX_BYTES)
            doc = json.loads(raw.decode("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise LegibilityError(f"{path}: cannot read a legibility table ({e})") from None
        return cls.from_json(doc, str(path), hashlib.sha256(raw).hexdigest())


def load_table(setting: str) -> Legibility | None:
    """`fonts.legibility`: "bundled" (the shipped profiles of the bundled faces), "" or "none" (no guard),
    or a path to a legibility.json (a calibration's)."""
    if setting in ("", "none"):
        return None
    if setting == "bundled":
        p = bundled_table()
        return Legibility.load(p) if p.exists() else Legibility([], "no bundled table")
    return Legibility.load(setting)
