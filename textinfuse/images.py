"""Image inputs for every layer: where the images are, the one list of image extensions, and decoding.

- Where: `find_images(specs)` expands folders (recursive), globs, brace patterns, list files (`.txt`/`.lst`:
  one path or pattern a line), image files and WebDataset `.tar` shards (image members are read in place)
  into `ImageRef`s, plus the problems met on the way (source, why); `list_images(folder)` gives a folder's
  own image files (not recursive, hidden files left out), sorted by name.
- Decoding: `decode_image(data)` gives uint8 RGB (H, W, 3); `decode_image_info` also says what the file
  was (format, mode, size, frames, bits per channel); `load_rgb(path)` reads a file (regular files only,
  bounded in size) and decodes it. Every failure is an `ImageError` whose `reason` is one of `Reason`'s
  codes, which callers count and report by, and whose text is one line for people (callers add the name).
- Two conversions. As a photo (the default: backgrounds, the filter, previews): EXIF orientation applied,
  alpha composited over mid grey, 16-bit and float images scaled to 8 bits, an animation's first frame.
  `plain=True`: PIL's own `convert("RGB")`, no EXIF rotation, alpha dropped: what OmniDoc-TokenBench's
  evaluation and our trainer read; render's own PNGs take a fast path there (`textinfuse.png_reader`).

The pixel limit is checked per call from the header, before anything is decoded; PIL's global
`Image.MAX_IMAGE_PIXELS` is never changed: its warning is silenced inside the call, and PIL itself still
refuses an image past twice that (178,956,970 px), as `too_many_pixels` too, so a larger limit is capped there. A base module: it imports only
`textinfuse.files` and `textinfuse.png_reader`, so the renderer and the trainer may both use it.
"""

from __future__ import annotations

import glob
import io
import logging
import os
import re
import tarfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .files import Refused, is_regular, open_regular, read_regular, read_span

log = logging.getLogger(__name__)

IMAGE_EXTS = ("png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff", "gif")  # lower case, no dot; most wanted first
MAX_PIXELS = 64_000_000  # default pixel limit (a 300 KB PNG can decode to gigabytes)
LIST_EXTS = (".txt", ".lst")  # list files among the inputs: one path or pattern a line


class Reason:
    """Why an image could not be used: `ImageError.reason` is one of these stable strings (counted in
    stats, written in the filter's scores)."""

    NOT_REGULAR = "not_regular"  # a FIFO, device or socket named like an image: refused unread
    UNREADABLE = "unreadable"  # the file system said no (missing, permission, I/O error)
    TOO_LARGE = "too_large"  # more bytes than the read limit (textinfuse.files.MAX_INPUT_BYTES)
    TRUNCATED = "truncated"  # ends before its declared size or its format's end marker
    EMPTY = "empty"
    UNRECOGNISED = "unrecognised"  # not an image format PIL knows
    UNDECODABLE = "undecodable"  # a known format that fails to decode
    TOO_MANY_PIXELS = "too_many_pixels"  # over the pixel limit (a decompression bomb?)
    TOO_SMALL = "too_small"  # shorter side under the minimum asked for
    ODD_MODE = "odd_mode"  # a pixel mode with no conversion to RGB
    ALL = (NOT_REGULAR, UNREADABLE, TOO_LARGE, TRUNCATED, EMPTY, UNRECOGNISED, UNDECODABLE, TOO_MANY_PIXELS,
           TOO_SMALL, ODD_MODE)


class ImageError(ValueError):
    """An image that cannot be used: `reason` (a `Reason` code) and a one-line text (without the name)."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(text)
        self.reason = reason

    def __reduce__(self):  # keep the reason across processes (Ray, DataLoader workers)
        return (type(self), (self.reason, str(self)))


def is_image_name(name: str | os.PathLike) -> bool:
    """Whether a file or member name ends in one of IMAGE_EXTS (any case)."""
    return Path(name).suffix.lower()[1:] in IMAGE_EXTS


def _read_error(e: OSError) -> ImageError:
    if isinstance(e, Refused) and e.reason in Reason.ALL:
        return ImageError(e.reason, str(e))
    return ImageError(Reason.UNREADABLE, f"unreadable ({e.strerror or e})")


# webdataset's rule: a member's key is its path up to the first dot of its file name, the rest its extension
_KEY_EXT = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")


@dataclass(frozen=True)
class ImageRef:
    """Where one image lives: a file, or a member of a tar (data offset and size). For a tar member,
    `extras` holds the sample's other members (extension, data offset, size): its caption, its metadata."""

    name: str  # stable id written into labels and scores: "folder/a/b.jpg", "b.jpg" or "shard.tar:member"
    path: str
    offset: int = -1
    size: int = -1
    extras: tuple[tuple[str, int, int], ...] = ()

    @property
    def key(self) -> str:
        """The webdataset sample key of a tar member ("" for a loose file)."""
        if self.offset < 0:
            return ""
        m = _KEY_EXT.match(self.name.split(":", 1)[1])
        return m.group(1) if m else self.name.split(":", 1)[1]

    @property
    def member_ext(self) -> str:
        """A tar member's extension as webdataset sees it (`0.jpg` in `k.0.jpg`); "" for a loose file."""
        m = _KEY_EXT.match(self.name.split(":", 1)[1]) if self.offset >= 0 else None
        return m.group(2) if m else ""

    @property
    def where(self) -> str:
        """How messages name it: a loose file's path, a tar member's `shard.tar:member`."""
        return self.path if self.offset < 0 else self.name

    def read_extras(self) -> dict[str, bytes]:
        """The sample's other members, byte for byte, by extension."""
        with open_regular(self.path) as f:
            return {ext: read_span(f, offset, size) for ext, offset, size in self.extras}

    def read(self) -> bytes:
        """The image's bytes; ImageError (`not_regular`, `too_large`, `truncated`, `unreadable`) if they
        cannot be read."""
        try:
            with open_regular(self.path) as f:
                if self.offset < 0:
                    return read_span(f, 0, os.fstat(f.fileno()).st_size)
                return read_span(f, self.offset, self.size)
        except OSError as e:
            raise _read_error(e) from None


# --- where the images are ------------------------------------------------------------------------------

def _index_tar(path: Path, problems: list[tuple[str, str]]) -> list[ImageRef]:
    """One ref per image member, carrying its sample's other members (same key, adjacent, as webdataset
    groups them); a sample with two images gives two refs. A damaged tar gives the images before the
    damage, and a line in `problems`."""
    refs: list[ImageRef] = []
    group: list[tuple[str, str | None, int, int]] = []  # the current sample: (member name, ext, offset, size)
    key, error = None, None

    def flush() -> None:
        images = [(n, o, z) for n, _, o, z in group if is_image_name(n)]
        extras = tuple((e, o, z) for n, e, o, z in group if e is not None and (n, o, z) not in images)
        refs.extend(ImageRef(f"{path.name}:{n}", str(path), o, z, extras) for n, o, z in images)
        group.clear()

    try:
        with open_regular(path) as f, tarfile.open(fileobj=f, mode="r:") as tf:
            for m in tf:
                if not m.isfile():
                    continue
                km = _KEY_EXT.match(m.name)
                if (km.group(1) if km else m.name) != key:
                    flush()
                    key = km.group(1) if km else m.name
                group.append((m.name, km.group(2) if km else None, m.offset_data, m.size))
    except (tarfile.TarError, OSError, EOFError) as e:
        error = e
    flush()
    if error is not None:
        why = error.strerror if isinstance(error, OSError) and error.strerror else error
        problems.append((str(path), f"malformed tar, {len(refs)} images indexed before the error ({why})"))
    return refs


def _expand_lists(specs: list[str]) -> list[str]:
    """List files (.txt/.lst: one path or pattern a line, `#` comments) replaced by their lines."""
    out = []
    for s in specs:
        p = Path(s)
        if p.suffix in LIST_EXTS and p.is_file():  # paths are bytes on disk: any name round-trips
            lines = (os.fsdecode(ln.strip()) for ln in p.read_bytes().splitlines())
            out += [ln for ln in lines if ln and not ln.startswith("#")]
        else:
            out.append(s)
    return out


def _folder(p: Path, refs: list[ImageRef], problems: list[tuple[str, str]]) -> None:
    try:
        files = sorted(f for f in p.rglob("*") if is_image_name(f) or f.suffix.lower() == ".tar")
    except OSError as e:
        problems.append((str(p), f"unreadable folder ({e.strerror})"))
        return
    if not files:
        problems.append((str(p), "no images in folder"))
    for f in files:
        if not is_regular(f):
            problems.append((str(f), "not a regular file"))
        elif f.suffix == ".tar":
            refs.extend(_index_tar(f, problems))
        else:
            refs.append(ImageRef(f"{p.name}/{f.relative_to(p).as_posix()}", str(f)))


def find_images(specs: list[str]) -> tuple[list[ImageRef], list[tuple[str, str]]]:
    """Folders (recursive), globs, brace patterns, list files, image files and .tar shards -> image refs
    (in the order given; each folder and glob sorted) + problems (source, why), each also logged."""
    from braceexpand import braceexpand

    refs: list[ImageRef] = []
    problems: list[tuple[str, str]] = []
    for spec in _expand_lists(specs):
        for pat in braceexpand(spec):
            paths = [Path(p) for p in sorted(glob.glob(pat, recursive=True))] if glob.has_magic(pat) else [Path(pat)]
            if not paths:
                problems.append((pat, "no match"))
            for p in paths:
                if p.is_dir():
                    _folder(p, refs, problems)
                elif p.exists() and not is_regular(p):
                    problems.append((str(p), "not a regular file"))
                elif p.suffix.lower() == ".tar" and p.is_file():
                    refs.extend(_index_tar(p, problems))
                elif p.is_file():
                    refs.append(ImageRef(p.name, str(p)))
                else:
                    problems.append((str(p), "not found"))
    for src, why in problems:
        log.warning("%s: image source skipped (%s)", src, why)
    return refs, problems


def list_images(folder: Path) -> list[Path]:
    """The image files of `folder` itself (by extension, hidden files left out), sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if is_image_name(p) and not p.name.startswith("."))


# --- decoding ------------------------------------------------------------------------------------------

def _bits(im, data: bytes) -> int:
    """Bits per channel as stored in the file. PIL opens 16-bit RGB(A) PNGs and TIFFs as 8-bit modes, so
    the mode alone would say 8: read the PNG header's bit depth and the TIFF BitsPerSample tag."""
    if im.format == "PNG" and len(data) >= 25 and data[12:16] == b"IHDR":
        return int(data[24])
    if im.format == "TIFF":
        tag = getattr(im, "tag_v2", {}).get(258)
        if tag:
            return int(max(tag) if isinstance(tag, tuple) else tag)
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return 32 if im.mode in ("I", "F") and im.format != "PNG" else 16
    return 1 if im.mode == "1" else 8


def _check_size(w: int, h: int, max_pixels: int, min_side: int) -> None:
    if w * h > max_pixels:
        raise ImageError(Reason.TOO_MANY_PIXELS,
                         f"too many pixels ({w}x{h}, over the {max_pixels}-pixel limit: a decompression bomb?)")
    if min(w, h) < min_side:
        raise ImageError(Reason.TOO_SMALL, f"too small ({w}x{h}, need {min_side} px on the short side)")


def _ends_early(data: bytes) -> bool:
    """Whether the data stops before its format's end (asked only of a file that failed to decode): a PNG
    without IEND, a JPEG without EOI near its end, a GIF without its trailer, a RIFF (WebP) or BMP shorter
    than its header declares."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return b"IEND" not in data
    if data.startswith(b"\xff\xd8"):
        return b"\xff\xd9" not in data[-1024:]
    if data.startswith((b"GIF87a", b"GIF89a")):
        return not data.rstrip(b"\0").endswith(b";")
    if data.startswith(b"RIFF"):  # size field: the bytes after it
        return len(data) < 8 or int.from_bytes(data[4:8], "little") + 8 > len(data)
    if data.startswith(b"BM"):  # size field: the whole file
        return len(data) < 6 or int.from_bytes(data[2:6], "little") > len(data)
    return False


def _detail(e: BaseException) -> str:
    """The decoder's own words, for people: its type and first line, without object addresses."""
    text = re.sub(r" ?<[^<>]* object at 0x[0-9a-f]+>", "", str(e).splitlines()[0] if str(e) else "")
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _as_photo(im) -> np.ndarray:
    """An opened, loaded PIL image as a photo: 16-bit and float scaled to 8 bits, alpha over mid grey."""
    from PIL import Image

    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        hi = a.max() if a.size else 1.0
        a = np.clip(a / (257.0 if hi > 255 else 1.0), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(a[..., None], 3, axis=2))
    if im.mode in ("RGBA", "LA", "PA", "P") or "transparency" in im.info:
        im = im.convert("RGBA")
        grey = Image.new("RGBA", im.size, (128, 128, 128, 255))
        im = Image.alpha_composite(grey, im)
    return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))


def decode_image_info(data: bytes, max_pixels: int = MAX_PIXELS, min_side: int = 1,
                      plain: bool = False) -> tuple[np.ndarray, dict]:
    """Bytes -> (uint8 RGB (H, W, 3), what the file was: format, mode, width, height, frames, bits per
    channel); ImageError with its reason otherwise. `plain`: PIL's own conversion (see the module)."""
    if not data:
        raise ImageError(Reason.EMPTY, "empty file")
    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit is checked below
            im = Image.open(io.BytesIO(data))
            w, h = im.size
            _check_size(w, h, max_pixels, min_side)
            info = {"format": im.format, "mode": im.mode, "width": w, "height": h,
                    "frames": int(getattr(im, "n_frames", 1)), "bits": _bits(im, data)}
            im.seek(0)  # animated: first frame
            im.load()
            if not plain:
                im = ImageOps.exif_transpose(im)
    except ImageError:
        raise
    except Image.DecompressionBombError:  # past twice PIL's own limit: refused at open, size unknown
        raise ImageError(Reason.TOO_MANY_PIXELS, f"too many pixels (over PIL's own limit of "
                         f"{2 * Image.MAX_IMAGE_PIXELS}: a decompression bomb?)") from None
    except Image.UnidentifiedImageError:
        raise ImageError(Reason.UNRECOGNISED, "not a recognised image format") from None
    except Exception as e:  # PIL raises many types on hostile input
        if _ends_early(data):
            raise ImageError(Reason.TRUNCATED, f"truncated ({_detail(e)})") from None
        raise ImageError(Reason.UNDECODABLE, f"undecodable ({_detail(e)})") from None
    try:
        return (np.asarray(im.convert("RGB")) if plain else _as_photo(im)), info
    except ValueError:  # PIL: "conversion from MODE to RGB not supported"
        raise ImageError(Reason.ODD_MODE, f"odd pixel mode {im.mode} (no conversion to RGB)") from None


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS, min_side: int = 1, plain: bool = False) -> np.ndarray:
    """Bytes -> uint8 RGB (H, W, 3), or ImageError with its reason (see `decode_image_info`). In `plain`
    mode a simple 8-bit PNG (render's) is decoded by the fast path, the same pixels as PIL's."""
    from . import png_reader  # (isal, numpy) only where decoding happens

    if plain and (wh := png_reader.size(data)) is not None:
        _check_size(*wh, max_pixels, min_side)  # from the header, before anything is inflated
        if (img := png_reader.decode(data)) is not None:
            return img
    return decode_image_info(data, max_pixels, min_side, plain)[0]


def load_rgb(path: str | os.PathLike, max_pixels: int = MAX_PIXELS, min_side: int = 1, plain: bool = False) -> np.ndarray:
    """An image file as uint8 RGB (see `decode_image`). Only regular files of at most 1 GiB are read (a FIFO
    named like an image would block); ImageError with its reason otherwise."""
    try:
        data = read_regular(path)
    except OSError as e:
        raise _read_error(e) from None
    return decode_image(data, max_pixels, min_side, plain)
