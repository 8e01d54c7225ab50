import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from pipelines.verify import verify


@pytest.fixture()
def copy(tiny_dataset, tmp_path):
    d = tmp_path / "d"
    shutil.copytree(tiny_dataset, d)
    return d


def test_clean_dataset_verifies(copy):
    r = verify(copy)
    assert r.ok and r.checked == 3 and r.samples == 12


def test_corrupt_missing_extra_and_unfinished_are_reported(copy):
    tar = copy / "textinfuse-000001.tar"
    data = bytearray(tar.read_bytes())
    data[2000] ^= 0xFF
    tar.write_bytes(bytes(data))
    (copy / "textinfuse-000002.tar").unlink()
    (copy / "stray-000000.tar").write_bytes(b"x")
    (copy / "textinfuse-000000.stats.json").unlink()
    r = verify(copy)
    assert sorted(r.problems) == sorted([
        ("textinfuse-000001.tar", "sha256 differs from stats (corrupted after writing)"),
        ("textinfuse-000002.tar", "missing shard"),
        ("stray-000000.tar", "extra tar: not part of this dataset"),
        ("textinfuse-000000.tar", "missing or unreadable stats file (shard not finished)"),
    ])
    cli = subprocess.run([sys.executable, "-m", "textinfuse.cli", "verify", str(copy)], capture_output=True, text=True)
    assert cli.returncode == 1 and "4 problem(s)" in cli.stdout


def test_truncated_tar_with_matching_stats_is_caught(copy):
    import json

    tar = copy / "textinfuse-000000.tar"
    data = tar.read_bytes()[:5000]
    tar.write_bytes(data)
    st = json.loads((copy / "textinfuse-000000.stats.json").read_text())
    import hashlib

    st.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())  # even with consistent stats
    (copy / "textinfuse-000000.stats.json").write_text(json.dumps(st))
    r = verify(copy)
    assert [p for p, _ in r.problems] == ["textinfuse-000000.tar"]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_renders_its_charts_in_a_real_browser(tiny_dataset, tmp_path):
    from PIL import Image

    from pipelines.report import report

    html_path = tmp_path / "report.html"
    totals = report(tiny_dataset, html_path)
    text = html_path.read_text()
    assert totals["samples"] == 12 and text.count("class='chart'") >= 8
    assert "<h3>level " in text and "<h3>language en</h3>" in text and "<h3>language zh</h3>" in text
    assert "http://" not in text and "https://" not in text  # self-contained
    exe = chromium()
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (.ci/run installs it)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    shot = tmp_path / "shot.png"
    subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'ud'}",
                    "--window-size=1200,1800", f"--screenshot={shot}", html_path.as_uri()],
                   capture_output=True, timeout=120, check=True)
    px = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    bars = (np.abs(px - np.array([0x44, 0x72, 0xC4])).sum(-1) < 30).sum()  # the charts' bar colour
    assert bars > 5000, bars
    assert px.std() > 20  # not a blank page


def test_verify_names_the_shard_and_key_of_a_bad_or_missing_chars_member(tiny_dataset, tiny_job, tmp_path, monkeypatch):
    """A writer that dropped a box row (shard 1, sample 1) or the whole `chars.npy` (shard 0, sample 3):
    tars, stats and manifest agree with each other, so only reading the labels finds it."""
    import json

    import webdataset as wds

    from pipelines import render_job
    from render_engine.labels import decode_boxes, encode_boxes

    real, calls = render_job.label_members, {"n": 0}

    def faulty(s):
        calls["n"] += 1
        m = real(s)
        if calls["n"] == 4:
            del m["chars.npy"]
        if calls["n"] == 7:
            m["chars.npy"] = encode_boxes(decode_boxes(m["chars.npy"])[:-1])
        return m

    monkeypatch.setattr(render_job, "label_members", faulty)
    out = tmp_path / "bad"
    render_job.run_render(tiny_job, out)
    n = next(json.loads(s["json"])["char_boxes"]["count"] for s in wds.WebDataset(
        [str(tiny_dataset / "textinfuse-000001.tar")], shardshuffle=False) if s["__key__"] == "000001_000001")
    r = verify(out)
    assert sorted(r.problems) == [
        ("textinfuse-000000.tar", "sample 000000_000003: label version 2 needs the sample's chars.npy member, which is missing"),
        ("textinfuse-000001.tar", f"sample 000001_000001: chars.npy has {n - 1} rows, the label's lines have {n} characters "
                                  f"(char_boxes.count {n})"),
    ]
    cli = subprocess.run([sys.executable, "-m", "textinfuse.cli", "verify", str(out)], capture_output=True, text=True)
    assert cli.returncode == 1
    assert any(line.startswith(f"textinfuse-000001.tar: sample 000001_000001: chars.npy has {n - 1} rows")
               for line in cli.stdout.splitlines())


def test_version_1_samples_still_verify_and_preview_with_their_boxes():
    """Shards written before label version 2 (a `characters` list in the JSON, no chars.npy) still read."""
    import io
    import json
    from pathlib import Path

    from PIL import Image

    from pipelines.preview import draw_boxes
    from pipelines.verify import _check_sample

    fixtures = json.loads((Path(__file__).resolve().parent.parent / "fixtures" / "labels_v1.json").read_text())
    for f in fixtures.values():
        v1 = f["label"]
        png = io.BytesIO()
        Image.new("RGB", tuple(v1["size"])).save(png, "PNG")
        s = {"__key__": "000000_000000", "png": png.getvalue(), "json": json.dumps(v1).encode(), "txt": v1["text"].encode()}
        assert _check_sample(s, "render") is None
        bad = {**v1, "characters": v1["characters"] + [{"char": "x", "line": 0}]}
        assert "version 1 characters are malformed" in _check_sample({**s, "json": json.dumps(bad).encode()}, "render")
        green = [((np.asarray(draw_boxes(Image.new("RGB", tuple(v1["size"])), lab)) == (0, 255, 0)).all(-1)).sum()
                 for lab in (v1, {**v1, "characters": []})]
        assert green[0] > 100 and green[1] == 0  # the characters' outlines (the lines' red ones cover some)
