"""`char_f1` and the readability calibration (pipelines/calibrate/), kept tiny: 128 px canvases, a few
OCR calls."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from pipelines.calibrate import (
    CalibrateConfig,
    Face,
    Task,
    band_of,
    calibrate_task,
    cell_config,
    effect_strength,
    make_tasks,
    run_calibrate,
    select_faces,
)
from pipelines.executors import LocalExecutor
from render_engine.config import RenderConfig
from render_engine.effects import REGISTRY
from render_engine.legibility import Legibility
from textinfuse.configio import ConfigError, load
from textinfuse.metrics import char_f1


@pytest.mark.parametrize("ocr, label, want", [
    ("abc", "abc", 1.0),  # identical
    ("abc", "xyz", 0.0),  # disjoint
    ("cba", "abc", 1.0),  # order-free
    ("a b\nc", "abc", 1.0),  # whitespace and line breaks do not count
    ("aab", "ab", 2 * 2 / (3 + 2)),  # repeats count as often as they occur: common {a, b}
    ("ab", "aab", 2 * 2 / (2 + 3)),
    ("aaaa", "a", 2 * 1 / (4 + 1)),
    ("", "", 1.0),  # nothing to read, nothing read
    (" \n", "", 1.0),
    ("", "abc", 0.0),  # nothing read
    ("abc", "", 0.0),  # read what is not there
    ("你好", "你好吗", 2 * 2 / (2 + 3)),
    ("A", "a", 0.0),  # exact code points: no case folding
])
def test_char_f1(ocr, label, want):
    assert char_f1(ocr, label) == pytest.approx(want)
    assert 0.0 <= char_f1(ocr, label) <= 1.0


def test_char_f1_precision_recall():
    # precision 2/4, recall 2/2 -> F1 = 2 * 0.5 * 1 / 1.5
    assert char_f1("abxy", "ab") == pytest.approx(2 / 3)
    assert char_f1("abxy", "ab") == char_f1("ab", "abxy")  # F1 is symmetric


def test_cell_config_fixes_size_and_effect():
    cfg = CalibrateConfig()
    for s in (5, 6, 13, 20, 40):
        rc = cell_config(cfg, "x.ttf", ("latin",), "en", s, "blur")
        assert rc.px_range(1, "en") == (s, s)
        assert rc.levels == (1,) and rc.layout.page_prob == 1.0 and rc.effects.enabled == ("blur",)
        assert rc.fonts.dirs == ("x.ttf",) and not rc.fonts.include_bundled and rc.fonts.latin_in_cjk_font == 0
    for name in ("blur", "noise", "jpeg", "perspective"):
        for lv in range(1, 6):
            assert REGISTRY[name].probability(lv) * effect_strength(name, lv) >= 1.0
    rc = cell_config(cfg, "x.otf", ("han", "latin"), "en", 10, "none")
    assert rc.effects.enabled == () and rc.fonts.latin_in_cjk_font == 1.0
    rc = cell_config(CalibrateConfig(cell_level=5, cell_mode="scene"), "x.ttf", ("latin",), "en", 16, "noise")
    assert rc.levels == (5,) and rc.px_range(5, "en") == (16, 16) and rc.layout.page_prob == 0.0


def test_config_checks():
    with pytest.raises(ConfigError, match="effects"):
        load(CalibrateConfig, None, ["effects=[none, sparkle]"])
    with pytest.raises(ConfigError, match="sizes"):
        load(CalibrateConfig, None, ["sizes=[100]"])
    with pytest.raises(ConfigError, match="bands"):
        load(CalibrateConfig, None, ["bands=[0.5, 0.9, 0.7, 0.4]"])
    cfg = load(CalibrateConfig, None, ["samples_per_cell=3", "render.width=128", "faces=[DejaVu Sans]"])
    assert cfg.samples_per_cell == 3 and cfg.render.width == 128
    faces, _ = select_faces(cfg)
    assert {f.family for f in faces} == {"DejaVu Sans"} and len(faces) == 2  # Book and Bold
    with pytest.raises(ValueError, match="no face matches"):
        select_faces(CalibrateConfig(faces=("No Such Face",)))


def test_task_grid_is_bounded():
    cfg = CalibrateConfig()
    faces, _ = select_faces(cfg)
    tasks = make_tasks(cfg, faces)
    cells = [t for t in tasks if t.kind == "cell"]
    pairs = sum(2 if "han" in f.scripts else 1 for f in faces)
    assert len(cells) == pairs * len(cfg.sizes) * len(cfg.effects)
    assert sum(t.count for t in tasks if t.kind == "level") == 5 * 2 * cfg.samples_per_level
    assert sum(t.examples for t in tasks if t.kind == "level") == 5 * 2 * cfg.examples_per_level


def test_bad_font_fails_its_cell_only(tmp_path):
    bad = tmp_path / "broken.ttf"
    bad.write_bytes(b"not a font")
    face = Face("x/broken.ttf#0", "Broken", "Regular", str(bad), 0, ("latin",))
    res = calibrate_task((CalibrateConfig(), {face.id: face}), Task("cell", "en", face=face.id, size=10,
                                                                      effect="none", count=3))
    assert res["render_failed"] == 3 and res["f1"] == [] and res["errors"]


def test_end_to_end_and_resume(tmp_path, monkeypatch):
    cfg = CalibrateConfig(
        samples_per_level=1, examples_per_level=1, samples_per_cell=2, faces=("DejaVuSans.ttf",), sizes=(12,),
        effects=("none", "blur"), render=RenderConfig(width=128, height=128))
    out = tmp_path / "cal"

    class Interrupted(Exception):
        pass

    class StopsAfter(LocalExecutor):  # a run killed after its third task
        def run(self, fn, shared, items, on_result):
            def cb(item, res, err):
                on_result(item, res, err)
                if sum(1 for ln in (out / "calibration.partial.jsonl").open()) == 4:  # header + 3 tasks
                    raise Interrupted
            super().run(fn, shared, items, cb)

    class Counts(LocalExecutor):
        ran: list = []

        def run(self, fn, shared, items, on_result):
            self.ran += list(items)
            super().run(fn, shared, items, on_result)

    with pytest.raises(Interrupted):
        run_calibrate(cfg, out, StopsAfter())
    assert not (out / "calibration.json").exists()
    from pipelines.jobdir import FolderInUse

    with pytest.raises(FolderInUse, match="unfinished calibration of another config"):
        run_calibrate(replace(cfg, samples_per_cell=1), out, Counts())
    assert Counts.ran == []
    doc = run_calibrate(cfg, out, Counts())  # continues: only the 12 - 3 missing tasks run
    assert len(Counts.ran) == 12 - 3 and not (out / "calibration.partial.jsonl").exists()
    saved = json.loads((out / "calibration.json").read_text())
    assert saved["config_hash"] == doc["config_hash"] and saved["kind"] == "calibration"
    assert {"rapidocr", "numpy", "textinfuse"} <= set(saved["versions"])
    assert [r["level"] for r in saved["levels"]] == [1, 2, 3, 4, 5]
    for r in saved["levels"]:
        for lang in ("en", "zh"):
            s = r[lang]
            assert set(s) >= {"mean", "std", "median", "p10", "n", "examples"}
            assert s["n"] + s["empty"] + s["render_failed"] + s["ocr_failed"] == 1
            if s["n"]:
                assert 0.0 <= s["mean"] <= 1.0 and 0.0 <= s["p10"] <= 1.0
                assert (out / s["examples"][0]["file"]).exists()
    cells = saved["cells"]
    assert [(c["face"], c["lang"], c["size"], c["effect"]) for c in cells] == [
        ("fonts/latin/DejaVuSans.ttf#0", "en", 12, "none"), ("fonts/latin/DejaVuSans.ttf#0", "en", 12, "blur")]
    for c in cells:
        assert c["family"] == "DejaVu Sans" and c["script"] == "latin"
        assert c["n"] + c["empty"] + c["render_failed"] + c["ocr_failed"] == 2
        assert c["n"] == 2 and 0.0 <= c["mean"] <= 1.0 and c["std"] >= 0.0
    assert cells[1]["applied"] == 2  # blur always applied
    assert saved["summary"]["min_size"][0]["lang"] == "en"
    verdict = saved["summary"]["levels"]  # each level's own band, from the means above
    for lang in ("en", "zh"):
        for r in saved["levels"]:
            if r[lang]["n"]:
                assert verdict[lang]["in_band"][str(r["level"])] == (band_of(r[lang]["mean"], saved["bands"]) == r["level"])
    assert verdict["all_in_band"] == all(v for lang in ("en", "zh") for v in verdict[lang]["in_band"].values())
    # the no-effect cells as a legibility table the renderer takes (fonts.legibility)
    table = Legibility.load(out / "legibility.json")
    assert table.profile("DejaVu Sans", "Book", "en").curve == ((12, cells[0]["mean"]),)
    assert table.profile("DejaVu Sans", "Book", "zh") is None  # DejaVu writes no Chinese
    assert table.profile("Dancing Script", "Regular", "en") is not None  # the bundled profiles come along
    page = (out / "calibration.html").read_text()
    assert page.count("data:image/png;base64,") >= 4  # levels, size curve, effects, examples
    assert (out / "levels.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # resume: the same config is reused without any OCR, the page redrawn if it went missing
    def boom(*a, **k):
        raise AssertionError("recomputed")

    monkeypatch.setattr("pipelines.calibrate.run.calibrate_task", boom)
    (out / "calibration.html").unlink()
    again = run_calibrate(cfg, out)
    assert again == saved and (out / "calibration.html").exists()
    # another config is refused (overwrite would measure again)
    with pytest.raises(FolderInUse, match="another config"):
        run_calibrate(CalibrateConfig(samples_per_level=1, samples_per_cell=0), out)
    assert np.isfinite(saved["seconds"])


def test_the_cli_runs_it_and_prints_the_levels(tmp_path, capsys):
    from textinfuse.cli import main

    out = tmp_path / "cli"
    rc = main(["calibrate", "--out", str(out), "--samples-per-level", "1", "--samples-per-cell", "0",
               "--executor", "local", "--set", "levels=[1]", "--set", "langs=[en]",
               "--set", "render.width=128", "--set", "render.height=128", "--set", "examples_per_level=1"])
    printed = capsys.readouterr().out
    assert rc == 0 and "level 1 (easy): en " in printed
    doc = json.loads((out / "calibration.json").read_text())
    assert doc["config"]["samples_per_level"] == 1 and doc["config"]["samples_per_cell"] == 0
    assert main(["calibrate", "--out", str(out), "--samples-per-level", "2", "--executor", "local"]) == 2
