"""Labels are exact: text, boxes, fonts, sizes; samples are deterministic and re-renderable."""

import json

import numpy as np
import pytest

from render_engine.config import FontConfig, RenderConfig, TextConfig
from render_engine.engine import Renderer
from render_engine.labels import characters
from render_engine.levels import LEVELS, scaled
from render_engine.paths import bundled_fonts
from tests.conftest import subset_font


def samples(r: Renderer, n: int, seed: int = 0):
    pool = r.background_pool(np.random.default_rng(seed))
    for i in range(n):
        yield r.generate(np.random.default_rng([seed, i]), {"run": seed, "shard": 0, "index": i}, pool)


def check_label(r: Renderer, s, char_px=(5, 20)):
    lab = s.label
    H, W = s.image.shape[:2]
    assert lab["size"] == [W, H]
    assert lab["text"] == "\n".join(ln["text"] for ln in lab["lines"])
    visible = [(c, i) for i, ln in enumerate(lab["lines"]) for c in ln["text"] if not c.isspace()]
    chars = characters(lab, s.char_boxes)
    assert [(c["char"], c["line"]) for c in chars] == visible
    lo, hi = scaled(lab["difficulty"]["level"], r.cfg.text.level_scale)
    assert lab["difficulty"]["char_px"] == [lo, hi]
    for ln in lab["lines"]:
        face = r.assets.fonts.by_id[ln["font"]]
        assert face.covers(ln["text"]), (ln["font"], ln["text"])
        assert lo <= ln["char_px"] <= hi
        assert char_px[0] <= ln["char_px"] <= char_px[1]
        assert ln["ink_height_px"] > 0 and ln["contrast"] >= 1.0
    for item in lab["lines"] + chars:
        q = np.asarray(item["box"])
        assert q.shape == (4, 2)
        assert q[:, 0].min() >= 0 and q[:, 1].min() >= 0 and q[:, 0].max() <= W and q[:, 1].max() <= H, item
        x0, y0 = np.floor(q.min(0)).astype(int)
        x1, y1 = np.ceil(q.max(0)).astype(int)
        assert s.alpha[y0:y1, x0:x1].max() > 0.05, ("box without ink", item)
    json.dumps(lab)  # plain JSON


def test_labels_are_exact_across_levels_and_languages(renderer):
    seen = set()
    for s in samples(renderer, 40):
        check_label(renderer, s)
        seen.add((s.label["lang"], s.label["mode"]))
    assert {m for _, m in seen} == {"page", "scene"} and {lang for lang, _ in seen} == {"en", "zh"}


def test_mixed_text_embeds_latin_in_chinese():
    r = Renderer(RenderConfig(text=TextConfig(langs=("mixed",))))
    mixes = [s.label["script_mix"] for s in samples(r, 12)]
    for s in samples(r, 3):
        check_label(r, s)
    assert all(m["han"] > 0 for m in mixes) and np.mean([m["han"] for m in mixes]) > 0.4
    assert sum(m["latin"] + m["digit"] > 0 for m in mixes) >= 10


def test_same_seed_same_sample_and_rerender_from_label(renderer):
    a = list(samples(renderer, 6, seed=3))
    b = list(samples(renderer, 6, seed=3))
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.image, y.image)
        assert json.dumps(x.label, sort_keys=True) == json.dumps(y.label, sort_keys=True)
        again = renderer.render(json.loads(json.dumps(x.label["params"])))
        assert np.array_equal(again.image, x.image)
        assert np.array_equal(again.char_boxes, x.char_boxes)
        assert json.dumps(again.label, sort_keys=True) == json.dumps(x.label, sort_keys=True)
    c = list(samples(renderer, 6, seed=4))
    assert not all(np.array_equal(x.image, z.image) for x, z in zip(a, c, strict=True))


def test_char_px_range_is_honoured():
    r = Renderer(RenderConfig(levels=(3, 4), text=TextConfig(char_px=(8, 9))))
    for s in samples(r, 8):
        check_label(r, s, (8, 9))
        assert set(s.label["char_px"]) <= {8, 9}


def test_level_scale_stretches_every_level_and_the_label_says_so():
    cfg = RenderConfig(levels=(1, 3), text=TextConfig(char_px=(8, 32), level_scale=1.6))
    assert cfg.px_range(1, "en") == (22, 32) and cfg.px_range(3, "zh") == (13, 21)
    assert RenderConfig().px_range(1, "en") == LEVELS[1].char_px  # the default leaves the levels as they are
    r = Renderer(cfg)
    for s in samples(r, 6):
        lo, hi = s.label["difficulty"]["char_px"]
        assert (lo, hi) == cfg.px_range(s.label["difficulty"]["level"], "en")
        assert all(lo <= px <= hi for px in s.label["char_px"])
    with pytest.raises(ValueError, match="level_scale 0.5"):
        RenderConfig(levels=(1,), text=TextConfig(char_px=(14, 20), level_scale=0.5))  # 7-10: no overlap
    with pytest.raises(ValueError, match="level_scale"):
        TextConfig(level_scale=10)


def test_paper_sheets_lie_under_page_text_and_re_render_exactly():
    from render_engine.config import LayoutConfig

    cfg = RenderConfig(levels=(1, 2), layout=LayoutConfig(page_prob=1.0, paper_prob=1.0))
    r = Renderer(cfg)
    for s in samples(r, 8):
        check_label(r, s)
        paper = s.label["params"]["background"]["paper"]
        x, y, w, h = paper["box"]
        assert w >= 0.9 * 256 - 1 and h >= 0.9 * 256 - 1 and x + w <= 256 and y + h <= 256
        for ln in s.label["lines"]:  # every line sits on the sheet, dark on light
            q = np.asarray(ln["box"])
            assert q[:, 0].min() >= x and q[:, 1].min() >= y and q[:, 0].max() <= x + w and q[:, 1].max() <= y + h
        under = s.image[y:y + h, x:x + w][s.alpha[y:y + h, x:x + w] == 0]
        assert under.mean() > 150
        again = r.render(s.label["params"])
        assert np.array_equal(again.image, s.image)
    plain = Renderer(RenderConfig(levels=(1, 2), layout=LayoutConfig(page_prob=1.0, paper_prob=0.0)))
    assert all("paper" not in s.label["params"]["background"] for s in samples(plain, 4))


def test_small_canvases_with_large_text_keep_every_glyph_inside():
    # A 2-em paragraph indent on a 2-3 em column pushed the first character off a 64 px canvas.
    for cfg in (RenderConfig(width=64, height=64, levels=(1,)),
                RenderConfig(width=64, height=48, levels=(1,), text=TextConfig(char_px=(8, 32), level_scale=1.2))):
        r = Renderer(cfg)
        for s in samples(r, 60):
            check_label(r, s, cfg.text.char_px)


def test_swashes_and_tall_glyphs_in_a_thin_margin_are_moved_inside(tmp_path):
    # A script face's first letter reaches left of its pen: at 30 px in a 0-2 px page margin its ink fell
    # off the canvas and the whole shard failed ("glyph ink outside the canvas").
    import shutil

    from render_engine.config import LayoutConfig

    shutil.copy(bundled_fonts() / "latin" / "DancingScript-Regular.otf", tmp_path)
    cfg = RenderConfig(levels=(1,), text=TextConfig(langs=("en",), char_px=(26, 32), level_scale=1.6),
                       fonts=FontConfig(dirs=(str(tmp_path),), include_bundled=False),
                       layout=LayoutConfig(page_prob=1.0, margin=(0, 1)))
    r = Renderer(cfg)
    left = 0
    for s in samples(r, 40):
        check_label(r, s, cfg.text.char_px)
        boxes = np.asarray([c["box"] for c in characters(s.label, s.char_boxes)], float).reshape(-1, 4, 2)
        assert boxes[..., 0].min() >= 0 and boxes[..., 1].min() >= 0
        left += int(boxes[..., 0].min() == 0)
        assert np.array_equal(r.render(s.label["params"]).image, s.image)
    assert left > 0  # some line was moved to the very edge


def test_partial_font_is_never_used_for_characters_it_lacks(tmp_path):
    subset_font(bundled_fonts() / "latin" / "DejaVuSans.ttf", tmp_path / "partial.ttf", "aeiounrst ")
    only = Renderer(RenderConfig(text=TextConfig(langs=("en",)), fonts=FontConfig(dirs=(str(tmp_path),), include_bundled=False)))
    dropped = 0
    for s in samples(only, 6):
        assert set(s.label["text"]) <= set("aeiounrst \n")
        dropped += s.label["dropped_chars"]
        check_label(only, s)
    assert dropped > 0
    # beside the bundled fonts, the partial face is only ever given text it covers (check_label asserts it)
    mixed = Renderer(RenderConfig(text=TextConfig(langs=("en",)), fonts=FontConfig(dirs=(str(tmp_path),))))
    for s in samples(mixed, 12):
        check_label(mixed, s)


def test_every_effect_keeps_boxes_exact():
    from render_engine.config import EffectsConfig
    from render_engine.effects import REGISTRY

    for name in REGISTRY:
        r = Renderer(RenderConfig(levels=(3,), effects=EffectsConfig(enabled=(name,), strength=50.0)))
        used = 0
        for s in samples(r, 4, seed=11):
            check_label(r, s)
            used += any(e["name"] == name for e in s.label["effects"])
        assert used >= 1, name


def test_glyph_cache_resets_mid_sample_change_nothing(renderer):
    """A cache that empties itself at every sample renders the same pixels and
    labels as the warm shared one: no glyph id from an emptied table is ever used."""
    from render_engine.engine import Assets
    from render_engine.glyphs import GlyphCache

    assets = Assets(renderer.cfg)
    assets.glyphs = GlyphCache(max_glyphs=40)
    small = Renderer(renderer.cfg, assets)
    for x, y in zip(samples(renderer, 6, seed=5), samples(small, 6, seed=5), strict=True):
        assert np.array_equal(x.image, y.image) and np.array_equal(x.char_boxes, y.char_boxes)
        assert json.dumps(x.label, sort_keys=True) == json.dumps(y.label, sort_keys=True)
    assert 0 < small.assets.glyphs._count < 1000  # trimmed again and again, never grown to the whole text


def test_every_inked_pixel_takes_its_own_lines_colour_even_where_ink_boxes_overlap():
    from render_engine.engine import _colour_lines

    W = H = 40
    # line 0: ink box x 2..30, y 5..15; line 1's ink box overlaps it (y 12..22); line 2's does not, but
    # starts inside line 1's 2-px padding (y 23..29)
    boxes = [(2, 5, 30, 15), (4, 12, 28, 22), (2, 23, 20, 29)]
    rgbs = [(200, 0, 0), (0, 200, 0), (0, 0, 200)]
    rng = np.random.default_rng(0)
    flat, owner, counts = [], [], []
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        ys, xs = rng.integers(y0, y1, 60), rng.integers(x0, x1, 60)
        flat.append(ys * W + xs)
        owner.append(k)
        counts.append(60)
    flat = np.concatenate(flat)
    colour = np.zeros((H, W, 3), np.uint8)
    _colour_lines(colour, rgbs, *[[b[i] for b in boxes] for i in range(4)], flat, np.array(owner), np.array(counts))
    # later lines' pixels overwrite earlier ones on a shared pixel, as ink drawn later would
    want = {}
    for f, k in zip(flat.tolist(), np.repeat(owner, counts).tolist(), strict=True):
        want[f] = k
    got = colour.reshape(-1, 3)
    for f, k in want.items():
        assert tuple(got[f]) == rgbs[k]
    assert tuple(colour[3, 10]) == rgbs[0]  # padding above line 0
    assert tuple(colour[30, 10]) == rgbs[2]  # padding below line 2
    assert (colour[23, 2:20] == rgbs[2]).all()  # line 2's top row, inside line 1's padding
    assert tuple(colour[25, 35]) == (0, 0, 0)  # away from every line


def test_tall_pages_hold_hundreds_of_lines_with_exact_labels():
    """No cap on lines per sample (an 8-bit colour index once limited it to 254)."""
    from render_engine.config import EffectsConfig, LayoutConfig

    cfg = RenderConfig(width=400, height=1600, levels=(5,), text=TextConfig(langs=("en",), char_px=(5, 5)),
                       layout=LayoutConfig(page_prob=1.0, columns_prob=1.0, line_spacing=(1.15, 1.15)),
                       effects=EffectsConfig(strength=0.0))
    r = Renderer(cfg)
    s = r.generate(np.random.default_rng(0))
    assert len(s.label["lines"]) > 300
    check_label(r, s, char_px=(5, 5))


def test_ink_share_prints_page_blocks_dark_and_leaves_scene_text_at_its_level():
    from render_engine.config import LayoutConfig
    from render_engine.levels import INK_CONTRAST

    lay = LayoutConfig(page_prob=0.5)
    inked = Renderer(RenderConfig(levels=(3, 4, 5), text=TextConfig(ink_share=1.0), layout=lay))
    modes = set()
    for s in samples(inked, 16):
        check_label(inked, s)
        lv = LEVELS[s.label["difficulty"]["level"]]
        mode = s.label["mode"]
        modes.add(mode)
        for b in s.label["params"]["blocks"]:
            lo, hi = INK_CONTRAST if mode == "page" else lv.contrast
            assert b.get("ink", False) == (mode == "page") and lo <= b["contrast_target"] <= hi, (mode, b)
        if mode == "page":  # on a light sheet ink is reached: far above these levels' contrasts (at most 5)
            assert min(ln["contrast"] for ln in s.label["lines"]) > 0.9 * INK_CONTRAST[0]
    assert modes == {"page", "scene"}
    # no ink: every block at its level's contrast, and the labels say so by leaving `ink` out
    plain = Renderer(RenderConfig(levels=(3, 4, 5), text=TextConfig(ink_share=0.0), layout=lay))
    for s in samples(plain, 8):
        lv = LEVELS[s.label["difficulty"]["level"]]
        assert all("ink" not in b and lv.contrast[0] <= b["contrast_target"] <= lv.contrast[1]
                   for b in s.label["params"]["blocks"])


def test_ink_share_must_be_a_probability():
    with pytest.raises(ValueError, match="ink_share"):
        TextConfig(ink_share=1.5)


def test_the_same_seed_on_flat_white_renders_the_same_text_as_on_the_photos(tmp_path):
    """The ablation's controlled pair: backgrounds draw from their own stream, so swapping the photos for
    one flat white image (and the sheet for a white one, effects off) leaves the text, faces, sizes, layout
    and contrast targets of every sample as they were; only the pixels behind the text change."""
    from PIL import Image

    from render_engine.config import BackgroundConfig, EffectsConfig, LayoutConfig

    Image.fromarray(np.full((300, 300, 3), 255, np.uint8)).save(tmp_path / "white.png")
    photos = Renderer(RenderConfig())
    flat = Renderer(RenderConfig(backgrounds=BackgroundConfig(sources=(str(tmp_path),)),
                                 layout=LayoutConfig(paper_white=(255, 255), paper_tint=0, paper_opacity=(1, 1)),
                                 effects=EffectsConfig(strength=0)))
    keep = ("text", "font", "char_px", "line_spacing", "columns", "contrast_target")
    differs = 0
    for a, b in zip(samples(photos, 12), samples(flat, 12), strict=True):
        la, lb = a.label, b.label
        assert (la["difficulty"], la["mode"], la["lang"]) == (lb["difficulty"], lb["mode"], lb["lang"])
        assert [{k: ln.get(k) for k in keep} for ln in la["lines"]] == [{k: ln.get(k) for k in keep} for ln in lb["lines"]]
        pa, pb = la["params"], lb["params"]
        assert [{k: bl[k] for k in ("region", "font", "char_px", "lines", "contrast_target")} for bl in pa["blocks"]] == \
               [{k: bl[k] for k in ("region", "font", "char_px", "lines", "contrast_target")} for bl in pb["blocks"]]
        assert ("paper" in pa["background"]) == ("paper" in pb["background"])
        if "paper" in pa["background"]:
            assert pa["background"]["paper"]["box"] == pb["background"]["paper"]["box"]
        white = b.image[b.alpha == 0]
        assert white.size and white.min() == 255  # flat white behind the text, nothing else
        differs += not np.array_equal(a.image, b.image)
    assert differs == 12


def test_text_printed_on_a_sheet_stays_on_it_when_it_turns():
    # rotate and perspective move the text, not the sheet: they were kept inside the canvas only, so
    # a line near the sheet's edge could end up partly over the photo
    from render_engine.config import EffectsConfig, LayoutConfig

    r = Renderer(RenderConfig(levels=(1, 2), layout=LayoutConfig(page_prob=1.0, paper_size=(0.8, 0.9),
                                                                 margin=(1, 3)),
                              effects=EffectsConfig(enabled=("rotate", "perspective"), strength=3.0)))
    warped = 0
    for s in samples(r, 16):
        x, y, w, h = s.label["params"]["background"]["paper"]["box"]
        warped += bool(s.label["effects"])
        for ln in s.label["lines"]:
            q = np.asarray(ln["box"])
            assert q[:, 0].min() >= x and q[:, 1].min() >= y and q[:, 0].max() <= x + w and q[:, 1].max() <= y + h
    assert warped >= 8
