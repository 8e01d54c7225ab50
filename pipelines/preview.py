"""Contact sheets: a grid of samples read back from shards with `webdataset`, boxes optionally drawn."""

from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image, ImageDraw

IMAGE_KEYS = ("png", "jpg", "webp")


def read_samples(folder: str | Path, num: int | None = None):
    """Yield (key, PIL image, label dict) from the shards in `folder`, in shard order."""
    import webdataset as wds

    shards = sorted(str(p) for p in Path(folder).glob("*.tar"))
    if not shards:
        raise FileNotFoundError(f"{folder}: no .tar shards")
    ds = wds.WebDataset(shards, shardshuffle=False, empty_check=False)
    for i, s in enumerate(ds):
        if num is not None and i >= num:
            return
        img_key = next(k for k in IMAGE_KEYS if k in s)
        yield s["__key__"], Image.open(io.BytesIO(s[img_key])).convert("RGB"), json.loads(s["json"])


def draw_boxes(img: Image.Image, label: dict) -> Image.Image:
    out = img.copy()
    d = ImageDraw.Draw(out)
    for c in label["characters"]:
        d.polygon([tuple(p) for p in c["box"]], outline=(0, 255, 0))
    for ln in label["lines"]:
        d.polygon([tuple(p) for p in ln["box"]], outline=(255, 0, 0))
    return out


def preview(folder: str | Path, out: str | Path, num: int = 24, boxes: bool = False, cols: int = 6) -> int:
    """Write a PNG grid of the first `num` samples (captioned key, level, language); return the count."""
    tiles = []
    for key, img, label in read_samples(folder, num):
        if boxes:
            img = draw_boxes(img, label)
        cap = f"{key} L{label['difficulty']['level']} {label['lang']} {','.join(map(str, label['char_px']))}px"
        tile = Image.new("RGB", (img.width, img.height + 14), (255, 255, 255))
        tile.paste(img, (0, 14))
        ImageDraw.Draw(tile).text((2, 1), cap, fill=(0, 0, 0))
        tiles.append(tile)
    if not tiles:
        raise FileNotFoundError(f"{folder}: shards hold no samples")
    cols = max(1, min(cols, len(tiles)))
    rows = -(-len(tiles) // cols)
    tw, th = max(t.width for t in tiles), max(t.height for t in tiles)
    sheet = Image.new("RGB", (cols * (tw + 4) + 4, rows * (th + 4) + 4), (200, 200, 200))
    for i, t in enumerate(tiles):
        sheet.paste(t, (4 + (i % cols) * (tw + 4), 4 + (i // cols) * (th + 4)))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return len(tiles)
