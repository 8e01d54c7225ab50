"""Render's PNG writer: every filter and level gives a PNG that PIL and OpenCV read back exactly."""

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from pipelines.png_writer import FILTERS, encode_png
from render_engine.paths import bundled_backgrounds


@pytest.fixture(scope="module")
def photo():
    with Image.open(bundled_backgrounds() / "skimage-coffee.jpg") as im:
        return np.asarray(im.convert("RGB"))[:97, :131].copy()  # odd sizes: no row is a multiple of 8


def idat_rows(data: bytes) -> bytes:
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + n]
        assert zlib.crc32(body, zlib.crc32(kind)) == struct.unpack(">I", data[pos + 8 + n : pos + 12 + n])[0]
        idat += body if kind == b"IDAT" else b""
        pos += 12 + n
    return zlib.decompress(idat)


@pytest.mark.parametrize("row_filter", [*FILTERS, "adaptive"])
@pytest.mark.parametrize("level", [0, 1, 3, 6])
def test_every_filter_and_level_reads_back_exactly(photo, row_filter, level):
    for img in (photo, photo[..., 1], np.dstack([photo, photo[..., 0]])):  # RGB, grey, RGBA
        data = encode_png(img, level, row_filter)
        with Image.open(io.BytesIO(data)) as im:
            assert np.array_equal(np.asarray(im), img)
        back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if back.ndim == 3:
            back = cv2.cvtColor(back, cv2.COLOR_BGR2RGB if back.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
        assert np.array_equal(back, img)
        assert encode_png(img, level, row_filter) == data  # deterministic


@pytest.mark.parametrize("rows_at_a_time", [1, 2, 7])
def test_large_images_filtered_in_chunks_give_the_same_bytes(photo, monkeypatch, rows_at_a_time):
    import pipelines.png_writer as png

    whole = {f: encode_png(photo, 1, f) for f in [*FILTERS, "adaptive"]}
    monkeypatch.setattr(png, "_CHUNK", photo.shape[1] * 3 * rows_at_a_time)
    for f, data in whole.items():
        assert encode_png(photo, 1, f) == data, f


def test_files_are_no_bigger_than_libpng_at_level_1(photo):
    ours = len(encode_png(photo, 1, "up"))
    libpng = len(cv2.imencode(".png", photo[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 1])[1])
    assert ours <= 1.1 * libpng
    assert len(encode_png(photo, 9, "adaptive")) < ours  # zlib at 9 with adaptive rows: smaller still


def test_adaptive_picks_the_cheapest_filter_for_each_row(photo):
    h, stride = photo.shape[0], photo.shape[1] * 3
    rows = np.frombuffer(idat_rows(encode_png(photo, 1, "adaptive")), np.uint8).reshape(h, stride + 1)
    kinds = rows[:, 0]
    assert len(set(kinds.tolist())) > 1  # a photo's rows do not all want the same filter
    single = [np.frombuffer(idat_rows(encode_png(photo, 1, f)), np.uint8).reshape(h, stride + 1)[:, 1:] for f in FILTERS]
    cost = lambda r: np.minimum(r, 256 - r.astype(np.int64)).sum(-1)  # noqa: E731  libpng's |signed byte| sum
    costs = np.stack([cost(r) for r in single])  # (filter, row)
    assert np.array_equal(kinds, costs.argmin(0))
    assert np.array_equal(cost(rows[:, 1:]), costs.min(0))


def test_bad_arguments_are_refused_with_the_reason(photo):
    with pytest.raises(ValueError, match="8-bit"):
        encode_png(photo.astype(np.uint16))
    with pytest.raises(ValueError, match="channels"):
        encode_png(photo[..., :2])
    with pytest.raises(ValueError, match="level"):
        encode_png(photo, 10)
    with pytest.raises(ValueError, match="row filter"):
        encode_png(photo, 1, "best")
