"""Face legibility profiles and the renderer's guard: a face is drawn at a level only at sizes where its
measured readability reaches the level's floor; nothing changes where the guard does not bind."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from render_engine.config import FontConfig, RenderConfig, TextConfig
from render_engine.engine import Renderer
from render_engine.fonts import FontLibrary
from render_engine.legibility import (
    Legibility,
    LegibilityError,
    bundled_table,
    load_table,
    min_size,
    monotone,
)
from render_engine.levels import LEVELS, bands, scaled
from render_engine.paths import bundled_fonts


def test_curves_are_made_monotone_before_a_minimum_size_is_read():
    # a dip at the largest size is noise: pooled with its neighbour, not a reason to bar the face there
    curve = [(6, 0.88), (8, 0.976), (12, 1.0), (16, 0.983)]
    assert monotone(curve) == [(6, 0.88), (8, 0.976), (12, 0.9915), (16, 0.9915)]
    assert min_size(curve, 0.99) == 12
    assert min_size(curve, 0.9) == 8
    assert min_size(curve, 0.5) == 6
    assert min_size(curve, 0.995) == math.inf
    assert monotone([(8, 0.5), (6, 0.9)]) == [(6, 0.7), (8, 0.7)]  # sorted by size first


def test_a_table_reads_its_own_json_and_refuses_bad_files(tmp_path):
    t = Legibility.from_json({"version": 1, "profiles": [
        {"family": "Some Face", "style": "Bold", "lang": "en", "curve": [[12, 1.0], [6, 0.5]]}]})
    assert t.min_px("some face", "BOLD", "en", 0.9) == 12  # names match without case
    assert t.min_px("Some Face", "Bold", "zh", 0.9) == 0  # no profile: no limit
    assert Legibility.from_json(t.to_json()).to_json() == t.to_json()
    bad = [{"version": 2, "profiles": []}, {"version": 1}, [],
           {"version": 1, "profiles": [{"family": "F", "style": "R", "lang": "en", "curve": [[6, 1.5]]}]},
           {"version": 1, "profiles": [{"family": "F", "style": "R", "lang": "en", "curve": []}]},
           {"version": 1, "profiles": [{"family": "F", "lang": "en", "curve": [[6, 1.0]]}]}]
    for i, doc in enumerate(bad):
        p = tmp_path / f"bad{i}.json"
        p.write_text(json.dumps(doc))
        with pytest.raises(LegibilityError, match=f"bad{i}.json"):
            Legibility.load(p)
    p = tmp_path / "junk.json"
    p.write_bytes(b"\xff\x00 not json")
    with pytest.raises(LegibilityError, match="junk.json: cannot read"):
        load_table(str(p))
    assert load_table("none") is None and load_table("") is None


def test_the_bundled_table_covers_every_bundled_face_and_every_level_can_be_drawn():
    table = Legibility.load(bundled_table())
    faces = FontLibrary.load([bundled_fonts()]).faces
    assert table.missing(faces, ["en", "zh"]) == []
    for level in LEVELS:
        floor = LEVELS[level].readability[0]
        for lang, script in (("en", "latin"), ("zh", "han")):
            lo, hi = scaled(level)
            for px in range(lo, hi + 1):  # at every size of every level some face reads well enough
                assert any(table.admits(f, lang, px, floor) for f in faces if script in f.scripts), (level, lang, px)


def test_bands_are_the_levels_floors_and_fall_strictly():
    assert bands() == tuple(LEVELS[n].readability[0] for n in (1, 2, 3, 4))
    assert list(bands()) == sorted(bands(), reverse=True) and len(set(bands())) == 4
    for n in (1, 2, 3, 4):
        assert LEVELS[n + 1].readability[1] == LEVELS[n].readability[0]  # bands tile [0, 1]


def _faces_drawn(cfg: RenderConfig, n: int = 60) -> tuple[list[tuple[str, int]], list[bytes]]:
    r = Renderer(cfg)
    pool = r.background_pool(np.random.default_rng(0))
    fam = {f.id: f.family for f in r.assets.fonts.faces}
    drawn, images = [], []
    for i in range(n):
        s = r.generate(np.random.default_rng([5, i]), None, pool)
        drawn += [(fam[b["font"]], b["char_px"]) for b in s.label["params"]["blocks"]]
        images.append(s.image.tobytes())
    return drawn, images


def test_the_guard_keeps_a_face_away_from_sizes_it_does_not_read_at(tmp_path):
    base = RenderConfig(width=128, height=96, levels=(2,), text=TextConfig(langs=("en",)),
                        fonts=FontConfig(legibility="none"))
    free, free_images = _faces_drawn(base)
    assert any(f == "Dancing Script" for f, _ in free)  # drawn at level 2 when nothing stops it
    # a table that bars Dancing Script below 14 px at level 2's floor, and says nothing about the rest
    p = tmp_path / "legibility.json"
    p.write_text(json.dumps({"version": 1, "profiles": [
        {"family": "Dancing Script", "style": "Regular", "lang": "en", "curve": [[10, 0.8], [14, 1.0]]}]}))
    guarded, _ = _faces_drawn(RenderConfig(**{**base.__dict__, "fonts": FontConfig(legibility=str(p))}))
    sizes = [px for f, px in guarded if f == "Dancing Script"]
    assert sizes and min(sizes) >= 14  # still drawn where it reads (14-16 px), never below
    assert len(guarded) >= len(free) * 0.8  # blocks are re-faced, not dropped
    # a table under which every face reads everywhere changes nothing: same random stream, same pixels
    p.write_text(json.dumps({"version": 1, "profiles": [
        {"family": "Dancing Script", "style": "Regular", "lang": "en", "curve": [[5, 1.0]]}]}))
    same, same_images = _faces_drawn(RenderConfig(**{**base.__dict__, "fonts": FontConfig(legibility=str(p))}))
    assert same == free and same_images == free_images


def test_a_bad_legibility_setting_is_refused_naming_the_file(tmp_path):
    with pytest.raises(LegibilityError, match="nope.json"):
        Renderer(RenderConfig(width=64, height=64, fonts=FontConfig(legibility=str(tmp_path / "nope.json"))))


def test_render_refuses_an_unreadable_table_at_once_in_one_line(tmp_path, capsys):
    from textinfuse.cli import main

    bad = tmp_path / "leg.json"
    bad.write_text('{"version": 1, "profiles": [{"family": "X"}]}')
    rc = main(["render", "--out", str(tmp_path / "out"), "--num-samples", "2", "--legibility", str(bad),
               "--executor", "local"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1] == f"error: {bad}: profile 0: no 'curve' key"
    assert not list((tmp_path / "out").glob("*.tar"))


def test_mixed_text_is_guarded_by_the_chinese_profile():
    t = Legibility.from_json({"version": 1, "profiles": [
        {"family": "K", "style": "R", "lang": "zh", "curve": [[6, 0.5], [10, 1.0]]}]})
    assert t.min_px("K", "R", "mixed", 0.9) == t.min_px("K", "R", "zh", 0.9) == 10
