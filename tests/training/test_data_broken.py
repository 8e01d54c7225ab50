"""Broken shards and images: a source with no samples ends the run in one line naming it (no hang), a partly
bad source trains on its good shards, and bad images are skipped and counted."""

from __future__ import annotations

import io
import shutil
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from training.data import MixedBatches, decode_rgb, eval_images, make_loader, random_crop, shard_urls
from training.loop import train


def _png_header(w: int, h: int, idat: bytes) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def png_bomb(side: int = 10000) -> bytes:
    """A real side x side black RGB PNG: ~300 KB on disk, side² x 3 bytes decoded."""
    z = zlib.compressobj(9)
    row = b"\x00" * (1 + 3 * side)
    idat = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    return _png_header(side, side, idat)


def bad_shards(d: Path, good_tar: Path) -> Path:
    """A tar of random bytes, an empty (0-byte) .tar and a tar truncated inside its first member."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "bad-rand.tar").write_bytes(np.random.default_rng(0).bytes(5000))
    (d / "bad-empty.tar").write_bytes(b"")
    data = good_tar.read_bytes()
    (d / "bad-trunc.tar").write_bytes(data[:700])
    return d


def _tar(path: Path, members: list[dict]) -> Path:
    import webdataset as wds

    with wds.TarWriter(str(path)) as w:
        for i, m in enumerate(members):
            w.write({"__key__": f"s{i:04d}", **m})
    return path


def _png(im: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(im).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def broken_dir(tmp_path, small_text_dir) -> Path:
    return bad_shards(tmp_path / "broken", next(small_text_dir.glob("*.tar")))


@pytest.mark.timeout(120)
def test_source_with_no_samples_ends_the_run_in_one_line(tmp_path, small_text_dir, broken_dir, tiny):
    stages = 'stages=[{name: a, steps: 2, resolution: 32, weights: {synthetic: 0.5, general: 0.5}, align: 0.0}]'
    for workers in (0, 1):
        argv = [*tiny.argv(small_text_dir, tmp_path / f"run{workers}", stages, f"data.workers={workers}"),
                "--source", f"general={broken_dir}"]
        rc, err = tiny.cli(argv)
        lines = err.strip().splitlines()
        assert rc == 2 and len(lines) == 1, err
        line = lines[0]
        assert line.startswith(f"error: source general ({broken_dir}): no samples in any of its 3 shards: ")
        assert "bad-empty.tar: ReadError" in line and "bad-rand.tar: ReadError" in line
        assert "bad-trunc.tar: ReadError" in line


@pytest.mark.timeout(120)
def test_mixed_batches_raise_for_an_empty_source(broken_dir):
    ds = MixedBatches([shard_urls(str(broken_dir))], [1.0], 4, [(16, 16)], seed=0, buffer=4, names=["broken"])
    with pytest.raises(ValueError, match=r"^source broken: no samples in any of its 3 shards"):
        next(iter(make_loader(ds, 0, 0)))


@pytest.mark.timeout(120)
def test_partly_bad_source_trains_and_counts_bad_shards(tmp_path, small_text_dir, tiny, caplog):
    src = tmp_path / "src"
    shutil.copytree(small_text_dir, src)
    bad_shards(src, next(src.glob("*.tar")))
    s = train(tiny.config(src, "stages=[{name: a, steps: 6, resolution: 32, weights: {synthetic: 1.0}}]"),
              tmp_path / "run")
    assert s["step"] == 6
    for name in ("bad-rand.tar", "bad-empty.tar", "bad-trunc.tar"):  # eval and the stream: one warning
        hits = [r for r in caplog.records if "skipping shard" in r.getMessage() and name in r.getMessage()]
        assert len(hits) == 1, (name, [r.getMessage() for r in caplog.records])
    assert "of 4 shards bad so far" in caplog.text


@pytest.mark.timeout(120)
def test_stream_skips_bad_shards_and_warns_once(tmp_path, small_text_dir, caplog, monkeypatch):
    from training import shards

    monkeypatch.setattr(shards, "_warned", set())
    src = tmp_path / "src"
    shutil.copytree(small_text_dir, src)
    bad_shards(src, next(src.glob("*.tar")))
    ds = MixedBatches([shard_urls(str(src))], [1.0], 8, [(16, 16)], seed=0, buffer=4, names=["part"])
    n = 0
    for i, b in enumerate(make_loader(ds, 0, 0)):
        n += b["image"].shape[0]
        if i == 19:
            break
    assert n == 160  # every sample came from the good shard
    tried = [r.getMessage() for r in caplog.records if "skipping shard" in r.getMessage()]
    assert sorted(m.split("skipping shard ")[1].split(" ")[0].rsplit("/", 1)[1] for m in tried) == [
        "bad-empty.tar", "bad-rand.tar", "bad-trunc.tar"]  # drawn again and again, warned about once


@pytest.mark.timeout(120)
def test_eval_images_name_the_source_when_nothing_decodes(broken_dir):
    with pytest.raises(ValueError, match=r"^no evaluation images: source broken: no samples in any of its 3"):
        eval_images([shard_urls(str(broken_dir))], 4, 16, names=["broken"])


def test_missing_or_empty_source_folder_is_named(tmp_path, tiny):
    missing, empty = tmp_path / "missing", tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no shards here")
    for d, why in ((missing, "no such folder"), (empty, "no .tar shards in this folder")):
        rc, err = tiny.cli(tiny.argv(d, tmp_path / "run"))
        assert rc == 2 and err.strip().splitlines() == [f"error: {d}: {why} (source synthetic)"], err
    assert not (tmp_path / "run" / "ckpt").exists()


@pytest.mark.timeout(120)
def test_source_of_undecodable_images_is_named(tmp_path):
    src = tmp_path / "garbage"
    src.mkdir()
    _tar(src / "g.tar", [{"png": b"\x89PNG\r\n\x1a\n" + bytes(range(200))} for _ in range(5)]
         + [{"json": b"{}"} for _ in range(5)])
    ds = MixedBatches([shard_urls(str(src))], [1.0], 4, [(16, 16)], seed=0, buffer=4, names=["garbage"])
    with pytest.raises(ValueError, match=r"^source garbage: none of its first \d+ samples decodes"):
        for _ in make_loader(ds, 0, 0):
            pass


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return png_bomb(10000)


def test_png_bombs_are_refused_before_decoding(bomb):
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match="too many pixels"):
        decode_rgb({"__key__": "bomb", "png": bomb})
    with pytest.raises(ValueError, match="too many pixels"):  # the header lies: 20000² px in a few bytes
        decode_rgb({"__key__": "liar", "png": _png_header(20000, 20000, zlib.compress(b"\x00" * 100))})
    assert time.perf_counter() - t0 < 5


@pytest.mark.timeout(120)
def test_bad_members_are_skipped_and_counted(tmp_path, bomb):
    rng = np.random.default_rng(0)
    good = [{"png": _png(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8))} for _ in range(8)]
    bad = [{"png": bomb}, {"png": b"garbage"}, {"json": b"{}"}, {"jpg": b"\xff\xd8\xff garbage"},
           {"png": _png_header(20000, 20000, b"")}]
    tiny_img = [{"png": _png(np.full((1, 1, 3), 200, np.uint8))}]
    src = tmp_path / "mixed"
    src.mkdir()
    _tar(src / "m.tar", good + bad + tiny_img)
    ds = MixedBatches([shard_urls(str(src))], [1.0], 14, [(16, 16)], seed=0, buffer=1, names=["mixed"])
    seen, skipped = 0, 0
    for i, b in enumerate(make_loader(ds, 0, 0)):
        assert b["image"].shape[1:] == (3, 16, 16) and b["image"].shape[0] == b["source"].shape[0]
        seen += b["image"].shape[0]
        skipped += int(b["skipped"])
        if i == 4:
            break
    assert seen + skipped == 5 * 14 and skipped > 0 and seen > 0


def test_one_pixel_image_is_scaled_up():
    one = _png(np.array([[[10, 20, 30]]], np.uint8))
    out = random_crop(decode_rgb({"png": one}), (16, 8), np.random.default_rng(0))
    assert out.shape == (8, 16, 3) and (out == np.array([10, 20, 30], np.uint8)).all()
