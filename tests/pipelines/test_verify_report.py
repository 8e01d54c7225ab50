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
