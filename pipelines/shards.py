"""WebDataset shard files: names, atomic publishing, per-shard stats (the "done" marker).

A shard is written to `OUT/_tmp/`, fsynced and re-read to check its member count; its stats file (and
any other file that goes with it) is written and fsynced in `OUT/_tmp/` too; only then do they move into
place with `os.replace`, the tar first and the stats file last. A crash can leave a stale temp file, never
a partial `.tar` under a final name; a shard without its stats file is not done; a full disk fails a
shard before anything of it is published.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TMP = "_tmp"


def shard_name(name: str, shard: int) -> str:
    return f"{name}-{shard:06d}.tar"


def stats_name(name: str, shard: int) -> str:
    return f"{name}-{shard:06d}.stats.json"


def sample_key(shard: int, index: int) -> str:
    return f"{shard:06d}_{index:06d}"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def json_bytes(obj: Any) -> bytes:
    """How stats and manifests are written: sorted keys, one space indent, UTF-8. A file name that is not
    UTF-8 (Python holds its bad bytes as lone surrogates) is escaped as `\\udcNN`, which Python's json reads
    back exactly; labels and scores carry such names portably (`render_engine.backgrounds.name_fields`)."""
    try:
        return json.dumps(obj, indent=1, ensure_ascii=False, sort_keys=True).encode()
    except UnicodeEncodeError:
        return json.dumps(obj, indent=1, ensure_ascii=True, sort_keys=True).encode()


def _staged(tmp_dir: Path, path: Path, data: bytes) -> Path:
    """`data` written and fsynced in `tmp_dir`, under a name for `path`; nothing left behind on failure."""
    tmp = tmp_dir / (path.name + f".{os.getpid()}.part")
    tmp_dir.mkdir(parents=True, exist_ok=True)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write `obj` as JSON to `path` atomically; an OSError (a full disk) names `path`."""
    try:
        os.replace(_staged(path.parent / TMP, path, json_bytes(obj)), path)
    except OSError as e:
        if e.filename:
            raise
        raise OSError(e.errno, e.strerror or str(e), str(path)) from None
    _fsync_dir(path.parent)


class ShardWriter:
    """Writes one shard's samples (dicts of `__key__` and extension -> bytes) with fixed tar metadata,
    so the same samples always give the same bytes. Use as a context manager; at the end, `finish()`, then
    `publish(stats)`."""

    def __init__(self, out_dir: Path, name: str, shard: int):
        self.final = out_dir / shard_name(name, shard)
        self.stats_path = out_dir / stats_name(name, shard)
        self.tmp = out_dir / TMP / (self.final.name + f".{os.getpid()}.part")
        self.tmp.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.tmp, "wb")
        self._sha = hashlib.sha256()
        self._hf = _HashingFile(self._f, self._sha)
        self._tw = _TarStream(self._hf)
        self.count = 0
        self.members = 0

    def write(self, sample: dict[str, Any]) -> None:
        self._tw.write(sample)
        self.count += 1
        self.members += sum(1 for k in sample if not k.startswith("_"))

    def finish(self) -> tuple[int, str]:
        """End the tar, fsync it and check its member count; return (bytes, sha256)."""
        self._tw.close()
        self._hf.close()  # flush + fsync
        n = count_members(self.tmp)
        if n != self.members:
            raise OSError(f"{self.tmp}: {n} members written, expected {self.members}")
        return self.tmp.stat().st_size, self._sha.hexdigest()

    def publish(self, stats: dict[str, Any] | None, also: Sequence[tuple[Path, bytes]] = ()) -> None:
        """Move the finished tar into place, then the files in `also`, then the stats file (the done marker).
        All of them are written and fsynced first, so running out of disk publishes nothing."""
        then = [*also, *([(self.stats_path, json_bytes(stats))] if stats is not None else [])]
        staged: list[tuple[Path, Path]] = []
        try:
            for path, data in then:
                staged.append((_staged(self.tmp.parent, path, data), path))
        except BaseException:
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
            raise
        os.replace(self.tmp, self.final)
        for tmp, path in staged:
            os.replace(tmp, path)
        for d in {self.final.parent, *(path.parent for _, path in staged)}:
            _fsync_dir(d)

    def abort(self) -> None:
        """Drop the temp file (on any error while writing)."""
        try:
            self._tw.close()  # let tarfile finish its stream now, not later from a finaliser
        except (OSError, ValueError):
            pass
        try:
            self._f.close()
        except OSError:
            pass
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, *_: Any) -> None:
        if exc_type is not None:
            self.abort()


class _TarStream:
    """The tar layout `webdataset.TarWriter(mtime=0)` writes (USTAR, members `KEY.EXT` in sorted order,
    fixed owner, mode 0444, mtime 0), with the standard library only: importing webdataset here would
    import torch wherever the training extra is installed, adding ~250 MB to every render worker."""

    def __init__(self, fileobj):
        self._f = fileobj
        self._offset = 0
        self._closed = False

    def write(self, sample: dict[str, Any]) -> None:
        key = sample["__key__"]
        parts = []
        for ext in sorted(k for k in sample if not k.startswith("_")):
            data = sample[ext]
            data = data.encode() if isinstance(data, str) else bytes(data)
            ti = tarfile.TarInfo(f"{key}.{ext}")
            ti.size, ti.mtime, ti.mode = len(data), 0, 0o444
            ti.uname = ti.gname = "textinfuse"
            try:
                header = ti.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")
            except ValueError:  # a name over USTAR's 100+155 bytes (kept keys from elsewhere): a PAX header
                header = ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
            parts += [header, data,
                      bytes(-len(data) % tarfile.BLOCKSIZE)]
        buf = b"".join(parts)  # one write per sample
        self._f.write(buf)
        self._offset += len(buf)

    def close(self) -> None:
        """End of archive: two zero blocks, then zeros up to a whole record (as tarfile writes it)."""
        if self._closed:
            return
        self._closed = True
        end = 2 * tarfile.BLOCKSIZE
        end += -(self._offset + end) % tarfile.RECORDSIZE
        self._f.write(bytes(end))


class _HashingFile(io.RawIOBase):
    """File wrapper that hashes what is written and fsyncs on close."""

    def __init__(self, f, sha):
        self._f, self._sha = f, sha

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self._sha.update(b)
        return self._f.write(b)

    def close(self) -> None:
        if not self._f.closed:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
        super().close()


def count_members(path: Path) -> int:
    """Members of a tar written by `_TarStream`, by walking its headers up to the first zero block (each
    header's checksum and size are checked; no member is read; PAX headers are not members). OSError if
    the framing is wrong."""
    n, pos = 0, 0
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        while True:
            f.seek(pos)
            hdr = f.read(tarfile.BLOCKSIZE)
            if len(hdr) < tarfile.BLOCKSIZE:
                raise OSError(f"{path}: truncated at byte {pos}")
            if hdr == bytes(tarfile.BLOCKSIZE):  # end of archive
                return n
            try:
                stored = int(hdr[148:156].rstrip(b"\0 ").decode() or "-1", 8)
                length = int(hdr[124:136].rstrip(b"\0 ").decode(), 8)
            except ValueError:
                stored, length = -1, 0
            if stored != sum(hdr[:148]) + 8 * 32 + sum(hdr[156:]):
                raise OSError(f"{path}: bad tar header at byte {pos}")
            n += hdr[156:157] not in (b"x", b"g")  # a PAX extended header describes the next member
            pos += tarfile.BLOCKSIZE * (1 + -(-length // tarfile.BLOCKSIZE))
            if pos > size:
                raise OSError(f"{path}: member at byte {pos} runs past the end")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_stats(out_dir: Path, name: str, shard: int) -> dict[str, Any] | None:
    p = out_dir / stats_name(name, shard)
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def sweep_tmp(out_dir: Path) -> int:
    """Remove stale temp files left by a crash; return how many."""
    d = out_dir / TMP
    if not d.is_dir():
        return 0
    n = 0
    for p in d.iterdir():
        if p.is_file():
            p.unlink(missing_ok=True)
            n += 1
    return n
