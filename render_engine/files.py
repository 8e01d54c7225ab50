"""Reading files that come from elsewhere (images, tars, fonts): regular files only, bounded in size.

A FIFO, a device (`/dev/zero`) or a socket named like an image or a font would block a worker forever
or fill its memory: such files are refused unread, and nothing is opened in a way that blocks.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from pathlib import Path

MAX_INPUT_BYTES = 1 << 30  # one image file or tar member; larger ones are refused unread
_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


class Refused(OSError):
    """A file refused unread. `str()` is the reason alone (callers name the file; `filename` has it)."""

    def __str__(self) -> str:
        return self.strerror or "refused"


def open_regular(path: str | os.PathLike, ours: bool = False) -> io.BufferedReader:
    """Open a regular file for reading without ever blocking on it. `ours`: also refuse a symlink at
    `path` and a file owned by another user (for files in our own caches)."""
    fd = os.open(path, _FLAGS | (getattr(os, "O_NOFOLLOW", 0) if ours else 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Refused(errno.EINVAL, "not a regular file", os.fspath(path))
        if ours and st.st_uid != os.getuid():
            raise Refused(errno.EPERM, f"owned by uid {st.st_uid}", os.fspath(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_span(f: io.BufferedReader, offset: int, size: int, limit: int = MAX_INPUT_BYTES) -> bytes:
    """`size` bytes at `offset`, checked against the limit and the file's size before anything is read
    (a tar header may claim any size)."""
    if size > limit:
        raise Refused(errno.EFBIG, f"larger than {_mib(limit)}", f.name)
    have = os.fstat(f.fileno()).st_size - offset
    if have < size:
        raise Refused(errno.EIO, f"truncated: {max(have, 0)} of {size} bytes", f.name)
    f.seek(offset)
    data = f.read(size)
    if len(data) != size:  # shrank while we read
        raise Refused(errno.EIO, f"truncated: {len(data)} of {size} bytes", f.name)
    return data


def read_regular(path: str | os.PathLike, limit: int = MAX_INPUT_BYTES, ours: bool = False) -> bytes:
    """The whole of a regular file of at most `limit` bytes (see `open_regular`)."""
    with open_regular(path, ours) as f:
        return read_span(f, 0, os.fstat(f.fileno()).st_size, limit)


def is_regular(p: Path) -> bool:
    """A regular file (following a symlink), without opening it: never a FIFO or a device."""
    try:
        return stat.S_ISREG(p.stat().st_mode)
    except OSError:
        return False


def _mib(n: int) -> str:
    return f"{n / 2**20:g} MiB" if n < 2**30 else f"{n / 2**30:g} GiB"
