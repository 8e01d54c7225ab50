"""Hostile and odd background images: one-line warnings naming the file, and the run goes on."""

import logging

import cv2
import numpy as np
import pytest
from PIL import Image

from render_engine.backgrounds import BackgroundSet, apply_crop, sample_crop
from render_engine.config import BackgroundConfig, RenderConfig
from render_engine.engine import Renderer
from textinfuse.images import ImageError, find_images


def photo(h=120, w=160, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h)], -1)
    return np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)


@pytest.fixture()
def odd_folder(tmp_path):
    d = tmp_path / "bgs"
    d.mkdir()
    Image.fromarray(photo()).save(d / "good.jpg")
    (d / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    (d / "empty.png").write_bytes(b"")
    good = (d / "good.jpg").read_bytes()
    (d / "truncated.jpg").write_bytes(good[: len(good) // 3])
    Image.new("RGB", (1, 1), (9, 9, 9)).save(d / "one.png")
    Image.fromarray(photo(seed=1)).convert("CMYK").save(d / "cmyk.jpg")
    Image.fromarray(photo(seed=2)[..., 0].astype(np.uint16) * 257).save(d / "deep16.png")
    Image.fromarray(photo(seed=3)).convert("P", palette=Image.ADAPTIVE).save(d / "palette.png")
    rgba = Image.fromarray(photo(seed=4)).convert("RGBA")
    rgba.putalpha(128)
    rgba.save(d / "alpha.png")
    frames = [Image.fromarray(photo(seed=s)).convert("P") for s in (5, 6)]
    frames[0].save(d / "anim.gif", save_all=True, append_images=frames[1:], loop=0)
    Image.fromarray(photo(400, 400, seed=7)).save(d / "huge.png")  # "huge" against a small pixel limit
    return d


GOOD = {"good.jpg", "cmyk.jpg", "deep16.png", "palette.png", "alpha.png", "anim.gif"}
BAD = {"corrupt.jpg": "unrecognised", "empty.png": "empty", "truncated.jpg": "truncated",
       "one.png": "too_small", "huge.png": "too_many_pixels"}  # ImageError.reason


def test_each_odd_image_decodes_or_is_refused_with_a_reason(odd_folder, caplog):
    refs, problems = find_images([str(odd_folder)])
    assert not problems and len(refs) == len(GOOD) + len(BAD)
    bs = BackgroundSet(refs, max_pixels=100_000, min_side=16)
    with caplog.at_level(logging.WARNING):
        for i, ref in enumerate(refs):
            name = ref.name.split("/")[-1]
            if name in GOOD:
                img = bs.image(i)
                assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and img.std() > 5, name
            else:
                with pytest.raises(ImageError) as e:
                    bs.image(i)
                assert e.value.reason == BAD[name], (name, e.value.reason, str(e.value))
    msgs = [r.getMessage() for r in caplog.records]
    for name in BAD:
        assert sum(name in m for m in msgs) == 1
    assert all("\n" not in m for m in msgs)


def test_rendering_goes_on_past_bad_images(odd_folder, tmp_path):
    missing = str(tmp_path / "nope")
    cfg = RenderConfig(backgrounds=BackgroundConfig(sources=(str(odd_folder), missing), max_pixels=100_000))
    r = Renderer(cfg)
    assert (missing, "not found") in r.assets.background_problems
    used = set()
    pool = list(range(len(r.assets.backgrounds)))
    for i in range(25):
        s = r.generate(np.random.default_rng([1, i]), {}, pool)
        used.add(s.label["background"]["source"].split("/")[-1])
        assert s.image.shape == (256, 256, 3)
    assert used <= GOOD and len(used) >= 3
    assert set(n.split("/")[-1] for n in (r.assets.backgrounds.refs[i].name for i in r.assets.backgrounds.bad)) <= set(BAD)


def test_webdataset_tar_and_glob_sources(tmp_path):
    import io
    import tarfile

    tar = tmp_path / "imgs-000000.tar"
    with tarfile.open(tar, "w") as tf:
        for k in range(3):
            buf = io.BytesIO()
            Image.fromarray(photo(seed=k)).save(buf, format="PNG")
            ti = tarfile.TarInfo(f"{k:04d}.png")
            ti.size = len(buf.getvalue())
            tf.addfile(ti, io.BytesIO(buf.getvalue()))
            meta = b'{"a": 1}'
            ti = tarfile.TarInfo(f"{k:04d}.json")
            ti.size = len(meta)
            tf.addfile(ti, io.BytesIO(meta))
    refs, problems = find_images([str(tmp_path / "imgs-{000000..000000}.tar")])
    assert not problems and [r.name for r in refs] == ["imgs-000000.tar:0000.png", "imgs-000000.tar:0001.png", "imgs-000000.tar:0002.png"]
    bs = BackgroundSet(refs)
    assert np.array_equal(bs.image(1), photo(seed=1))
    refs2, _ = find_images([str(tmp_path / "*.tar")])
    assert refs2 == refs
    (tmp_path / "broken.tar").write_bytes(b"x" * 700)
    refs3, _ = find_images([str(tmp_path / "broken.tar")])
    assert refs3 == []


def test_crops_cover_scale_flip_and_small_sources():
    rng = np.random.default_rng(0)
    img = photo(300, 500)
    crops = [sample_crop(rng, img.shape[:2], (64, 64), (0.5, 2.0)) for _ in range(200)]
    assert any(c.flip for c in crops) and not all(c.flip for c in crops)
    assert min(c.w for c in crops) < 50 and max(c.w for c in crops) > 100
    for c in crops:
        assert 0 <= c.x <= 500 - c.w and 0 <= c.y <= 300 - c.h
        assert apply_crop(img, c, (64, 64)).shape == (64, 64, 3)
    tiny = sample_crop(rng, (20, 30), (64, 64), (0.5, 2.0))  # smaller than the canvas: upscaled
    assert tiny.w <= 30 and tiny.h <= 20


def test_unreadable_folder_is_reported_and_others_are_used(odd_folder, tmp_path, monkeypatch, caplog):
    """Root reads any folder, so the permission error is injected where the folder is listed."""
    from pathlib import Path

    locked = tmp_path / "locked"
    locked.mkdir()
    real_rglob = Path.rglob

    def rglob(self, pattern):
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_rglob(self, pattern)

    monkeypatch.setattr(Path, "rglob", rglob)
    with caplog.at_level(logging.WARNING):
        refs, problems = find_images([str(locked), str(odd_folder)])
    assert problems == [(str(locked), "unreadable folder (Permission denied)")]
    assert len(refs) == len(GOOD) + len(BAD)
    assert any(str(locked) in r.getMessage() and "unreadable" in r.getMessage() for r in caplog.records)


def test_fractional_downscale_matches_the_area_filter():
    from render_engine.backgrounds import Crop
    from render_engine.paths import bundled_backgrounds

    path = sorted(bundled_backgrounds().glob("*.jpg"))[0]
    img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    for side in (300, 420, 500):  # factors 1.17, 1.64, 1.95
        crop = Crop(10, 20, side, side, False)
        got = apply_crop(img, crop, (256, 256)).astype(np.int16)
        want = cv2.resize(img[20 : 20 + side, 10 : 10 + side], (256, 256), interpolation=cv2.INTER_AREA)
        assert np.abs(got - want).mean() < 0.6, side  # no aliasing, no extra blur worth the name
    flipped = apply_crop(img, Crop(10, 20, 420, 420, True), (256, 256))
    assert np.array_equal(flipped, apply_crop(img, Crop(10, 20, 420, 420, False), (256, 256))[:, ::-1])
