import logging
from pathlib import Path

import numpy as np
import pytest

from render_engine.fonts import FontLibrary
from render_engine.paths import bundled_fonts
from tests.conftest import subset_font

GB2312_LEVEL1 = [bytes([r, c]).decode("gb2312") for r in range(0xB0, 0xD8) for c in range(0xA1, 0xFF)
                 if not (r == 0xD7 and c > 0xF9)]


@pytest.fixture(scope="module")
def lib():
    return FontLibrary.load([bundled_fonts()])


def test_bundled_fonts_meet_the_brief(lib):
    latin = lib.faces_for("latin", without="han")
    han = lib.faces_for("han")
    assert len({f.family for f in latin}) >= 6
    assert len({f.family for f in han}) >= 4
    for f in han:  # every Chinese face covers GB2312 level 1 fully
        assert set(GB2312_LEVEL1) <= f.chars, f.id
    total = sum(p.stat().st_size for p in bundled_fonts().rglob("*") if p.is_file())
    assert total <= 25 * 2**20


def test_pick_only_returns_faces_covering_the_text(lib, tmp_path):
    subset_font(bundled_fonts() / "latin" / "DejaVuSans.ttf", tmp_path / "partial.ttf", "abcdef ")
    both = FontLibrary.load([tmp_path, bundled_fonts()])
    rng = np.random.default_rng(0)
    part = [f for f in both.faces if f.source_file.endswith("partial.ttf")]
    assert part and set("abcdef") <= part[0].chars <= set("abcdef ")
    for _ in range(50):
        face, kept, dropped = both.pick("bad cafe xyz", both.faces, rng)
        assert face.covers(kept) and not dropped
        assert kept == ("BAD CAFE XYZ" if face.caps_only else "bad cafe xyz")  # all-caps faces upper-case
        assert "partial" not in face.id


def test_uncovered_characters_are_dropped_and_reported(tmp_path):
    subset_font(bundled_fonts() / "latin" / "DejaVuSans.ttf", tmp_path / "partial.ttf", "abcdef ")
    only = FontLibrary.load([tmp_path])
    face, kept, dropped = only.pick("bad face, xyz 永", only.faces, np.random.default_rng(0))
    assert kept == "bad face  " and sorted(dropped) == sorted(",xyz永")


def test_broken_fonts_are_skipped_with_one_line_warning(tmp_path, caplog):
    (tmp_path / "garbage.ttf").write_bytes(b"\x00\x01\x00\x00not a font at all" * 10)
    (tmp_path / "empty.otf").write_bytes(b"")
    subset_font(bundled_fonts() / "latin" / "DejaVuSans.ttf", tmp_path / "ok.ttf", "abc")
    with caplog.at_level(logging.WARNING):
        lib = FontLibrary.load([tmp_path])
    assert [f.source_file for f in lib.faces] == [str(tmp_path / "ok.ttf")]
    msgs = [r.getMessage() for r in caplog.records]
    assert any("garbage.ttf" in m and "broken font" in m for m in msgs)
    assert any("empty.otf" in m for m in msgs)
    assert all("\n" not in m for m in msgs)
    assert {Path(p).name for p, _ in lib.skipped} == {"garbage.ttf", "empty.otf"}


def test_collections_and_woff2_load(tmp_path, monkeypatch):
    from fontTools.ttLib import TTCollection, TTFont

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # a fresh WOFF2 each run: not in ~/.cache

    a = subset_font(bundled_fonts() / "latin" / "DejaVuSans.ttf", tmp_path / "a.ttf", "abc")
    b = subset_font(bundled_fonts() / "latin" / "DejaVuSansMono.ttf", tmp_path / "b.ttf", "xyz")
    coll = TTCollection()
    coll.fonts = [TTFont(str(a)), TTFont(str(b))]
    coll.save(str(tmp_path / "pair.ttc"))
    w = TTFont(str(a))
    w.flavor = "woff2"
    w.save(str(tmp_path / "web.woff2"))
    a.unlink()
    b.unlink()
    lib = FontLibrary.load([tmp_path])
    ids = sorted(f.id for f in lib.faces)
    assert ids == [f"{tmp_path.name}/pair.ttc#0", f"{tmp_path.name}/pair.ttc#1", f"{tmp_path.name}/web.woff2#0"]
    by = {f.id: f for f in lib.faces}
    assert set("xyz") <= by[f"{tmp_path.name}/pair.ttc#1"].chars
    from render_engine.glyphs import GlyphCache

    g = GlyphCache()
    for f in lib.faces:
        ch = sorted(f.chars)[0]
        assert g.glyph(f.path, f.index, 16, ch).bitmap.any()


def test_all_caps_faces_are_found_and_their_text_is_upper_cased(lib):
    """Bebas Neue draws lowercase letters as capitals: it is the one bundled caps-only face, and text
    set in it is upper-cased, so the label says what the image shows (no other face changes text)."""
    caps = sorted(f.family for f in lib.faces if f.caps_only)
    assert caps == ["Bebas Neue"]
    bebas = next(f for f in lib.faces if f.caps_only)
    rng = np.random.default_rng(0)
    face, text, dropped = lib.pick("Straße im März, 3 km", [bebas], rng)
    assert face is bebas and dropped == "" and text == "STRAßE IM MÄRZ, 3 KM"  # ß's capital is two letters
    other = next(f for f in lib.faces if "latin" in f.scripts and not f.caps_only)
    assert lib.pick("Mixed Case", [other], rng)[1] == "Mixed Case"


def test_a_caps_only_face_renders_labels_without_lowercase(tmp_path):
    """A whole render set in Bebas Neue: every labelled line is upper case."""
    from render_engine.config import FontConfig, RenderConfig, TextConfig
    from render_engine.engine import Renderer

    bebas = next(p for p in (bundled_fonts() / "latin").iterdir() if p.name.startswith("BebasNeue"))
    cfg = RenderConfig(text=TextConfig(langs=("en",)), fonts=FontConfig(dirs=(str(bebas),), include_bundled=False,
                                                                        latin_in_cjk_font=0.0))
    r = Renderer(cfg)
    texts = [ln["text"] for i in range(6) for ln in r.generate(np.random.default_rng(i)).label["lines"]]
    assert texts and any(c.isalpha() for t in texts for c in t)
    assert all(t == t.upper() for t in texts)
