"""A fast path for decoding simple PNGs such as `render` writes: 8-bit grey, RGB or RGBA, not interlaced,
rows filtered with None, Sub or Up. It inflates with ISA-L (`isal`, 2.5x faster than zlib here) and undoes the
row filters with numpy: a 256x256 render sample decodes in about 1.2 ms instead of PIL's 3.2 ms, which is
what lets one loader core keep up with a GPU. The result is what PIL's `convert("RGB")` gives (grey
repeated, alpha dropped). Anything else (palette, 16-bit, interlaced, Average/Paeth rows, a deflate
stream that is cut short or fails zlib's Adler-32 check) returns None and the caller decodes it the
ordinary way (`textinfuse.images.decode_image` does, in its `plain` mode); nothing here guesses. Chunk
CRCs are not checked: a file whose only damage is a CRC decodes here (PIL accepts a bad IDAT CRC too).
Shards come from anyone: `size` reads the header so callers can refuse a decompression bomb before
anything is inflated, and inflating stops at the size the header declares.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
from isal import isal_zlib as _inflate_lib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 6: 4}  # grey, RGB, RGBA (8-bit only)


def size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR, or None when data does not start like a PNG."""
    if not data.startswith(SIGNATURE) or len(data) < 24 or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


def decode(data: bytes) -> np.ndarray | None:
    """RGB uint8 (H, W, 3) of a simple PNG (see above), or None when this fast path does not apply."""
    if not data.startswith(SIGNATURE):
        return None
    pos, ihdr, idat = 8, None, []
    try:
        while pos + 8 <= len(data):
            n, kind = struct.unpack(">I4s", data[pos : pos + 8])
            body = data[pos + 8 : pos + 8 + n]
            if len(body) != n:
                return None
            if kind == b"IHDR":
                ihdr = struct.unpack(">IIBBBBB", body)
            elif kind == b"IDAT":
                idat.append(body)
            elif kind == b"IEND":
                break
            pos += 12 + n
        if ihdr is None or not idat:
            return None
        w, h, depth, color, _, _, interlace = ihdr
        if depth != 8 or color not in CHANNELS or interlace or w == 0 or h == 0:
            return None
        c = CHANNELS[color]
        # max_length: an IDAT that inflates past the declared size (a zip bomb) stops there; eof: the stream
        # ended with its checksum (a one-shot decompress checks that itself)
        inflater = _inflate_lib.decompressobj()
        raw = inflater.decompress(b"".join(idat), h * (w * c + 1) + 1)
        if not inflater.eof:
            return None
    except (struct.error, zlib.error, _inflate_lib.error, ValueError, OSError):
        return None
    stride = w * c + 1
    if len(raw) != h * stride:
        return None
    rows = np.frombuffer(raw, np.uint8).reshape(h, stride)
    filters = rows[:, 0]
    if filters.max() > 2:  # Average or Paeth rows: leave them to libpng
        return None
    px = rows[:, 1:].copy()
    for i in np.flatnonzero(filters == 1):  # Sub: add the pixel c bytes to the left, cumulatively
        r = px[i].reshape(w, c)
        np.cumsum(r, axis=0, dtype=np.uint8, out=r)
    for i in np.flatnonzero(filters[1:] == 2) + 1:  # Up: add the row above, in order (row -1 is zeros)
        np.add(px[i], px[i - 1], out=px[i])
    img = px.reshape(h, w, c)
    if c == 3:
        return img
    if c == 1:
        return np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(img[..., :3])  # RGBA: alpha dropped, as PIL's convert("RGB") does
