"""Contact sheets: a grid of samples read back from shards with `webdataset`, boxes optionally drawn."""

from __future__ import annotations

import errno
import json
import logging
from pathlib import Path

from PIL import Image, ImageDraw

from render_engine.labels import CHARS_MEMBER, columns
from textinfuse.images import IMAGE_EXTS, MAX_PIXELS, decode_image

log = logging.getLogger(__name__)


def read_samples(folder: str | Path, num: int | None = None):
    """Yield (key, PIL image, label dict, character boxes member or None) from the shards in `folder`, in
    shard order (the member: `chars.npy` of a version 2 label; `render_engine.labels.columns` reads both).
    A sample whose image or label cannot be read, and a damaged tar, are skipped with a warning naming
    them."""
    import webdataset as wds

    shards = sorted(str(p) for p in Path(folder).glob("*.tar"))
    if not shards:
        raise FileNotFoundError(errno.ENOENT, "no .tar shards", str(folder))

    def skip_tar(e: Exception) -> bool:
        log.warning("rest of a tar skipped (%s: %s)", type(e).__name__, e)  # webdataset adds the tar's name
        return True

    ds = wds.WebDataset(shards, shardshuffle=False, empty_check=False, handler=skip_tar)
    n = 0
    for s in ds:
        if num is not None and n >= num:
            return
        where = f"{Path(s.get('__url__', '')).name}:{s['__key__']}"
        try:
            img_key = next(k for k in IMAGE_EXTS if k in s)
            image = Image.fromarray(decode_image(s[img_key], MAX_PIXELS))  # a shard from elsewhere: bombs refused
            label = json.loads(s["json"])
            if not isinstance(label, dict):
                raise ValueError("label is not a JSON object")
        except (StopIteration, KeyError, ValueError) as e:  # ValueError: ImageError too
            log.warning("%s: sample skipped (%s)", where, "no image member" if isinstance(e, StopIteration)
                        else f"no {e} member" if isinstance(e, KeyError) else e)
            continue
        n += 1
        yield s["__key__"], image, label, s.get(CHARS_MEMBER)


def draw_boxes(img: Image.Image, label: dict, member: bytes | None = None) -> Image.Image:
    """Character (green) and line (red) boxes over `img`; `member`: the sample's `chars.npy` (label
    version 2). A label that does not read raises ValueError (LabelError)."""
    out = img.copy()
    d = ImageDraw.Draw(out)
    for q in columns(label, member).quads.tolist():
        d.polygon([tuple(p) for p in q], outline=(0, 255, 0))
    for ln in label["lines"]:
        d.polygon([tuple(p) for p in ln["box"]], outline=(255, 0, 0))
    return out


def preview(folder: str | Path, out: str | Path, num: int = 24, boxes: bool = False, cols: int = 6) -> int:
    """Write a PNG grid of the first `num` samples (captioned key, level, language); return the count."""
    tiles = []
    for key, img, label, member in read_samples(folder, num):
        try:
            if boxes:
                img = draw_boxes(img, label, member)
            cap = f"{key} L{label['difficulty']['level']} {label['lang']} {','.join(map(str, label['char_px']))}px"
        except (KeyError, TypeError, ValueError) as e:  # a label from elsewhere: show the image, say why
            log.warning("%s: label not as expected (%s: %s)", key, type(e).__name__, e)
            cap = f"{key} (label unreadable)"
        tile = Image.new("RGB", (img.width, img.height + 14), (255, 255, 255))
        tile.paste(img, (0, 14))
        ImageDraw.Draw(tile).text((2, 1), cap, fill=(0, 0, 0))
        tiles.append(tile)
    if not tiles:
        raise FileNotFoundError(errno.ENOENT, "its shards hold no readable samples", str(folder))
    cols = max(1, min(cols, len(tiles)))
    rows = -(-len(tiles) // cols)
    tw, th = max(t.width for t in tiles), max(t.height for t in tiles)
    sheet = Image.new("RGB", (cols * (tw + 4) + 4, rows * (th + 4) + 4), (200, 200, 200))
    for i, t in enumerate(tiles):
        sheet.paste(t, (4 + (i % cols) * (tw + 4), 4 + (i // cols) * (th + 4)))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return len(tiles)
