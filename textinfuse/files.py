"""Reading files that come from elsewhere (images, tars, fonts): regular files only, bounded in size;
their names in JSON; this user's private cache folder.

A FIFO, a device (`/dev/zero`) or a socket named like an image or a font would block a worker forever
or fill its memory: such files are refused unread, and nothing is opened in a way that blocks.
A base module: it imports nothing of ours, so every layer may use it (the renderer's fonts and
backgrounds, `textinfuse.images`, the evaluation's caches).
"""

from __future__ import annotations

import atexit
import base64
import errno
import io
import logging
import os
import shutil
import stat
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)
MAX_INPUT_BYTES = 1 << 30  # one image file or tar member; larger ones are refused unread
_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


class Refused(OSError):
    """A file refused unread. `str()` is the reason alone (callers name the file; `filename` has it);
    `reason` says it as a code: "not_regular", "not_ours", "too_large" or "truncated"."""

    def __init__(self, code: int, message: str, filename: str, reason: str) -> None:
        super().__init__(code, message, filename)
        self.reason = reason

    def __str__(self) -> str:
        return self.strerror or "refused"

    def __reduce__(self):  # OSError pickles its args only: keep the reason (Ray sends errors between processes)
        return (type(self), (self.errno, self.strerror, self.filename, self.reason))


def open_regular(path: str | os.PathLike, ours: bool = False) -> io.BufferedReader:
    """Open a regular file for reading without ever blocking on it. `ours`: also refuse a symlink at
    `path` and a file owned by another user (for files in our own caches)."""
    fd = os.open(path, _FLAGS | (getattr(os, "O_NOFOLLOW", 0) if ours else 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Refused(errno.EINVAL, "not a regular file", os.fspath(path), "not_regular")
        if ours and st.st_uid != os.getuid():
            raise Refused(errno.EPERM, f"owned by uid {st.st_uid}", os.fspath(path), "not_ours")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_span(f: io.BufferedReader, offset: int, size: int, limit: int = MAX_INPUT_BYTES) -> bytes:
    """`size` bytes at `offset`, checked against the limit and the file's size before anything is read
    (a tar header may claim any size)."""
    if size > limit:
        raise Refused(errno.EFBIG, f"larger than {_mib(limit)}", f.name, "too_large")
    have = os.fstat(f.fileno()).st_size - offset
    if have < size:
        raise Refused(errno.EIO, f"truncated: {max(have, 0)} of {size} bytes", f.name, "truncated")
    f.seek(offset)
    data = f.read(size)
    if len(data) != size:  # shrank while we read
        raise Refused(errno.EIO, f"truncated: {len(data)} of {size} bytes", f.name, "truncated")
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


def name_fields(key: str, name: str) -> dict[str, str]:
    """`{key: name}` for JSON, losslessly. File and tar member names can be any bytes; Python holds the
    undecodable ones as lone surrogates, which JSON (and UTF-8) cannot carry. Such a name is written as a
    readable form (bad bytes as `\\xNN`) under `key` and its exact bytes, base64, under `key + "_b64"`."""
    try:
        name.encode("utf-8")
        return {key: name}
    except UnicodeEncodeError:
        raw = os.fsencode(name)
        return {key: raw.decode("utf-8", "backslashreplace"), f"{key}_b64": base64.b64encode(raw).decode("ascii")}


def name_from(record: dict, key: str) -> str:
    """The exact name `name_fields` wrote (as Python holds file names: undecodable bytes as surrogates)."""
    raw = record.get(f"{key}_b64")
    return os.fsdecode(base64.b64decode(raw)) if raw else record[key]


def _mib(n: int) -> str:
    return f"{n / 2**20:g} MiB" if n < 2**30 else f"{n / 2**30:g} GiB"


def private_dir(name: str, what: str) -> Path:
    """This user's cache folder `$XDG_CACHE_HOME/textinfuse/NAME` (default ~/.cache/...), if only this user
    can change it; otherwise (another owner, writable by others) a fresh private temp folder for this
    process, with a warning naming `what` is cached. A shared fixed path would let another local user
    plant a symlink there (and have a job overwrite its target) or a file of their own (a font that does
    not match its labels, OCR texts that give a wrong score)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    d = Path(xdg or "~/.cache") / "textinfuse" / name
    try:
        if not d.is_absolute():  # a relative XDG_CACHE_HOME is invalid by the XDG spec: use the default
            d = Path.home() / ".cache" / "textinfuse" / name  # RuntimeError if there is no home
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        d = d.parent.resolve() / d.name  # resolve the parents, never `d` itself (it must not be a symlink)
        why = _not_private(d)
    except (OSError, RuntimeError) as e:  # RuntimeError: a symlink loop in the parents
        why = getattr(e, "strerror", None) or str(e)
    if why is None:
        return d
    if d not in _FALLBACK:
        if not _FALLBACK.get(None):
            tmp = _FALLBACK[None] = Path(tempfile.mkdtemp(prefix="textinfuse-cache-"))  # new, mode 0700
            atexit.register(shutil.rmtree, tmp, True)
        _FALLBACK[d] = _FALLBACK[None] / name
        _FALLBACK[d].mkdir(mode=0o700, exist_ok=True)
        log.warning("%s: %s cache not used (%s); using %s for this run", d, what, why, _FALLBACK[d])
    return _FALLBACK[d]


_FALLBACK: dict[Path | None, Path] = {}  # None: this process's private folder; a path: refused, warned once


def _not_private(d: Path) -> str | None:
    """Why another user could change what is in folder `d` (None if no one but us, or root, can)."""
    uid = os.getuid()
    st = os.lstat(d)
    if not stat.S_ISDIR(st.st_mode):
        return "not a folder"
    if st.st_uid != uid:
        return f"owned by uid {st.st_uid}"
    if st.st_mode & 0o022:
        return f"writable by others (mode {stat.S_IMODE(st.st_mode):o})"
    for parent in d.parents:  # any of them could have `d` renamed away and replaced
        st = os.stat(parent)
        if st.st_uid not in (uid, 0):
            return f"{parent} is owned by uid {st.st_uid}"
        if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
            return f"{parent} is writable by others"
    return None
