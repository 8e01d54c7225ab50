"""Natural-image backgrounds: from folders, globs, files or WebDataset tars; decoded once, cropped often.

A bad image (unreadable, truncated, too small, a decompression bomb) is reported once with a one-line
warning naming it, remembered as bad, and another is drawn; the job goes on. Odd modes (CMYK, 16-bit,
palette, alpha, animated) are converted to 8-bit RGB.
"""

from __future__ import annotations

import base64
import glob
import io
import logging
import os
import re
import tarfile
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

from .files import is_regular, open_regular, read_span

log = logging.getLogger(__name__)

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}


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


# webdataset's rule: a member's key is its path up to the first dot of its file name, the rest its extension
_KEY_EXT = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")


@dataclass(frozen=True)
class BgRef:
    """Where one image lives: a file, or a member of a tar (data offset and size). For a tar member,
    `extras` holds the sample's other members (extension, data offset, size): its caption, its metadata."""

    name: str  # stable id written into labels
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

    def read_extras(self) -> dict[str, bytes]:
        """The sample's other members, byte for byte, by extension."""
        with open_regular(self.path) as f:
            return {ext: read_span(f, offset, size) for ext, offset, size in self.extras}

    def read(self) -> bytes:
        """The image's bytes; OSError for anything but a regular file, or a span past its end."""
        with open_regular(self.path) as f:
            if self.offset < 0:
                return read_span(f, 0, os.fstat(f.fileno()).st_size)
            return read_span(f, self.offset, self.size)


class BadImage(Exception):
    pass


def _index_tar(path: Path, problems: list[tuple[str, str]]) -> list[BgRef]:
    """One ref per image member, carrying its sample's other members (same key, adjacent, as webdataset
    groups them); a sample with two images gives two refs. A damaged tar gives the images before the
    damage, and a line in `problems`."""
    refs: list[BgRef] = []
    group: list[tuple[str, str | None, int, int]] = []  # the current sample: (member name, ext, offset, size)
    key, error = None, None

    def flush() -> None:
        images = [(n, o, z) for n, _, o, z in group if Path(n).suffix.lower() in IMAGE_EXTS]
        extras = tuple((e, o, z) for n, e, o, z in group if e is not None and (n, o, z) not in images)
        refs.extend(BgRef(f"{path.name}:{n}", str(path), o, z, extras) for n, o, z in images)
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


def expand_sources(specs: list[str]) -> tuple[list[BgRef], list[tuple[str, str]]]:
    """Folders (recursive), globs, brace patterns, image files and .tar shards -> image refs + problems."""
    from braceexpand import braceexpand

    refs: list[BgRef] = []
    problems: list[tuple[str, str]] = []
    for spec in specs:
        for pat in braceexpand(spec):
            paths = [Path(p) for p in sorted(glob.glob(pat, recursive=True))] if glob.has_magic(pat) else [Path(pat)]
            if not paths:
                problems.append((pat, "no match"))
            for p in paths:
                if p.is_dir():
                    try:
                        files = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_EXTS | {".tar"})
                    except OSError as e:
                        problems.append((str(p), f"unreadable folder ({e.strerror})"))
                        continue
                    if not files:
                        problems.append((str(p), "no images in folder"))
                    for f in files:
                        if not is_regular(f):
                            problems.append((str(f), "not a regular file"))
                            continue
                        refs.extend(_index_tar(f, problems) if f.suffix == ".tar" else [BgRef(f"{p.name}/{f.relative_to(p).as_posix()}", str(f))])
                elif p.exists() and not p.is_dir() and not is_regular(p):
                    problems.append((str(p), "not a regular file"))
                elif p.suffix.lower() == ".tar" and p.is_file():
                    refs.extend(_index_tar(p, problems))
                elif p.is_file():
                    refs.append(BgRef(p.name, str(p)))
                else:
                    problems.append((str(p), "not found"))
    for src, why in problems:
        log.warning("%s: background source skipped (%s)", src, why)
    return refs, problems


def _bits(im: Image.Image, data: bytes) -> int:
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


def decode(data: bytes, max_pixels: int, min_side: int) -> np.ndarray:
    """Bytes -> uint8 RGB (H, W, 3), or BadImage with a short reason."""
    return decode_with_info(data, max_pixels, min_side)[0]


def decode_with_info(data: bytes, max_pixels: int, min_side: int) -> tuple[np.ndarray, dict]:
    """Like `decode`, also returning what the file was: format, mode, size, frames, bits per channel."""
    if not data:
        raise BadImage("empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = max_pixels
            im = Image.open(io.BytesIO(data))
            w, h = im.size
            if w * h > max_pixels:
                raise BadImage(f"decompression bomb? {w}x{h} exceeds the {max_pixels}-pixel limit")
            if min(w, h) < min_side:
                raise BadImage(f"too small ({w}x{h}, need {min_side} px on the short side)")
            info = {"format": im.format, "mode": im.mode, "width": w, "height": h,
                    "frames": int(getattr(im, "n_frames", 1)), "bits": _bits(im, data)}
            im.seek(0)  # animated: first frame
            im.load()
            im = ImageOps.exif_transpose(im)
    except BadImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImage(f"decompression bomb? over the {max_pixels}-pixel limit") from None
    except Image.UnidentifiedImageError:
        raise BadImage("unreadable (not a recognised image format)") from None
    except Exception as e:  # PIL raises many types on hostile input
        raise BadImage(f"unreadable ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        hi = a.max() if a.size else 1.0
        a = np.clip(a / (257.0 if hi > 255 else 1.0), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(a[..., None], 3, axis=2)), info
    if im.mode in ("RGBA", "LA", "PA", "P") or "transparency" in im.info:
        im = im.convert("RGBA")
        grey = Image.new("RGBA", im.size, (128, 128, 128, 255))
        im = Image.alpha_composite(grey, im)
    return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8)), info


@dataclass(frozen=True)
class Crop:
    """A crop of a source image: box (x, y, w, h) in source pixels, horizontal flip."""

    x: int
    y: int
    w: int
    h: int
    flip: bool


def sample_crop(rng: np.random.Generator, src_hw: tuple[int, int], out_wh: tuple[int, int],
                scale_range: tuple[float, float]) -> Crop:
    """Random scale (source px per output px), position and flip."""
    H, W = src_hw
    ow, oh = out_wh
    smax = min(W / ow, H / oh)
    lo, hi = scale_range
    s = smax if smax < lo else float(np.exp(rng.uniform(np.log(lo), np.log(min(hi, smax)))))
    cw, ch = max(1, min(W, round(ow * s))), max(1, min(H, round(oh * s)))
    x = int(rng.integers(W - cw + 1))
    y = int(rng.integers(H - ch + 1))
    return Crop(x, y, cw, ch, bool(rng.random() < 0.5))


def box_sum(integral: np.ndarray, x0, y0, x1, y1):
    """Sum of the image over [y0, y1) x [x0, x1) from its integral image (`cv2.integral`); the corners
    may be arrays, giving one sum per box."""
    return integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]


def apply_crop(img: np.ndarray, crop: Crop, out_wh: tuple[int, int]) -> np.ndarray:
    a = img[crop.y : crop.y + crop.h, crop.x : crop.x + crop.w]
    ow, oh = out_wh
    if crop.w < ow:
        a = cv2.resize(a, out_wh, interpolation=cv2.INTER_LINEAR)
    else:
        if ow < crop.w < 2 * ow and oh < crop.h < 2 * oh:
            # OpenCV's area filter is ~5x slower at fractional factors than at whole ones: reach 2x the
            # output size bilinearly, then halve exactly (within ~0.2 grey levels of the direct result)
            a = cv2.resize(a, (2 * ow, 2 * oh), interpolation=cv2.INTER_LINEAR)
        a = cv2.resize(a, out_wh, interpolation=cv2.INTER_AREA)
    return cv2.flip(a, 1) if crop.flip else a


class BackgroundSet:
    """Indexed background images with a per-process decode cache (LRU by bytes)."""

    def __init__(self, refs: list[BgRef], max_pixels: int = 64_000_000, min_side: int = 16,
                 cache_bytes: int = 256 << 20):
        if not refs:
            raise ValueError("no background images found")
        self.refs = refs
        self.max_pixels = max_pixels
        self.min_side = min_side
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._cached = 0
        self.bad: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.refs)

    def image(self, i: int) -> np.ndarray:
        """Decoded RGB image i (raises BadImage, also on later calls, if it cannot be used)."""
        return self._load(i)[0]

    def busyness(self, i: int, crop: Crop, out_w: int) -> float:
        """Mean luminance-gradient magnitude of a crop, per output pixel, from a cached integral image."""
        x, y, w, h = crop.x, crop.y, crop.w, crop.h
        return float(box_sum(self._load(i)[1], x, y, x + w, y + h) / (w * h) * (w / out_w))

    def _load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if i in self.bad:
            raise BadImage(self.bad[i])
        hit = self._cache.get(i)
        if hit is not None:
            self._cache.move_to_end(i)
            return hit
        ref = self.refs[i]
        try:
            img = decode(ref.read(), self.max_pixels, self.min_side)
        except (BadImage, OSError) as e:
            why = str(e) if isinstance(e, BadImage) else f"unreadable ({e.strerror or e})"
            self.bad[i] = why
            log.warning("%s: background skipped (%s)", ref.path if ref.offset < 0 else ref.name, why)
            raise BadImage(why) from None
        grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        grad = np.abs(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)) + np.abs(cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3))
        hit = (img, cv2.integral(grad / 8, sdepth=cv2.CV_32F))  # float32 halves the memory; ample precision
        self._cache[i] = hit
        self._cached += img.nbytes + hit[1].nbytes
        while self._cached > self.cache_bytes and len(self._cache) > 1:
            _, (a, b) = self._cache.popitem(last=False)
            self._cached -= a.nbytes + b.nbytes
        return hit

    def pick(self, rng: np.random.Generator, pool: list[int]) -> tuple[int, np.ndarray]:
        """Draw a usable image from `pool` (then from everything); raise BadImage if none is usable."""
        for candidates in (pool, range(len(self.refs))):
            cand = [i for i in candidates if i not in self.bad]
            while cand:
                i = cand[int(rng.integers(len(cand)))]
                try:
                    return i, self.image(i)
                except BadImage:
                    cand.remove(i)
        raise BadImage("no usable background image")
