"""Render, filter and verify against hostile or broken inputs, on real files: nothing already written is
lost, nothing short is called done, nothing of another run is mixed in, any file name round-trips."""

import errno
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import replace

import cv2
import numpy as np
import pytest
import webdataset as wds
from PIL import Image

from pipelines.filter_job import ClarityConfig, FilterConfig, TextDensityConfig, run_filter
from pipelines.jobdir import FolderInUse
from pipelines.render_job import OutputConfig, RenderJobConfig, run_render
from pipelines.verify import verify
from render_engine.config import BackgroundConfig, RenderConfig
from textinfuse.files import name_from

# keeps every valid image: these tests are about the job, not the scores
KEEP_VALID = FilterConfig(clarity=ClarityConfig(enabled=False), text_density=TextDensityConfig(enabled=False))


def cli(*args):
    return subprocess.run([sys.executable, "-m", "textinfuse.cli", *args], capture_output=True, timeout=300)


def photo(seed: int, size=(160, 200)) -> bytes:
    rng = np.random.default_rng(seed)
    a = cv2.GaussianBlur(rng.integers(0, 255, (*size, 3), dtype=np.uint8), (0, 0), 2)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def job_on(bg_dir, n=4, per=2, seed=3) -> RenderJobConfig:
    return RenderJobConfig(seed=seed, num_samples=n, output=OutputConfig(samples_per_shard=per),
                           render=RenderConfig(width=96, height=96,
                                               backgrounds=BackgroundConfig(sources=(str(bg_dir),))))


def test_unreadable_backgrounds_fail_every_shard_and_the_fixed_rerun_redoes_them(tmp_path):
    bg = tmp_path / "bg"
    bg.mkdir()
    for i in range(3):
        (bg / f"b{i}.jpg").write_bytes(b"\xff\xd8\xff" + bytes(200))  # JPEG magic, no image
    out = tmp_path / "out"
    r = cli("render", "--out", str(out), "--num-samples", "4", "--samples-per-shard", "2", "--size", "96",
            "--backgrounds", str(bg), "--executor", "local")
    assert r.returncode == 1, r.stderr
    man = json.loads((out / "manifest.json").read_text())
    assert [f["shard"] for f in man["failed_shards"]] == [0, 1]
    assert "2 of 2 samples could not be rendered" in man["failed_shards"][0]["reason"]
    assert "no usable background" in man["failed_shards"][0]["reason"]
    assert man["totals"]["samples"] == 0 and not list(out.glob("*.tar")) and not list(out.glob("*.stats.json"))
    assert not verify(out).ok
    for i in range(3):  # the images are fixed: the same command renders everything
        (bg / f"b{i}.jpg").write_bytes(photo(i))
    r = cli("render", "--out", str(out), "--num-samples", "4", "--samples-per-shard", "2", "--size", "96",
            "--backgrounds", str(bg), "--executor", "local")
    assert r.returncode == 0, r.stderr
    man = json.loads((out / "manifest.json").read_text())
    assert man["totals"]["samples"] == 4 and not man["failed_shards"] and verify(out).ok


def test_a_rerun_with_fewer_samples_is_refused_and_overwrite_removes_the_old_shards(tmp_path):
    bg = tmp_path / "bg"
    bg.mkdir()
    (bg / "a.png").write_bytes(photo(0))
    (tmp_path / "out").mkdir()
    mine = tmp_path / "out" / "notes.txt"  # the user's own file in the output folder
    mine.write_text("keep me")
    run_render(job_on(bg, n=6), tmp_path / "out")
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").glob("*.tar")}
    assert len(before) == 3
    with pytest.raises(FolderInUse, match=r"num_samples: 6 -> 3.*--overwrite"):
        run_render(job_on(bg, n=3), tmp_path / "out")
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").glob("*.tar")} == before  # nothing touched
    with pytest.raises(FolderInUse, match="samples_per_shard: 2 -> 3"):
        run_render(job_on(bg, n=6, per=3), tmp_path / "out")
    man = run_render(job_on(bg, n=3), tmp_path / "out", overwrite=True)
    assert sorted(p.name for p in (tmp_path / "out").glob("*.tar")) == ["textinfuse-000000.tar", "textinfuse-000001.tar"]
    assert man["totals"]["samples"] == 3 and verify(tmp_path / "out").ok
    assert mine.read_text() == "keep me"


def test_a_killed_first_run_is_still_known_by_its_identity(tmp_path):
    bg = tmp_path / "bg"
    bg.mkdir()
    (bg / "a.png").write_bytes(photo(0))
    out = tmp_path / "out"
    run_render(job_on(bg, n=4), out)
    for p in list(out.glob("*.stats.json")) + [out / "manifest.json", out / "textinfuse-000001.tar"]:
        p.unlink()  # as if killed before any shard finished: only job.json and a tar without stats
    with pytest.raises(FolderInUse, match="seed: 3 -> 4"):
        run_render(job_on(bg, n=4, seed=4), out)


def test_filter_over_another_filter_run_is_refused_unless_overwrite(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d, n in ((a, 4), (b, 1)):
        d.mkdir()
        for i in range(n):
            (d / f"p{i}.png").write_bytes(photo(i))
    out = tmp_path / "out"
    run_filter([str(a)], replace(KEEP_VALID, files_per_task=1), out)
    assert len(list(out.glob("*.tar"))) == 4
    with pytest.raises(FolderInUse, match="inputs"):
        run_filter([str(b)], replace(KEEP_VALID, files_per_task=1), out)
    with pytest.raises(FolderInUse, match="config"):
        run_filter([str(a)], replace(KEEP_VALID, files_per_task=2), out)
    man = run_filter([str(b)], replace(KEEP_VALID, files_per_task=1), out, overwrite=True)
    assert sorted(p.name for p in out.glob("*.tar")) == ["filtered-000000.tar"]  # the old run's 1-3 are gone
    assert man["totals"]["inputs"] == 1 and len((out / "scores.jsonl").read_text().splitlines()) == 1
    assert sorted(p.name for p in (out / "scores").iterdir()) == ["part-000000.jsonl"]
    r = cli("filter", "--input", str(a), "--out", str(out), "--executor", "local",
            "--set", "clarity.enabled=false", "--set", "text_density.enabled=false")
    assert r.returncode == 2 and r.stderr.decode().count("\n") == 1 and "--overwrite" in r.stderr.decode()


def test_non_utf8_file_names_round_trip_in_scores_labels_and_manifests(tmp_path):
    bg = os.fsencode(tmp_path) + b"/bg\xff"
    os.mkdir(bg)
    name = bg + b"/caf\xe9-\x80.png"  # Latin-1 e-acute and a lone continuation byte: not UTF-8
    with open(name, "wb") as f:
        f.write(photo(0))
    out = tmp_path / "f"
    man = run_filter([os.fsdecode(bg)], KEEP_VALID, out)
    assert man["totals"]["kept"] == 1 and not man["failed_shards"]
    rec = json.loads((out / "scores.jsonl").read_text(encoding="utf-8"))
    assert os.fsencode(name_from(rec["source"], "path")) == name and rec["format"]["format"] == "PNG"
    kept = next(iter(wds.WebDataset([str(out / "filtered-000000.tar")], shardshuffle=False)))
    assert os.fsencode(name_from(json.loads(kept["filter.json"])["source"], "path")) == name
    assert json.loads((out / "manifest.json").read_text())["inputs"] == [os.fsdecode(bg)]  # Python reads it back
    again = run_filter([os.fsdecode(bg)], KEEP_VALID, out)  # same inputs: resumes
    assert again["totals"]["kept"] == 1

    job = job_on(os.fsdecode(bg), n=2)
    r = run_render(job, tmp_path / "r")
    assert not r["failed_shards"] and r["totals"]["samples"] == 2
    lab = json.loads(next(iter(wds.WebDataset([str(tmp_path / "r" / "textinfuse-000000.tar")], shardshuffle=False)))["json"])
    assert os.fsencode(name_from(lab["background"], "source")).endswith(b"caf\xe9-\x80.png")
    assert verify(tmp_path / "r").ok


def test_verify_catches_a_tar_and_its_stats_replaced_together(tiny_dataset, tiny_job, tmp_path):
    other = tmp_path / "other"
    run_render(replace(tiny_job, seed=99), other)
    d = tmp_path / "d"
    shutil.copytree(tiny_dataset, d)
    for ext in (".tar", ".stats.json"):
        shutil.copy(other / f"textinfuse-000001{ext}", d / f"textinfuse-000001{ext}")
    r = verify(d)
    assert r.problems == [("textinfuse-000001.tar", "sha256 in its stats file differs from the manifest "
                                                    "(shard replaced after the run?)")]


def test_filtered_tar_samples_keep_every_member_byte_for_byte(tmp_path):
    """An img2dataset-style shard: KEY.jpg with KEY.json (url, licence) and KEY.txt (caption)."""
    tar = tmp_path / "web-000000.tar"
    members = {"00000/000001": {"jpg": photo(1), "json": b'{"url": "http://x/1.jpg", "license": "CC-BY"}',
                                "txt": "a caption, caf\u00e9".encode()},
               "00000/000002": {"png": photo(2)[:50], "txt": b"truncated image"},
               "00000/000003": {"png": photo(3), "json": b'{"url": "http://x/3.png"}', "filter.json": b'{"old": 1}'}}
    with tarfile.open(tar, "w") as tf:
        for key, m in members.items():
            for ext, data in m.items():
                ti = tarfile.TarInfo(f"{key}.{ext}")
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
    out = tmp_path / "out"
    man = run_filter([str(tar)], KEEP_VALID, out)
    assert man["totals"]["kept"] == 2 and man["totals"]["reasons"]["truncated"] == 1
    kept = {s["__key__"]: s for s in wds.WebDataset([str(out / "filtered-000000.tar")], shardshuffle=False)}
    assert set(kept) == {"00000/000001", "00000/000003"}
    for key, s in kept.items():
        for ext, data in members[key].items():
            if ext != "filter.json":
                assert s[ext] == data, (key, ext)
        scores = json.loads(s["filter.json"])  # this run's scores replace an earlier run's
        assert scores["keep"] and scores["source"]["key"].startswith(key) and "old" not in scores


def test_sixteen_bit_png_is_recorded_as_sixteen_bits(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    a = (np.random.default_rng(0).random((160, 200, 3)) * 65535).astype(np.uint16)
    cv2.imwrite(str(d / "deep.png"), a)
    run_filter([str(d)], KEEP_VALID, tmp_path / "out")
    rec = json.loads((tmp_path / "out" / "scores.jsonl").read_text())
    assert rec["keep"] and rec["format"]["bits"] == 16


def test_a_full_disk_at_the_manifest_names_the_file(tmp_path, monkeypatch, capsys):
    from pipelines import shards
    from textinfuse.cli import main

    real = shards._staged

    def full(tmp_dir, path, data):
        if path.name == "manifest.json":
            raise OSError(errno.ENOSPC, "No space left on device")  # no file name, as a failed write() gives
        return real(tmp_dir, path, data)

    monkeypatch.setattr(shards, "_staged", full)
    bg = tmp_path / "bg"
    bg.mkdir()
    (bg / "a.png").write_bytes(photo(0))
    rc = main(["render", "--out", str(tmp_path / "o"), "--num-samples", "2", "--size", "96", "--backgrounds",
               str(bg), "--executor", "local"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and err[-1] == f"error: {tmp_path / 'o' / 'manifest.json'}: No space left on device"
    assert len(list((tmp_path / "o").glob("*.tar"))) == 1  # the shard itself is kept


@pytest.mark.timeout(120)
def test_fifos_and_devices_named_like_images_are_skipped_not_read(tmp_path):
    bg = tmp_path / "bg"
    bg.mkdir()
    (bg / "ok.png").write_bytes(photo(0))
    os.mkfifo(bg / "fifo.png")  # reading it would block forever
    (bg / "zero.png").symlink_to("/dev/zero")  # reading it would fill the memory
    os.mkfifo(tmp_path / "pipe.tar")
    man = run_filter([str(bg), str(tmp_path / "pipe.tar")], KEEP_VALID, tmp_path / "f")
    assert man["totals"]["inputs"] == 1 and man["totals"]["kept"] == 1
    assert sorted(os.path.basename(src) for src, why in man["input_problems"] if why == "not a regular file") == \
        ["fifo.png", "pipe.tar", "zero.png"]
    r = run_render(job_on(bg, n=2), tmp_path / "r")
    assert r["totals"]["samples"] == 2 and not r["failed_shards"]


def test_inputs_that_yield_no_image_are_an_error_not_an_empty_success(tmp_path):
    (tmp_path / "empty.tar").write_bytes(b"")
    (tmp_path / "random.tar").write_bytes(np.random.default_rng(0).bytes(5000))
    r = cli("filter", "--input", str(tmp_path / "empty.tar"), str(tmp_path / "random.tar"), "--out",
            str(tmp_path / "o"), "--executor", "local")
    err = r.stderr.decode().strip().splitlines()[-1]
    assert r.returncode == 2 and "no images in the inputs" in err and "empty.tar: malformed tar" in err
    assert not (tmp_path / "o").exists()  # refused before the output folder is claimed


def test_kept_samples_with_long_or_undecodable_keys_are_written_and_verified(tmp_path):
    tar = tmp_path / "in.tar"
    names = ["d/" + "x" * 150 + ".png", "caf\udce9.png"]  # over USTAR's name field; not UTF-8
    with tarfile.open(tar, "w", format=tarfile.GNU_FORMAT) as tf:
        for i, name in enumerate(names):
            data = photo(i)
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    man = run_filter([str(tar)], KEEP_VALID, tmp_path / "o")
    assert man["totals"]["kept"] == 2 and not man["failed_shards"]
    keys = [s["__key__"] for s in wds.WebDataset([str(tmp_path / "o" / "filtered-000000.tar")], shardshuffle=False)]
    assert keys == [n[:-4] for n in names]
    assert verify(tmp_path / "o").ok


def test_verify_and_preview_survive_hostile_folders(tiny_dataset, tmp_path):
    from pipelines.preview import preview

    d = tmp_path / "d"
    shutil.copytree(tiny_dataset, d)
    man = json.loads((d / "manifest.json").read_text())
    for key, value, why in ((("num_shards",), 10**12, "num_shards 1000000000000 is out of range"),
                            (("config", "output", "name"), "../escape", "shard prefix '../escape' is not a plain name")):
        bad = json.loads(json.dumps(man))
        node = bad
        for k in key[:-1]:
            node = node[k]
        node[key[-1]] = value
        (d / "manifest.json").write_text(json.dumps(bad))
        r = verify(d)  # returns at once, reads nothing outside d; the shards are still checked by their stats
        assert r.problems == [(str(d / "manifest.json"), f"missing or unreadable manifest (ValueError: {why})")]
        assert r.checked == 3
    with tarfile.open(d / "textinfuse-000000.tar") as src, tarfile.open(tmp_path / "bad-000000.tar", "w") as out:
        for m in src.getmembers():
            data = src.extractfile(m).read()
            if m.name == "000000_000001.png":
                data = b"not an image"
            m.size = len(data)
            out.addfile(m, io.BytesIO(data))
    g = tmp_path / "g"
    g.mkdir()
    shutil.copy(tmp_path / "bad-000000.tar", g)
    assert preview(g, tmp_path / "p.png", num=10) == 4  # the broken sample is skipped, the rest shown


def test_a_language_no_font_writes_is_refused_before_any_shard(tmp_path):
    from render_engine.paths import bundled_fonts

    latin = next(p for p in bundled_fonts().rglob("DejaVuSans.ttf"))
    fonts = tmp_path / "fonts"
    fonts.mkdir()
    shutil.copy(latin, fonts)
    r = cli("render", "--out", str(tmp_path / "o"), "--num-samples", "2", "--langs", "zh", "--fonts", str(fonts),
            "--set", "render.fonts.include_bundled=false", "--executor", "local")
    err = r.stderr.decode().strip().splitlines()
    assert r.returncode == 2 and len(err) == 1 and "no font covers Chinese" in err[0] and str(fonts) in err[0]
    assert not (tmp_path / "o").exists()  # refused before the folder is claimed
