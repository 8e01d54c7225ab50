"""textinfuse.images: every way an image input fails has its reason code, the two conversions, inputs from
folders, lists and tars, and PIL's global pixel limit left alone."""

import io
import os
import pickle
import tarfile
import zlib

import numpy as np
import pytest
from PIL import Image

from textinfuse.files import Refused
from textinfuse.images import (
    IMAGE_EXTS,
    ImageError,
    ImageRef,
    Reason,
    decode_image,
    decode_image_info,
    find_images,
    list_images,
    load_rgb,
)


def encoded(a: np.ndarray, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)


def reason(data: bytes, **kw) -> str:
    with pytest.raises(ImageError) as e:
        decode_image(data, **kw)
    assert "\n" not in str(e.value) and str(e.value)
    return e.value.reason


def test_each_decoding_failure_has_its_reason(photo):
    png, jpg = encoded(photo), encoded(photo, "JPEG")
    broken = bytearray(png)
    broken[len(png) // 2] ^= 0xFF  # inside the deflate stream; IEND is still there
    ihdr = (20000).to_bytes(4, "big") * 2 + png[24:29]  # the header claims 20000x20000
    liar = png[:16] + ihdr + zlib.crc32(b"IHDR" + ihdr).to_bytes(4, "big") + png[33:]
    assert reason(b"") == Reason.EMPTY
    assert reason(b"not an image at all") == Reason.UNRECOGNISED
    assert reason(png[: len(png) // 2]) == reason(jpg[: len(jpg) // 3]) == Reason.TRUNCATED
    assert reason(bytes(broken)) == Reason.UNDECODABLE
    for plain in (False, True):  # the fast path refuses from the header too, before inflating
        assert reason(liar, plain=plain) == Reason.TOO_MANY_PIXELS
        assert reason(png, max_pixels=100, plain=plain) == Reason.TOO_MANY_PIXELS
        assert reason(png, min_side=60, plain=plain) == Reason.TOO_SMALL
    assert set(Reason.ALL) >= {Reason.NOT_REGULAR, Reason.TOO_LARGE, Reason.ODD_MODE}


def test_odd_mode(monkeypatch):
    monkeypatch.setattr(Image, "open", lambda fp: Image.new("La", (20, 20)))  # no conversion to RGB exists
    assert reason(b"anything", plain=True) == Reason.ODD_MODE


def test_pils_global_limit_is_left_alone(photo):
    before = Image.MAX_IMAGE_PIXELS
    decode_image(encoded(photo), max_pixels=10**9)
    assert reason(encoded(photo), max_pixels=10) == Reason.TOO_MANY_PIXELS
    assert Image.MAX_IMAGE_PIXELS == before


def test_photo_and_plain_conversions(photo):
    rgba = np.dstack([photo, np.full(photo.shape[:2], 0, np.uint8)])  # fully transparent
    data = encoded(rgba)
    assert np.array_equal(decode_image(data, plain=True), photo)  # PIL's convert: alpha dropped
    assert (decode_image(data) == 128).all()  # as a photo: over mid grey
    deep = (photo[..., 0].astype(np.uint16) * 257)
    img, info = decode_image_info(encoded(deep))
    assert info["bits"] == 16 and np.array_equal(img[..., 0], photo[..., 0])  # scaled, not clipped
    pil_png = encoded(photo, optimize=True)  # PIL's own filters (the fast path or not): the same pixels
    assert np.array_equal(decode_image(pil_png, plain=True), decode_image(encoded(photo), plain=True))


def test_errors_keep_their_reason_across_processes():
    e = pickle.loads(pickle.dumps(ImageError(Reason.TRUNCATED, "truncated (x)")))
    assert e.reason == Reason.TRUNCATED and str(e) == "truncated (x)" and isinstance(e, ValueError)
    r = pickle.loads(pickle.dumps(Refused(5, "truncated: 1 of 2 bytes", "f", "truncated")))
    assert r.reason == "truncated" and str(r) == "truncated: 1 of 2 bytes"


def test_reading_failures_have_their_reason(tmp_path, photo):
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    for call in (lambda: load_rgb(fifo), lambda: ImageRef("fifo.png", str(fifo)).read()):
        with pytest.raises(ImageError) as e:
            call()
        assert e.value.reason == Reason.NOT_REGULAR
    with pytest.raises(ImageError) as e:
        load_rgb(tmp_path / "gone.png")
    assert e.value.reason == Reason.UNREADABLE and "No such file" in str(e.value)
    (tmp_path / "a.png").write_bytes(encoded(photo))
    with pytest.raises(ImageError) as e:  # a tar header may claim more bytes than the file has
        ImageRef("t.tar:a.png", str(tmp_path / "a.png"), 100, 10**6).read()
    assert e.value.reason == Reason.TRUNCATED
    assert np.array_equal(load_rgb(tmp_path / "a.png"), photo)


def test_folders_lists_globs_and_tars(tmp_path, photo):
    d = tmp_path / "imgs"
    (d / "sub").mkdir(parents=True)
    for name in ("b.JPG", "a.png", "sub/c.webp", ".hidden.png"):
        (d / name).write_bytes(encoded(photo, "PNG"))
    (d / "notes.md").write_text("not an image")
    tar = tmp_path / "s-000000.tar"
    with tarfile.open(tar, "w") as tf:
        for name, data in (("k1.jpg", encoded(photo, "JPEG")), ("k1.txt", b"caption"), ("k2.gif", encoded(photo, "GIF"))):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    (tmp_path / "list.txt").write_text(f"# inputs\n{tar}\n{tmp_path / 'nope-*.png'}\n")
    refs, problems = find_images([str(d), str(tmp_path / "list.txt")])
    assert [r.name for r in refs] == ["imgs/.hidden.png", "imgs/a.png", "imgs/b.JPG", "imgs/sub/c.webp",
                                      "s-000000.tar:k1.jpg", "s-000000.tar:k2.gif"]
    assert problems == [(str(tmp_path / "nope-*.png"), "no match")]
    k1 = refs[4]
    assert (k1.key, k1.member_ext, k1.read_extras()) == ("k1", "jpg", {"txt": b"caption"})
    assert decode_image(k1.read()).shape == photo.shape
    assert [p.name for p in list_images(d)] == ["a.png", "b.JPG"]  # its own files, no hidden ones
    assert IMAGE_EXTS[0] == "png" and "jpeg" in IMAGE_EXTS and all(e == e.lower() and "." not in e for e in IMAGE_EXTS)
