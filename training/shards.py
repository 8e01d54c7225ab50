"""Reading a source's shards when they may be broken: list them (regular files only), read each one on its
own so a torn or foreign tar is warned about once and counted while the source goes on, and give the source
up (`NoSamples`, one line naming it and each shard's reason) once every shard was tried and none gave a
sample: webdataset's `warn_and_continue` inside an infinite resampled stream would retry for ever.
"""

from __future__ import annotations

import errno
import glob
import logging
import os
import tarfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import webdataset as wds

log = logging.getLogger(__name__)
_warned: set[str] = set()  # bad shards already warned about in this process (DataLoader workers inherit it)
# What reading a torn or foreign tar raises (from tarfile, the file system, or webdataset's grouping)
SHARD_ERRORS = (tarfile.TarError, OSError, EOFError, ValueError, KeyError, zlib.error)


class NoSamples(ValueError):
    """A source that cannot give a sample. The DataLoader re-raises a worker's exception as its type built
    from a text holding the worker's traceback; only our own last line of that text is kept."""

    def __init__(self, msg: str) -> None:
        lines = str(msg).strip().splitlines()
        prefix = f"{__name__}.NoSamples: "
        super().__init__(lines[-1][len(prefix):] if len(lines) > 1 and lines[-1].startswith(prefix) else msg)


def shard_urls(path: str, source: str | None = None) -> list[str]:
    """Sorted .tar shards (regular files) of a folder, or of a glob pattern; FileNotFoundError naming the
    path (and source) when there are none."""
    p, what = Path(path), f" (source {source})" if source else ""
    if p.is_dir():
        urls, why = sorted(str(f) for f in p.glob("*.tar")), f"no .tar shards in this folder{what}"
    else:
        urls = sorted(glob.glob(path))
        why = f"no .tar shards match this pattern{what}" if glob.has_magic(path) else f"no such folder{what}"
    for u in [u for u in urls if not Path(u).is_file()]:  # a FIFO or device would block or never end
        log.warning("%s: not a regular file, skipped%s", u, what)
        urls.remove(u)
    if not urls:
        raise FileNotFoundError(errno.ENOENT, why, path)
    return urls


def _reason(e: BaseException) -> str:
    """`ReadError empty file`: the first argument only (tarfile adds the file object; webdataset the url)."""
    arg = e.args[0] if e.args and isinstance(e.args[0], str) else str(e)
    return f"{type(e).__name__} {arg.split(' @ ')[0].splitlines()[0] if arg else ''}".strip()


class ShardReader:
    """Samples of one source's shards, one shard at a time: a shard that fails is counted and warned about
    once per process; once every shard was tried and none gave a sample, `NoSamples` (raise_when_dry)."""

    def __init__(self, name: str, urls: Sequence[str], raise_when_dry: bool = True) -> None:
        self.name, self.urls, self.raise_when_dry = name, set(urls), raise_when_dry
        self.bad: dict[str, str] = {}
        self.tried: set[str] = set()
        self.samples = 0

    def read(self, url: str) -> Iterator[dict]:
        n, why = 0, None
        try:
            for s in wds.tarfile_to_samples(handler=wds.reraise_exception)(iter([{"url": url}])):
                n += 1
                yield s
        except SHARD_ERRORS as e:
            why = _reason(e)
        self.tried.add(url)
        self.samples += n
        why = why or (None if n else "no samples")
        if why and url not in self.bad:
            self.bad[url] = why
        if why and url not in _warned:
            _warned.add(url)
            log.warning("source %s: skipping shard %s after %d sample(s): %s (%d of %d shards bad so far)",
                        self.name, url, n, why, len(self.bad), len(self.urls))
        if self.raise_when_dry and not self.samples and self.tried >= self.urls:
            raise NoSamples(self.dry())

    def dry(self) -> str:
        """Why this source gave nothing: one line."""
        why = "; ".join(f"{os.path.basename(u)}: {w}" for u, w in sorted(self.bad.items()))
        return f"source {self.name}: no samples in any of its {len(self.urls)} shards: {why}"


