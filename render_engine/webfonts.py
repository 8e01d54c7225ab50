"""WOFF/WOFF2 fonts from elsewhere, made into plain sfnt files FreeType can open (its builds may lack
brotli), safely: decompression is bounded before fontTools runs (it checks sizes only after
decompressing everything), and the files live in a private per-user cache, never in the shared temp
folder, where another local user could plant a symlink (a render would overwrite its target) or a
different font (images and labels would disagree).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import secrets
import types
from pathlib import Path

from textinfuse.files import private_dir, read_regular

log = logging.getLogger(__name__)
MAX_SFNT_BYTES = 256 * 2**20  # what one web font may decompress to


class WebFontError(ValueError):
    """A web font refused before decompression (the message is the reason)."""


def _check_web_font(data: bytes) -> None:
    """Refuse WOFF/WOFF2 data whose tables (or metadata) would decompress past their declared sizes or
    past MAX_SFNT_BYTES. fontTools decompresses whole streams and compares sizes after: a bomb of a few
    MB would take GBs first. Here every stream is inflated with a cap and thrown away."""
    import zlib

    from fontTools.misc import sstruct
    from fontTools.ttLib import sfnt, woff2

    if data[:4] not in (b"wOFF", b"wOF2"):
        return  # a plain sfnt under a web-font name: nothing compressed, fontTools reads it as what it is
    f, hdr = io.BytesIO(data), types.SimpleNamespace()
    web2 = data[:4] == b"wOF2"
    fmt, size = (woff2.woff2DirectoryFormat, woff2.woff2DirectorySize) if web2 else \
        (sfnt.woffDirectoryFormat, sfnt.woffDirectorySize)
    if len(data) < size:
        raise WebFontError("truncated web font header")
    sstruct.unpack(fmt, f.read(size), hdr)
    entries = [(woff2.WOFF2DirectoryEntry if web2 else sfnt.WOFFDirectoryEntry)() for _ in range(hdr.numTables)]
    for e in entries:
        e.fromFile(f)

    def inflate(raw: bytes, cap: int) -> None:
        if web2:
            import brotli

            d = brotli.Decompressor()
            n, done = len(d.process(raw, output_buffer_limit=cap + 1)), d.is_finished()
        else:
            z = zlib.decompressobj()
            n, done = len(z.decompress(raw, cap + 1)), z.eof
        if n > cap:
            raise WebFontError("compressed data larger than its declared size (a decompression bomb?)")
        if not done:
            raise WebFontError("compressed data truncated")

    total = sum(e.length if web2 else e.origLength for e in entries)
    if total + hdr.metaOrigLength > MAX_SFNT_BYTES:
        raise WebFontError(f"declares {total + hdr.metaOrigLength} bytes decompressed (limit {MAX_SFNT_BYTES})")
    if web2:  # one brotli stream for all tables, right after the directory
        inflate(f.read(hdr.totalCompressedSize), total)
    else:
        for e in entries:
            if e.length < e.origLength:
                inflate(data[e.offset : e.offset + e.length], e.origLength)
    if hdr.metaLength:
        inflate(data[hdr.metaOffset : hdr.metaOffset + hdr.metaLength], hdr.metaOrigLength)


def _verified(p: Path, sha: str) -> bool:
    """Whether `p` is a regular file of ours (not a symlink) whose sha256 is `sha`."""
    try:
        return hashlib.sha256(read_regular(p, MAX_SFNT_BYTES, ours=True)).hexdigest() == sha
    except OSError:
        return False


def cached_sfnt(data: bytes) -> Path:
    """WOFF/WOFF2 `data` as a plain sfnt file FreeType can open (its builds may lack brotli).

    Cached as `{sha256 of data}-{sha256 of the sfnt}.otf`: a file is used only if its bytes hash to its
    name; anything else there (truncated, planted, a symlink) is removed and rebuilt. New files are
    written under a random name with O_EXCL|O_NOFOLLOW, then renamed into place atomically.
    """
    from fontTools.ttLib import TTFont

    _check_web_font(data)
    d = private_dir("fonts", "font")
    src = hashlib.sha256(data).hexdigest()
    for name in sorted(os.listdir(d)):
        if name.startswith(src + "-") and name.endswith(".otf"):
            if _verified(d / name, name[len(src) + 1 : -4]):
                return d / name
            (d / name).unlink(missing_ok=True)  # unlinks a symlink itself, never its target
    tt = TTFont(io.BytesIO(data), recalcTimestamp=False)  # no timestamp: the same font, the same bytes
    tt.flavor = None
    buf = io.BytesIO()
    tt.save(buf)
    out = buf.getvalue()
    final = d / f"{src}-{hashlib.sha256(out).hexdigest()}.otf"
    tmp = d / f".{secrets.token_hex(8)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        with os.fdopen(os.open(tmp, flags, 0o600), "wb") as f:
            f.write(out)
        os.replace(tmp, final)  # replaces a symlink at `final` itself, never writes through it
    finally:
        tmp.unlink(missing_ok=True)
    return final
