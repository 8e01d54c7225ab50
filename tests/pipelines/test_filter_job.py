"""The filter job on real images: our renders (sharp and degraded), bundled photos, hostile inputs."""

import io
import json
import tarfile
from dataclasses import replace

import cv2
import numpy as np
import pytest
import webdataset as wds
from PIL import Image

from pipelines.filter_job import FilterConfig, TextDensityConfig, run_filter
from render_engine.config import EffectsConfig, LayoutConfig, RenderConfig, TextConfig
from render_engine.engine import Renderer
from render_engine.paths import bundled_backgrounds

DEGRADED = {"blurry", "upscaled", "jpeg_artifacts"}


def png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    r = Renderer(RenderConfig(levels=(1,), text=TextConfig(langs=("en",), char_px=(14, 16)),
                              layout=LayoutConfig(page_prob=1.0), effects=EffectsConfig(strength=0.0)))
    text = r.generate(np.random.default_rng(5)).image
    (d / "text.png").write_bytes(png(text))
    (d / "text_blur.png").write_bytes(png(cv2.GaussianBlur(text, (0, 0), 3)))
    small = cv2.resize(text, (64, 64), interpolation=cv2.INTER_AREA)
    (d / "text_upscaled.png").write_bytes(png(cv2.resize(small, (256, 256), interpolation=cv2.INTER_CUBIC)))
    (d / "text_jpeg.jpg").write_bytes(cv2.imencode(".jpg", text[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 4])[1].tobytes())
    photo = bundled_backgrounds() / "skimage-coffee.jpg"
    (d / "photo.jpg").write_bytes(photo.read_bytes())
    (d / "corrupt.jpg").write_bytes(b"\xff\xd8\xff" + bytes(300))
    (d / "tiny.png").write_bytes(png(text[:40, :40]))
    (d / "panorama.png").write_bytes(png(np.tile(text, (1, 6, 1))[:200]))
    return d


EXPECT = {"text.png": None, "photo.jpg": "no_text", "corrupt.jpg": "unrecognised", "tiny.png": "too_small",
          "panorama.png": "extreme_aspect"}


def records(out):
    return [json.loads(ln) for ln in (out / "scores.jsonl").read_text().splitlines()]


def test_keeps_sharp_text_and_says_why_for_the_rest(inputs, tmp_path):
    man = run_filter([str(inputs)], FilterConfig(), tmp_path)
    recs = {r["source"]["path"].rsplit("/", 1)[1]: r for r in records(tmp_path)}
    assert len(recs) == 8 and man["totals"]["inputs"] == 8
    for name, reason in EXPECT.items():
        assert recs[name]["reason"] == reason, (name, recs[name])
    for name in ("text_blur.png", "text_upscaled.png", "text_jpeg.jpg"):
        assert recs[name]["reason"] in DEGRADED and not recs[name]["keep"], (name, recs[name])
    t = recs["text.png"]
    assert t["keep"] and t["text_density"]["chars"] > 100 and t["text_density"]["latin_share"] > 0.7
    assert "text_density" not in recs["text_blur.png"]  # OCR skipped after a cheaper reject
    kept = list(wds.WebDataset([str(p) for p in sorted(tmp_path.glob("*.tar"))], shardshuffle=False))
    assert len(kept) == 1 and kept[0]["png"] == (inputs / "text.png").read_bytes()  # original bytes
    assert json.loads(kept[0]["filter.json"])["text_density"] == t["text_density"]
    assert man["totals"]["reasons"]["kept"] == 1 and sum(man["totals"]["reasons"].values()) == 8


def test_rescore_reapplies_thresholds_without_ocr(inputs, tmp_path, monkeypatch):
    first = tmp_path / "a"
    run_filter([str(inputs)], FilterConfig(), first)
    from textinfuse import ocr

    def boom(*a, **k):
        raise AssertionError("OCR ran during a rescore that had every score it needed")

    monkeypatch.setattr(ocr, "read", boom)
    monkeypatch.setattr(ocr, "detect", boom)
    strict = replace(FilterConfig(), text_density=TextDensityConfig(min_chars=10_000))
    man = run_filter([str(inputs)], strict, tmp_path / "b", rescore_from=first)
    recs = {r["source"]["path"].rsplit("/", 1)[1]: r for r in records(tmp_path / "b")}
    assert recs["text.png"]["reason"] == "little_text" and man["totals"]["kept"] == 0
    assert recs["text.png"]["text_density"] == {r["source"]["path"].rsplit("/", 1)[1]: r for r in records(first)}["text.png"]["text_density"]


def test_hostile_tar_members_are_refused_and_never_written(tmp_path):
    img = png(np.full((200, 200, 3), 128, np.uint8))
    tar = tmp_path / "in-000000.tar"
    with tarfile.open(tar, "w") as tf:
        for name, data in (("../evil.png", img), ("/abs/evil.png", img), ("ok.pickle", b"\x80\x04K\x01."),
                           ("plain.png", img)):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    out = tmp_path / "out"
    run_filter([str(tar)], FilterConfig(), out)
    recs = records(out)
    by_key = {r["source"]["key"]: r for r in recs}
    assert set(by_key) == {"../evil.png", "/abs/evil.png", "plain.png"}  # the pickle is not an image: never read
    assert by_key["../evil.png"]["reason"] == by_key["/abs/evil.png"]["reason"] == "unsafe_name"
    assert by_key["plain.png"]["reason"] in {"blurry", "no_text"}  # flat grey: decoded and scored
    assert not (tmp_path / "evil.png").exists() and not list(out.rglob("evil*"))


def test_filter_report_draws_thresholds_and_near_examples(inputs, tmp_path):
    from pipelines.filter_report import filter_report

    run_filter([str(inputs)], FilterConfig(), tmp_path)
    t = filter_report(tmp_path, tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text()
    assert t["inputs"] == 8
    for key in ("clarity.peak_sharpness", "clarity.laplacian_var", "clarity.hf_energy", "clarity.blockiness",
                "clarity.ringing", "text_density.chars_per_mp"):
        assert f"<h2>{key}" in html
    assert html.count("class='chart'") >= 6 and "failing, nearest the threshold" in html
    assert "passing, nearest the threshold" in html and "http" not in html


@pytest.mark.slow
def test_same_scores_on_ray(inputs, tmp_path, ray_cluster):
    from pipelines.executors import RayExecutor

    local, remote = tmp_path / "local", tmp_path / "ray"
    run_filter([str(inputs)], replace(FilterConfig(), files_per_task=3), local)
    man = run_filter([str(inputs)], replace(FilterConfig(), files_per_task=3), remote, executor=RayExecutor())
    assert not man["failed_shards"] and len(man["shards"]) == 3
    assert (local / "scores.jsonl").read_bytes() == (remote / "scores.jsonl").read_bytes()
    for p in local.glob("*.tar"):
        assert (remote / p.name).read_bytes() == p.read_bytes()


def test_presence_pass_never_shrinks_a_large_page_past_its_text():
    from pathlib import Path

    from pipelines.filters.text_density import TextDensity, presence_side

    page = cv2.imread(str(Path(__file__).resolve().parents[1] / "fixtures" / "documents" / "debian-reference-zh-cn-p6.png"))
    page = page[..., ::-1].copy()  # a real 893x1263 documentation page, ~12 px text
    cfg = TextDensityConfig()
    assert presence_side(893, 1263, cfg) == 632 and presence_side(512, 512, cfg) == 256
    s = TextDensity().score(page, {}, cfg)
    assert s["presence_boxes"] >= 20 and 0.2 < s["presence_area"] < 0.6 and s["chars"] > 1000
    squeezed = TextDensity().score(page, {}, replace(cfg, presence_min_scale=0.0))  # 256 px: text is ~3 px
    assert squeezed["presence_boxes"] < cfg.min_presence_boxes and "chars" not in squeezed
