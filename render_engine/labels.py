"""Label formats: how version 2 stores character boxes, and one reader for versions 1 and 2.

Version 1 (`KEY.json` only) listed every character as a dict: `char`, `line` and a 4-point `box`
(about 100 bytes a character, a third of a shard). Version 2 keeps the per-character data in columns:

- `KEY.chars.npy` (a standard .npy, `<i2`, shape (N, 4)): each labelled character's ink box
  `x0, y0, x1, y1` in whole pixels (x1, y1 exclusive), in reading order, *before* the sample's geometric
  effects (rotate, perspective): the text plane.
- `label["char_boxes"]`: `member` ("chars.npy"), `count` (N) and `warp`: the 3x3 matrices the geometric
  effects applied, in order (`[]` when none). A box's quad is its corners (x0, y0), (x1, y0), (x1, y1),
  (x0, y1) mapped by each matrix in turn (`warp_points`); with no warp it is the box itself.
- The characters themselves: line `i`'s are its `text` without whitespace (`str.isspace`), unless the
  line has a `chars` string, which then lists them (a character drawn without ink, or a space with ink).
  Rows of the .npy follow the lines in order, so a row's line index is implicit.

`characters(label, member)` and `columns(label, member)` read either version; `member` is the sample's
`chars.npy` bytes (or the array a WebDataset/Ray decoder made of them), unused for version 1.
Pure numpy: the engine, `verify`, `preview` and any reader share it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

LABEL_VERSION = 2
CHARS_MEMBER = "chars.npy"  # the sample member (extension) holding version 2's character boxes
BOX_DTYPE = np.dtype("<i2")  # canvases are at most 8192 px a side (RenderConfig)
MAX_HEADER = 1024  # a .npy header of ours is 128 bytes; a longer one is not ours
_GROWTH = 21  # numpy.lib.format.GROWTH_AXIS_MAX_DIGITS


class LabelError(ValueError):
    """A label whose characters cannot be read; the message is one line and says why."""


def warp_points(points: np.ndarray, matrix: Any) -> np.ndarray:
    """Points (..., 2) mapped by a 3x3 projective matrix, in float64. The engine moves its boxes with this
    very function, so a reader that uses it gets the engine's numbers bit for bit."""
    m = np.asarray(matrix, np.float64)
    p = np.asarray(points, np.float64)
    x, y = p[..., 0], p[..., 1]
    w = x * m[2, 0] + y * m[2, 1] + m[2, 2]
    out = np.empty(p.shape, np.float64)
    out[..., 0] = (x * m[0, 0] + y * m[0, 1] + m[0, 2]) / w
    out[..., 1] = (x * m[1, 0] + y * m[1, 1] + m[1, 2]) / w
    return out


def corners(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) x0 y0 x1 y1 -> (N, 4, 2) float64 quads, clockwise from the top-left corner."""
    b = np.asarray(boxes)
    return b[:, [0, 1, 2, 1, 2, 3, 0, 3]].reshape(-1, 4, 2).astype(np.float64)


def encode_boxes(boxes: np.ndarray) -> bytes:
    """The `chars.npy` member: `boxes` (N, 4), values within int16 (the engine's are inside a canvas of
    at most 8192 px), as numpy's .npy format 1.0, little-endian int16: the bytes numpy 2's `numpy.save`
    writes, for a tenth of its cost, and the same whatever numpy a worker has."""
    a = np.ascontiguousarray(boxes, BOX_DTYPE)
    if a.ndim != 2 or a.shape[1] != 4:
        raise ValueError(f"character boxes must be (N, 4), got {a.shape}")
    header = f"{{'descr': '<i2', 'fortran_order': False, 'shape': ({len(a)}, 4), }}"
    header += " " * (_GROWTH - len(str(len(a))))  # numpy's room for the first axis to grow in place
    header += " " * (64 - (len(header) + 11) % 64) + "\n"  # magic, version, length and header: 64-byte aligned
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode("latin1") + a.tobytes()


def decode_boxes(data: bytes | np.ndarray) -> np.ndarray:
    """The (N, 4) integer array of a `chars.npy` member; LabelError when it is not one. The header is
    checked before anything is allocated (a hostile header cannot ask for gigabytes); nothing is
    unpickled."""
    if isinstance(data, np.ndarray):
        a = data
    else:
        fp = io.BytesIO(bytes(data))
        try:
            version = np.lib.format.read_magic(fp)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(fp, max_header_size=MAX_HEADER)
        except (ValueError, TypeError, SyntaxError, EOFError) as e:
            raise LabelError(f"{CHARS_MEMBER} is not a .npy array ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
        if dtype.kind not in "iu" or dtype.hasobject or len(shape) != 2 or shape[1] != 4:
            raise LabelError(f"{CHARS_MEMBER} holds {dtype} {shape}, not integer (N, 4) boxes")
        body = fp.getvalue()[fp.tell():]
        if len(body) != shape[0] * 4 * dtype.itemsize:
            raise LabelError(f"{CHARS_MEMBER} has {len(body)} data bytes, its header says {shape[0]}x4 {dtype}")
        a = np.frombuffer(body, dtype).reshape(shape[::-1]).T if fortran else np.frombuffer(body, dtype).reshape(shape)
    if a.ndim != 2 or a.shape[1] != 4 or a.dtype.kind not in "iu":
        raise LabelError(f"{CHARS_MEMBER} holds {a.dtype} {a.shape}, not integer (N, 4) boxes")
    return a


def line_chars(label: dict[str, Any]) -> list[str]:
    """Per line of a version 2 label, its labelled characters (see the module docstring)."""
    try:
        # a `chars` of None is a missing one (tables that unify the lines' keys, e.g. Arrow, fill in None)
        return [c if (c := ln.get("chars")) is not None else "".join(ln["text"].split()) for ln in label["lines"]]
    except (KeyError, TypeError, AttributeError) as e:
        raise LabelError(f"label lines are malformed ({type(e).__name__}: {e})") from None


@dataclass
class Characters:
    """A sample's labelled characters as columns: the characters, each one's line, its final 4-point box
    (float64; whole pixels unless a geometric effect moved the text) and, for version 2, its integer
    text-plane box (None for version 1)."""

    chars: str
    line: np.ndarray  # (N,) int64 index into label["lines"]
    quads: np.ndarray  # (N, 4, 2) float64, clockwise from the top-left corner
    boxes: np.ndarray | None = None  # (N, 4) x0 y0 x1 y1 before any warp (version 2)

    def __len__(self) -> int:
        return len(self.chars)

    def dicts(self) -> list[dict[str, Any]]:
        """Version 1's view: `{"char", "line", "box"}` per character, the box a list of 4 [x, y] points,
        integers when every corner is a whole pixel (no geometric effect), else floats rounded to 3 decimals."""
        exact = self.quads.astype(np.int64)
        q = exact.tolist() if np.array_equal(exact, self.quads) else np.round(self.quads, 3).tolist()
        return [{"char": c, "line": li, "box": b} for c, li, b in zip(self.chars, self.line.tolist(), q, strict=True)]


def _v1(label: dict[str, Any]) -> Characters:
    try:
        items = label["characters"]
        chars = "".join(c["char"] for c in items)
        line = np.fromiter((c["line"] for c in items), np.int64, len(items))
        quads = np.asarray([c["box"] for c in items], np.float64).reshape(len(items), 4, 2)
    except (KeyError, TypeError, ValueError) as e:
        raise LabelError(f"version 1 characters are malformed ({type(e).__name__}: {e})") from None
    if len(chars) != len(items):
        raise LabelError("version 1 characters: a `char` is not one character")
    return Characters(chars, line, quads)


def _v2(label: dict[str, Any], member: bytes | np.ndarray | None) -> Characters:
    meta = label.get("char_boxes")
    warp = meta.get("warp") if isinstance(meta, dict) else None
    if not isinstance(meta, dict) or not isinstance(warp if warp is not None else [], list | tuple | np.ndarray):
        raise LabelError("label version 2 lacks its char_boxes entry")
    if member is None:
        raise LabelError(f"label version 2 needs the sample's {meta.get('member', CHARS_MEMBER)} member, which is missing")
    boxes = decode_boxes(member)
    per_line = line_chars(label)
    n = sum(map(len, per_line))
    if len(boxes) != n or meta.get("count", n) != n:
        raise LabelError(f"{CHARS_MEMBER} has {len(boxes)} rows, the label's lines have {n} characters"
                         f" (char_boxes.count {meta.get('count')})")
    if n and ((boxes[:, 0] >= boxes[:, 2]).any() or (boxes[:, 1] >= boxes[:, 3]).any()):
        raise LabelError(f"{CHARS_MEMBER}: a box with x1 <= x0 or y1 <= y0")
    size = label.get("size")
    if n and isinstance(size, list | tuple) and len(size) == 2 and (
            boxes[:, :2].min() < 0 or boxes[:, 2].max() > size[0] or boxes[:, 3].max() > size[1]):
        raise LabelError(f"{CHARS_MEMBER}: a box outside the {size[0]}x{size[1]} canvas")
    quads = corners(boxes)
    try:
        for m in warp if warp is not None else []:
            if np.shape(m) != (3, 3):
                raise ValueError(f"warp matrix of shape {np.shape(m)}")
            quads = warp_points(quads, m)
    except (ValueError, TypeError) as e:
        raise LabelError(f"char_boxes.warp is malformed ({e})") from None
    line = np.repeat(np.arange(len(per_line), dtype=np.int64), [len(s) for s in per_line])
    return Characters("".join(per_line), line, quads, boxes)


def columns(label: dict[str, Any], member: bytes | np.ndarray | None = None) -> Characters:
    """A sample's characters as columns, from a label of version 1 or 2 (`member`: its `chars.npy`)."""
    if not isinstance(label, dict):
        raise LabelError("label is not a JSON object")
    version = label.get("version", 1)
    if version == 1:
        return _v1(label)
    if version == 2:
        return _v2(label, member)
    raise LabelError(f"label version {version!r} is unknown (this reader knows 1 and 2)")


def characters(label: dict[str, Any], member: bytes | np.ndarray | None = None) -> list[dict[str, Any]]:
    """Per character, `{"char", "line", "box"}` as version 1 wrote them, from a label of version 1 or 2."""
    if isinstance(label, dict) and label.get("version", 1) == 1:
        columns(label)  # checks it
        return label["characters"]
    return columns(label, member).dicts()


def label_text(label: dict[str, Any]) -> str:
    """The characters a sample shows, line by line (newline-joined): each line's `chars` where the label
    lists them (they differ from its text), else its text. What an OCR of the image is scored against."""
    return "\n".join(ln.get("chars", ln["text"]) for ln in label["lines"])
