"""The loader's PNG fast path decodes render's PNGs exactly as PIL does, and steps aside for anything else."""

import io

import numpy as np
import pytest
from PIL import Image

from pipelines.render_job import OutputConfig, encode
from render_engine.paths import bundled_backgrounds
from textinfuse import png_reader as png
from training.data import decode_rgb


@pytest.fixture(scope="module")
def photo():
    with Image.open(bundled_backgrounds() / "skimage-coffee.jpg") as im:
        return np.asarray(im.convert("RGB"))[:200, :300].copy()


def pil(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


@pytest.mark.parametrize("flt", ["up", "sub"])
@pytest.mark.parametrize("level", [0, 1, 9])
def test_render_pngs_decode_exactly_as_pil(photo, flt, level):
    data = encode(photo, OutputConfig(png_filter=flt, png_level=level))
    got = png.decode(data)
    assert got is not None and got.dtype == np.uint8 and np.array_equal(got, pil(data))
    assert np.array_equal(got, photo)  # lossless: the pixels render drew


@pytest.mark.parametrize("channels", [1, 4])
def test_grey_and_rgba_come_back_as_pil_converts_them(photo, channels):
    import cv2

    src = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY) if channels == 1 else cv2.cvtColor(photo, cv2.COLOR_RGB2BGRA)
    if channels == 4:
        src[..., 3] = np.arange(src.shape[1], dtype=np.uint8)[None, :]  # a real alpha ramp, dropped as PIL drops it
    data = cv2.imencode(".png", src, [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP])[1].tobytes()
    got = png.decode(data)
    assert got is not None and got.shape == photo.shape and np.array_equal(got, pil(data))


def test_everything_else_is_left_to_pil(photo):
    paeth = encode(photo, OutputConfig(png_filter="paeth"))
    assert png.decode(paeth) is None and np.array_equal(decode_rgb({"png": paeth}), photo)
    buf = io.BytesIO()
    Image.fromarray(photo).convert("P").save(buf, format="PNG")
    assert png.decode(buf.getvalue()) is None  # palette
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, format="PNG", interlace=1)
    assert png.decode(buf.getvalue()) is None or np.array_equal(png.decode(buf.getvalue()), photo)
    good = encode(photo, OutputConfig())
    assert png.decode(good[: len(good) // 2]) is None and png.decode(b"not a png") is None
    corrupt = bytearray(good)
    corrupt[len(corrupt) // 2] ^= 0xFF  # inside the compressed stream: zlib's checksum catches it
    assert png.decode(bytes(corrupt)) is None
    with pytest.raises(ValueError, match="truncated"):
        decode_rgb({"__key__": "k", "png": good[: len(good) // 2]})
