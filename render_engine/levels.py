"""Difficulty levels, from 1 (easy) to 5 (hard).

| level | name        | char px (em) | contrast (WCAG) | background               | effect chance | readability band |
|-------|-------------|--------------|-----------------|--------------------------|---------------|------------------|
| 1     | easy        | 14-20        | 7-21            | calmest of 4 crops       | low           | >= 0.99          |
| 2     | moderate    | 10-16        | 4.5-12          | calmer of 2 crops        | low-medium    | 0.97-0.99        |
| 3     | medium      | 8-13         | 3-5             | any crop                 | medium        | 0.9-0.97         |
| 4     | challenging | 6-10         | 2-3.5           | busier of 2 crops        | medium-high   | 0.6-0.9          |
| 5     | hard        | 5-7          | 1.5-2.5         | busiest of 4 crops       | high          | < 0.6            |

Char px is the em size in pixels (see README "Character size"). Sizes are drawn uniformly from the
level's range intersected with the job's `char_px` range. Contrast is the target ratio between the text
colour and the mean background luminance under the text block; the label records the achieved value.
A share of page blocks (`text.ink_share`) is printed in ink instead (INK_CONTRAST, whatever the level).

Readability is the bundled OCR's mean order-free character F1 on the level's samples (`textinfuse
calibrate`): the bands are character error rates of at most 1 %, 1-3 %, 3-10 %, 10-40 % and over 40 %,
each step about three times the error of the one before (README, "Difficulty levels", has the measured
figures). The renderer keeps faces inside them: at each level a face is drawn only at sizes where it
reads at least the band's floor under the easiest conditions (`render_engine/legibility.py`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Level:
    level: int
    name: str
    char_px: tuple[int, int]  # inclusive em-size range, px
    contrast: tuple[float, float]  # WCAG ratio range
    background_tries: int  # crops tried; the calmest (positive) or busiest (negative) is kept
    readability: tuple[float, float]  # the band [floor, ceiling) of OCR character F1 its samples read in


LEVELS: dict[int, Level] = {
    1: Level(1, "easy", (14, 20), (7.0, 21.0), 4, (0.99, 1.0)),
    2: Level(2, "moderate", (10, 16), (4.5, 12.0), 2, (0.97, 0.99)),
    3: Level(3, "medium", (8, 13), (3.0, 5.0), 1, (0.9, 0.97)),
    4: Level(4, "challenging", (6, 10), (2.0, 3.5), -2, (0.6, 0.9)),
    5: Level(5, "hard", (5, 7), (1.5, 2.5), -4, (0.0, 0.6)),
}


# the contrast (WCAG ratio) of ink on a page: print and screen text, from dark grey to black on white
INK_CONTRAST = (12.0, 21.0)


def bands() -> tuple[float, ...]:
    """The levels' readability floors, best first, without level 5's (0): level 1 reads >= bands[0], ..."""
    return tuple(LEVELS[n].readability[0] for n in sorted(LEVELS)[:-1])


def scaled(level: int, scale: float = 1.0) -> tuple[int, int]:
    """The level's em range times `scale` (`text.level_scale`), rounded: the levels are set for an f16
    autoencoder at native resolution; a model that resolves text at another scale stretches them."""
    lo, hi = LEVELS[level].char_px
    return max(1, round(lo * scale)), max(1, round(hi * scale))


def size_range(level: int, char_px: tuple[int, int], scale: float = 1.0) -> tuple[int, int]:
    """The level's (scaled) char-px range clipped to the job's range; ValueError if they do not overlap."""
    lo, hi = scaled(level, scale)
    a, b = max(lo, char_px[0]), min(hi, char_px[1])
    if a > b:
        raise ValueError(
            f"level {level} ({LEVELS[level].name}) draws {lo}-{hi} px characters"
            f"{'' if scale == 1.0 else f' (level_scale {scale:g})'}, which does not overlap "
            f"char_px {char_px[0]}-{char_px[1]}"
        )
    return a, b


def parse_levels(text: str) -> list[int]:
    """Levels from a CLI value: numbers or names, single ("3", "medium"), ranges ("2-4", "easy-medium")
    and comma lists of either ("1,3,5", "easy,hard"); sorted, without repeats. ValueError names the
    unknown part and the valid names."""
    by_name = {lv.name: n for n, lv in LEVELS.items()}

    def one(tok: str) -> int:
        tok = tok.strip().lower()
        n = by_name.get(tok, int(tok) if tok.isdigit() else None)
        if n not in LEVELS:
            raise ValueError(f"level {tok!r}: use 1-5 or a name ({', '.join(by_name)})")
        return n

    out: set[int] = set()
    for part in text.split(","):
        a, sep, b = part.partition("-")
        lo, hi = one(a), one(b) if sep else one(a)
        if lo > hi:
            raise ValueError(f"levels {part.strip()!r}: the range runs from easier to harder ({lo} > {hi})")
        out.update(range(lo, hi + 1))
    return sorted(out)
