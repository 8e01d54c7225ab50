"""Line breaking and block layout.

English breaks at spaces; Chinese between jieba words, with kinsoku rules: no line starts with closing
punctuation and no line ends with opening punctuation. A block is filled with whole lines only; text
that does not fit is left out (and so is never in the label).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np

CLOSING = frozenset(
    "）)]｝}〕〉》」』】〙〗〟’”｠»、。，．,.：；:;！？!?‼⁇⁈⁉…‥・ー〜～%％‰°℃ーぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ々"
)
OPENING = frozenset("（([｛{〔〈《「『【〘〖〝‘“｟«$¥￥£€#")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]")
_WORDS = re.compile(r"\S+|\s+")


def has_cjk(text: str) -> bool:
    return _CJK.search(text) is not None


@lru_cache(maxsize=1)
def _jieba():
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


_TOKENS: dict[str, tuple[str, ...]] = {}
_MAX_CACHED = 300_000
_SEP = "\x1f"


def _tokenize(paragraph: str) -> tuple[str, ...]:
    if has_cjk(paragraph):
        raw = _jieba().lcut(paragraph, HMM=False)
    else:
        raw = _WORDS.findall(paragraph)
    out: list[str] = []
    for tok in raw:
        if out and not tok.isspace() and not out[-1].isspace() and (tok[0] in CLOSING or out[-1][-1] in OPENING):
            out[-1] += tok
        else:
            out.append(tok)
    return tuple(out)


def tokenize(paragraph: str) -> tuple[str, ...]:
    """Break opportunities: tokens whose boundaries are allowed line breaks (kinsoku applied). Cached."""
    toks = _TOKENS.get(paragraph)
    if toks is None:
        toks = _tokenize(paragraph)
        if len(_TOKENS) < _MAX_CACHED:
            _TOKENS[paragraph] = toks
    return toks


def preload(paragraphs: list[str], cache_dir: Path | None = None) -> None:
    """Segment a corpus once. With `cache_dir`, segmentations are kept in a text file keyed by the corpus
    hash, so later processes (e.g. every Ray worker) read them instead of running jieba again."""
    todo = [p for p in paragraphs if p not in _TOKENS and has_cjk(p)]
    if not todo:
        return
    path = None
    if cache_dir is not None:
        import jieba

        h = hashlib.sha256("\n".join(todo).encode() + jieba.__version__.encode()).hexdigest()[:20]
        path = cache_dir / f"seg-{h}.txt"
        try:
            lines = path.read_text(encoding="utf-8").split("\n")
            if len(lines) == len(todo):
                cached = [tuple(ln.split(_SEP)) for ln in lines]
                if all("".join(t) == p for t, p in zip(cached, todo, strict=True)):  # never trust a stale file
                    _TOKENS.update(zip(todo, cached, strict=True))
                    return
        except OSError:
            pass
    segs = [_tokenize(p) for p in todo]
    _TOKENS.update(zip(todo, segs, strict=True))
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text("\n".join(_SEP.join(t) for t in segs), encoding="utf-8")
            os.replace(tmp, path)
        except OSError:
            pass


def _split_long(token: str, width: Callable[[str], float], first_w: float, max_w: float) -> list[str]:
    """Break one over-long token between characters, still obeying kinsoku; the first piece gets
    `first_w`, the rest `max_w`."""
    pieces: list[str] = []
    cur = ""
    limit = first_w
    for ch in token:
        if cur and width(cur + ch) > limit:
            # oidashi: never start a piece with closing punctuation or end one with opening punctuation
            while len(cur) > 1 and (ch in CLOSING or cur[-1] in OPENING):
                ch = cur[-1] + ch
                cur = cur[:-1]
            pieces.append(cur)
            cur = ch
            limit = max_w
        else:
            cur += ch
    if cur:
        pieces.append(cur)
    return pieces


def wrap(paragraph: str, width: Callable[[str], float], max_w: float, max_lines: int = 1 << 30,
         first_w: float | None = None) -> list[str]:
    """Greedy wrap of one paragraph into lines no wider than `max_w` (spaces at breaks are dropped);
    the first line may have its own width `first_w` (an indent).

    Stops once `max_lines` complete lines exist (the rest would not be shown anyway)."""
    lines: list[str] = []
    limit = max_w if first_w is None else first_w
    cur = ""
    cur_w = 0.0
    for tok in tokenize(paragraph):
        if len(lines) >= max_lines:
            return lines[:max_lines]
        if tok.isspace():
            if cur:
                w = width(tok)
                if cur_w + w > limit:
                    lines.append(cur)
                    limit = max_w
                    cur, cur_w = "", 0.0
                else:
                    cur += tok
                    cur_w += w
            continue
        w = width(tok)
        if cur_w + w <= limit:
            cur += tok
            cur_w += w
            continue
        if cur.strip():
            lines.append(cur.rstrip())
            limit = max_w
        cur, cur_w = "", 0.0
        if w <= limit:
            cur, cur_w = tok, w
            continue
        pieces = _split_long(tok, width, limit, max_w)
        lines.extend(pieces[:-1])
        if len(pieces) > 1:
            limit = max_w
        cur = pieces[-1]
        cur_w = width(cur)
    if cur.strip():
        lines.append(cur.rstrip())
    return lines[:max_lines]


def grid(region: tuple[int, int, int, int], px: int, line_spacing: float, columns: int, gap: int) -> tuple[int, float]:
    """(rows per column, column width) of a block: whole lines whose ink stays inside the region."""
    _, _, w, h = region
    col_w = (w - gap * (columns - 1)) / columns
    pitch = px * line_spacing
    usable = h - round(0.9 * px) - round(0.3 * px)
    rows = int(usable // pitch) + 1 if usable >= 0 else 0
    return (rows if col_w >= 2 * px else 0), col_w


def fill(text: str, width: Callable[[str], float], capacity: int, col_w: float, indent: float, px: int
         ) -> list[tuple[str, bool]]:
    """Wrap paragraphs (newline-separated) into at most `capacity` lines of width `col_w`.

    Returns (line, starts_paragraph) pairs; a paragraph's first line is shortened by `indent` em.
    """
    out: list[tuple[str, bool]] = []
    ind = indent * px
    for para in text.split("\n"):
        para = para.strip()
        if not para:
            continue
        lines = wrap(para, width, col_w, capacity - len(out), col_w - ind if ind else None)
        for k, line in enumerate(lines):
            if len(out) >= capacity:
                return out
            out.append((line, k == 0))
    return out


def place(lines: list[tuple[str, bool]], advances: np.ndarray, region: tuple[int, int, int, int], px: int,
          line_spacing: float, align: str = "left", columns: int = 1, gap: int = 0, indent: float = 0.0
          ) -> tuple[np.ndarray, np.ndarray]:
    """Positions for lines from `fill`: column by column, top to bottom, aligned within the column.

    `advances` holds the advance (px) of every character of the lines joined without separators.
    Returns the pen x of every such character (float) and the baseline y of every line (int).
    """
    x0, y0, _, _ = region
    rows, col_w = grid(region, px, line_spacing, columns, gap)
    n = len(lines)
    lens = np.fromiter((len(t) for t, _ in lines), np.int64, n)
    ends = np.cumsum(lens)
    starts = ends - lens
    pen = np.concatenate([[0.0], np.cumsum(advances)])  # pen before each character, from the block start
    widths = pen[ends] - pen[starts]
    col, row = np.divmod(np.arange(n), max(rows, 1))
    if align == "center":
        off = (col_w - widths) / 2
    elif align == "right":
        off = col_w - widths
    else:
        off = np.fromiter((indent * px if p else 0.0 for _, p in lines), np.float64, n)
    left = x0 + col * (col_w + gap) + np.maximum(0.0, off)
    xs = pen[:-1] + np.repeat(left - pen[starts], lens)
    base = np.fromiter((round(r * px * line_spacing) for r in row.tolist()), np.int64, n)
    return xs, y0 + round(0.9 * px) + base
