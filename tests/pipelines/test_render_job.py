"""Shards read back with the standard reader; stats, manifest, determinism, resume, atomic failure."""

import errno
import hashlib
import io
import json
import os
import shutil
from dataclasses import replace

import numpy as np
import pytest
import webdataset as wds

from pipelines import render_job
from pipelines.jobdir import FolderInUse
from pipelines.render_job import OutputConfig, RenderJobConfig, run_render
from render_engine.labels import characters, columns


def read_back(folder):
    shards = sorted(str(p) for p in folder.glob("*.tar"))
    return list(wds.WebDataset(shards, shardshuffle=False))


def test_shards_are_standard_webdataset(tiny_dataset, tiny_job):
    items = read_back(tiny_dataset)
    assert [s["__key__"] for s in items] == [f"{i // 5:06d}_{i % 5:06d}" for i in range(12)]
    for s in items:
        assert set(k for k in s if not k.startswith("__")) == {"png", "json", "chars.npy", "txt"}
        lab = json.loads(s["json"])
        assert lab["key"] == s["__key__"] and s["txt"].decode() == lab["text"] and lab["text"]
        assert s["png"][:8] == b"\x89PNG\r\n\x1a\n"
        assert lab["seeds"] == {"run": 7, "shard": int(s["__key__"][:6]), "index": int(s["__key__"][7:])}
        # label version 2, read with plain numpy and json as the README shows
        boxes = np.load(io.BytesIO(s["chars.npy"]), allow_pickle=False)
        chars = "".join(ln.get("chars", "".join(ln["text"].split())) for ln in lab["lines"])
        assert lab["version"] == 2 and boxes.dtype == np.int16 and boxes.shape == (len(chars), 4) == (lab["char_boxes"]["count"], 4)
    # webdataset's default decoders make the member an array (numpy's reader, no pickle), which our reader takes
    decoded = list(wds.WebDataset(sorted(str(p) for p in tiny_dataset.glob("*.tar")), shardshuffle=False).decode("rgb"))
    warped = 0
    for s, raw in zip(decoded, items, strict=True):
        assert isinstance(s["chars.npy"], np.ndarray) and s["chars.npy"].dtype == np.int16
        assert characters(s["json"], s["chars.npy"]) == characters(json.loads(raw["json"]), raw["chars.npy"])
        assert s["png"].shape == (256, 256, 3)
        # the README's numpy-only recipe gives our reader's characters, lines and quads
        lab, boxes = s["json"], s["chars.npy"]
        per_line = [ln.get("chars") or "".join(ln["text"].split()) for ln in lab["lines"]]
        line = np.repeat(np.arange(len(per_line)), [len(c) for c in per_line])
        quads = boxes[:, [0, 1, 2, 1, 2, 3, 0, 3]].reshape(-1, 4, 2).astype(np.float64)
        for m in np.asarray(lab["char_boxes"]["warp"], np.float64):
            uvw = quads @ m[:, :2].T + m[:, 2]
            quads = uvw[..., :2] / uvw[..., 2:]
        ours = columns(lab, boxes)
        assert ours.chars == "".join(per_line) and np.array_equal(ours.line, line)
        assert np.allclose(ours.quads, quads, rtol=0, atol=1e-9)
        warped += bool(lab["char_boxes"]["warp"])
    assert warped >= 2
    man = json.loads((tiny_dataset / "manifest.json").read_text())
    assert man["totals"]["samples"] == 12 and man["num_shards"] == 3 and man["seed"] == 7
    assert man["config"]["output"]["samples_per_shard"] == 5
    import hashlib

    from render_engine.legibility import bundled_table
    # the size guard's table is recorded with its content (it decides which faces are drawn)
    assert man["legibility"] == {"table": "bundled", "sha256": hashlib.sha256(bundled_table().read_bytes()).hexdigest()}
    for sh in man["shards"]:
        tar = tiny_dataset / sh["file"]
        st = json.loads((tiny_dataset / sh["file"].replace(".tar", ".stats.json")).read_text())
        assert hashlib.sha256(tar.read_bytes()).hexdigest() == sh["sha256"] == st["sha256"]
        assert st["count"] == sh["count"] and st["members"] == 4 * st["count"] and st["bytes"] == tar.stat().st_size
        assert sum(st["histograms"]["lang"].values()) == st["count"]
    assert not list((tiny_dataset / "_tmp").iterdir())


def test_same_seed_gives_identical_bytes_and_resume_skips_done_shards(tiny_dataset, tiny_job, tmp_path):
    out = tmp_path / "again"
    run_render(tiny_job, out)
    for p in sorted(tiny_dataset.glob("*.tar")):
        assert (out / p.name).read_bytes() == p.read_bytes()
    # lose one shard and interrupt mid-shard (a stale temp file): the rerun redoes only that shard
    (out / "textinfuse-000001.tar").unlink()
    (out / "textinfuse-000001.stats.json").unlink()
    (out / "_tmp" / "textinfuse-000001.tar.999.part").write_bytes(b"partial")
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.tar")}
    run_render(tiny_job, out)
    for name, t in before.items():
        assert (out / name).stat().st_mtime_ns == t
    assert (out / "textinfuse-000001.tar").read_bytes() == (tiny_dataset / "textinfuse-000001.tar").read_bytes()
    assert not list((out / "_tmp").iterdir())


def test_other_config_is_refused_unless_overwrite(tiny_dataset, tiny_job, tmp_path):
    out = tmp_path / "cfg"
    shutil.copytree(tiny_dataset, out)
    other = replace(tiny_job, seed=8)
    with pytest.raises(FolderInUse, match="--overwrite"):
        run_render(other, out)
    run_render(other, out, overwrite=True)
    assert json.loads((out / "manifest.json").read_text())["seed"] == 8
    assert (out / "textinfuse-000000.tar").read_bytes() != (tiny_dataset / "textinfuse-000000.tar").read_bytes()


def flaky_encode(monkeypatch, fail_calls: set[int]):
    """Simulate a full disk (ENOSPC) on the given encode calls (1-based, in render order)."""
    real = render_job.encode
    calls = {"n": 0}

    def flaky(image, out):
        calls["n"] += 1
        if calls["n"] in fail_calls:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(image, out)

    monkeypatch.setattr(render_job, "encode", flaky)
    return real


def test_a_shard_that_fails_once_is_retried_at_the_end(tiny_job, tiny_dataset, tmp_path, monkeypatch):
    flaky_encode(monkeypatch, {7})  # shard 1's second sample, first attempt only
    man = run_render(tiny_job, tmp_path)
    assert not man["failed_shards"] and man["totals"]["samples"] == 12
    for p in tiny_dataset.glob("*.tar"):
        assert (tmp_path / p.name).read_bytes() == p.read_bytes()


def test_disk_full_leaves_no_partial_shard(tiny_job, tmp_path, monkeypatch):
    # shard 0: calls 1-5; shard 1 fails at call 7; shard 2: 8-9; shard 1's retry fails at call 11
    real = flaky_encode(monkeypatch, {7, 11})
    man = run_render(tiny_job, tmp_path)
    assert [f["shard"] for f in man["failed_shards"]] == [1]
    assert "No space left" in man["failed_shards"][0]["reason"]
    assert sorted(p.name for p in tmp_path.glob("*.tar")) == ["textinfuse-000000.tar", "textinfuse-000002.tar"]
    assert not (tmp_path / "textinfuse-000001.stats.json").exists()
    assert not list((tmp_path / "_tmp").iterdir())
    monkeypatch.setattr(render_job, "encode", real)
    man = run_render(tiny_job, tmp_path)  # resume completes it
    assert man["totals"]["samples"] == 12 and not man["failed_shards"]


def test_disk_full_at_the_stats_file_publishes_nothing_of_the_shard(tiny_job, tiny_dataset, tmp_path, monkeypatch):
    from pipelines import shards

    real, calls = shards._staged, {"n": 0}

    def flaky(tmp_dir, path, data):  # the stats file of shard 1, both attempts
        calls["n"] += 1
        if path.name == "textinfuse-000001.stats.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(tmp_dir, path, data)

    monkeypatch.setattr(shards, "_staged", flaky)
    man = run_render(tiny_job, tmp_path)
    assert [f["shard"] for f in man["failed_shards"]] == [1] and calls["n"] >= 4
    assert not (tmp_path / "textinfuse-000001.tar").exists()  # the tar was whole, but it never moved into place
    assert not list((tmp_path / "_tmp").iterdir())
    monkeypatch.setattr(shards, "_staged", real)
    man = run_render(tiny_job, tmp_path)
    assert not man["failed_shards"]
    for p in tiny_dataset.glob("*.tar"):
        assert (tmp_path / p.name).read_bytes() == p.read_bytes()


def test_preview_draws_a_grid(tiny_dataset, tmp_path):
    from PIL import Image

    from pipelines.preview import preview

    n = preview(tiny_dataset, tmp_path / "g.png", num=8, boxes=True, cols=4)
    im = Image.open(tmp_path / "g.png")
    assert n == 8 and im.size == (4 * 260 + 4, 2 * 274 + 4)
    assert os.path.getsize(tmp_path / "g.png") > 10_000


@pytest.fixture()
def tiny_disk(tmp_path):
    """A real 1.5 MiB tmpfs (needs root and mount rights; skipped where the sandbox forbids it)."""
    import subprocess

    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1536k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_real_full_disk_fails_cleanly(tiny_disk):
    from render_engine.config import LayoutConfig, RenderConfig

    job = RenderJobConfig(seed=2, num_samples=40, render=RenderConfig(layout=LayoutConfig(page_prob=1.0)),
                          output=OutputConfig(samples_per_shard=10))
    man = run_render(job, tiny_disk)
    assert man["failed_shards"], "the disk should have filled up"
    assert all("No space left" in f["reason"] for f in man["failed_shards"])
    for f in man["failed_shards"]:  # nothing partial under a final name
        assert not (tiny_disk / f"textinfuse-{f['shard']:06d}.tar").exists()
    for sh in man["shards"]:  # what was published is whole
        assert hashlib.sha256((tiny_disk / sh["file"]).read_bytes()).hexdigest() == sh["sha256"]
    assert not list((tiny_disk / "_tmp").iterdir())


def test_tar_layout_matches_webdataset_tarwriter(tmp_path):
    from pipelines.shards import ShardWriter

    samples = [{"__key__": f"000003_{i:06d}", "png": bytes([i]) * (100 + i), "json": b'{"a": 1}', "txt": "h\u00e9"}
               for i in range(3)]
    with ShardWriter(tmp_path, "x", 3) as w:
        for s in samples:
            w.write(s)
        w.finish()
        w.publish(None)
    with open(tmp_path / "ref.tar", "wb") as f:
        tw = wds.TarWriter(f, encoder=False, mtime=0, user="textinfuse", group="textinfuse", mode=0o444)
        for s in samples:
            tw.write({k: (v.encode() if isinstance(v, str) and k != "__key__" else v) for k, v in s.items()})
        tw.close()
    assert (tmp_path / "x-000003.tar").read_bytes() == (tmp_path / "ref.tar").read_bytes()


def test_member_count_walks_the_headers_and_catches_broken_framing(tiny_dataset, tmp_path):
    import tarfile

    from pipelines.shards import count_members

    tar = tiny_dataset / "textinfuse-000000.tar"
    with tarfile.open(tar) as tf:
        assert count_members(tar) == len(tf.getmembers()) == 20  # 5 samples: png, json, chars.npy, txt
    data = tar.read_bytes()
    bad = tmp_path / "bad.tar"
    bad.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])  # a name byte: the checksum fails
    with pytest.raises(OSError, match="bad tar header at byte 0"):
        count_members(bad)
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(OSError, match="runs past the end|truncated"):
        count_members(bad)


@pytest.mark.slow
def test_ray_data_reads_the_shards_without_adapters(tiny_dataset, ray_cluster):
    import ray

    ds = ray.data.read_webdataset(sorted(str(p) for p in tiny_dataset.glob("*.tar")), decoder=None)
    rows = ds.take_all()
    assert len(rows) == 12
    assert {r["__key__"] for r in rows} == {f"{i // 5:06d}_{i % 5:06d}" for i in range(12)}
    r = rows[0]
    assert r["png"][:8] == b"\x89PNG\r\n\x1a\n" and json.loads(r["json"])["text"] == r["txt"].decode()
    # Ray's default decoders: the boxes member becomes an int16 array, the label a dict
    decoded = {r["__key__"]: r for r in ray.data.read_webdataset(sorted(str(p) for p in tiny_dataset.glob("*.tar"))).take_all()}
    for r in rows:
        d = decoded[r["__key__"]]
        assert isinstance(d["chars.npy"], np.ndarray) and d["chars.npy"].dtype == np.int16
        assert characters(d["json"], d["chars.npy"]) == characters(json.loads(r["json"]), r["chars.npy"])


def test_labels_cost_at_most_30_bytes_a_character_on_the_default_mix(tmp_path):
    """Label version 2: every member but the image and the text (`json` and `chars.npy`), over a real
    render of the default config. Version 1 wrote about 100 bytes a character (benchmarks/label_size.py)."""
    import tarfile

    job = RenderJobConfig(seed=0, num_samples=100, output=OutputConfig(samples_per_shard=100))
    st = render_job.render_shard(job, 0, tmp_path)
    size, samples, chars = {}, set(), 0
    with tarfile.open(tmp_path / st["file"]) as tf:
        for m in tf.getmembers():
            key, ext = m.name.split(".", 1)
            samples.add(key)
            size[ext] = size.get(ext, 0) + m.size
            if ext == "json":
                chars += json.load(tf.extractfile(m))["char_boxes"]["count"]
    assert len(samples) == 100 and chars == st["chars"] > 100 * 100
    per_char = (size["json"] + size["chars.npy"]) / chars
    assert per_char <= 30, (per_char, size)
    assert size["chars.npy"] / chars < 8.5  # int16 boxes and a 128-byte header


def test_shards_render_without_garbage_collection_and_leave_no_cycles_per_sample(tmp_path, tiny_job):
    """Collection is paused while a shard renders; that is only safe if samples make no reference cycles."""
    import gc

    found = []
    for n in (2, 4, 16):  # the first warms the worker's caches (their set-up garbage is not per sample)
        job = replace(tiny_job, num_samples=n, output=OutputConfig(samples_per_shard=n))
        gc.collect()
        assert gc.isenabled()
        render_job.render_shard(job, 0, tmp_path / str(n))
        assert gc.isenabled()  # restored afterwards
        found.append(gc.collect())
    assert found[2] <= found[1] + 2, found  # garbage cycles do not grow with the number of samples


def test_ocr_score_records_what_the_ocr_reads_only_when_asked(tiny_dataset, tmp_path):
    """output.ocr_score: each label gets the OCR text and its character F1 against the label (off by
    default, so the default shards carry no such key); an easy, large sample reads well."""
    from render_engine.config import RenderConfig

    job = RenderJobConfig(seed=3, num_samples=2, render=RenderConfig(width=128, height=128, levels=(1,)),
                          output=OutputConfig(samples_per_shard=2, ocr_score=True))
    run_render(job, tmp_path / "o")
    labels = [json.loads(s["json"]) for s in wds.WebDataset(str(tmp_path / "o" / "textinfuse-000000.tar"),
                                                            shardshuffle=False)]
    assert len(labels) == 2
    for lab in labels:
        sc = lab["ocr_score"]
        assert 0.0 <= sc["char_f1"] <= 1.0 and isinstance(sc["ocr_text"], str)
    assert max(lab["ocr_score"]["char_f1"] for lab in labels) > 0.5
    plain = next(iter(wds.WebDataset(str(tiny_dataset / "textinfuse-000000.tar"), shardshuffle=False)))
    assert "ocr_score" not in json.loads(plain["json"])
