"""Label version 2: columnar characters read back exactly; version 1 labels still read; hostile members refused."""

import io
import json
import re
from pathlib import Path

import numpy as np
import orjson
import pytest

from render_engine import labels
from render_engine.config import EffectsConfig, RenderConfig
from render_engine.engine import Renderer

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def spied(r: Renderer) -> list:
    """Capture what the engine holds when it builds each label: its characters, their line indices and
    their final quads (after every warp), before anything is written."""
    seen = []
    inner = Renderer._label

    def spy(self, params, lines, chars, layers, lum):
        seen.append((chars[0], chars[1].copy(), layers.quads[len(lines):].copy()))
        return inner(self, params, lines, chars, layers, lum)

    r._label = spy.__get__(r)
    return seen


def written(s) -> tuple[dict, bytes]:
    """The sample's label members as the render job writes them, read back."""
    from pipelines.render_job import label_members

    m = label_members(s)
    return json.loads(m["json"]), m[labels.CHARS_MEMBER]


def test_v2_reader_gives_the_engines_own_characters_lines_and_boxes():
    r = Renderer(RenderConfig(levels=(3, 4)))
    geometric = Renderer(RenderConfig(levels=(3,), effects=EffectsConfig(enabled=("rotate", "perspective"), strength=50.0)))
    warps = 0
    for renderer, n in ((r, 12), (geometric, 6)):
        seen = spied(renderer)
        for i in range(n):
            s = renderer.generate(np.random.default_rng([21, i]))
            chars, line, quads = seen[-1]
            lab, member = written(s)
            assert lab["version"] == labels.LABEL_VERSION == 2 and "characters" not in lab
            c = labels.columns(lab, member)
            assert c.chars == chars and np.array_equal(c.line, line) and len(c) == lab["char_boxes"]["count"]
            assert np.array_equal(c.quads, quads)  # bit for bit, warped or not
            assert np.array_equal(c.boxes, s.char_boxes)
            # the per-character view is what version 1 wrote: ints when whole pixels, else 3 decimals
            exact = quads.astype(np.int32)
            v1_boxes = exact.tolist() if np.array_equal(exact, quads) else np.round(quads, 3).tolist()
            v1 = [{"char": ch, "line": li, "box": q} for ch, li, q in zip(chars, line.tolist(), v1_boxes, strict=True)]
            assert labels.characters(lab, member) == v1
            # the decoded array (what webdataset's and Ray's default decoders give) reads the same
            assert labels.characters(lab, np.load(io.BytesIO(member), allow_pickle=False)) == v1
            warps += bool(lab["char_boxes"]["warp"])
            assert bool(lab["char_boxes"]["warp"]) == any(e["name"] in ("rotate", "perspective") for e in lab["effects"])
    assert warps >= 4


def test_v1_labels_of_the_previous_engine_still_read_and_match_v2_of_the_same_sample():
    """tests/fixtures/labels_v1.json: labels written by the version 1 engine (commit c5007d7), one plain,
    one rotated, one in perspective (with the seeds that drew them). Re-rendered from their params, the
    version 2 label holds the same characters, lines, boxes and everything else."""
    fixtures = json.loads((FIXTURES / "labels_v1.json").read_text())
    r = Renderer(RenderConfig())
    for name, f in fixtures.items():
        v1 = f["label"]
        assert v1["version"] == 1
        assert labels.characters(v1) == v1["characters"]
        c1 = labels.columns(v1)
        assert c1.chars == "".join(c["char"] for c in v1["characters"]) and c1.boxes is None
        assert c1.line.tolist() == [c["line"] for c in v1["characters"]]
        s = r.render(v1["params"])
        lab, member = written(s)
        assert labels.characters(lab, member) == v1["characters"], name
        c2 = labels.columns(lab, member)
        assert np.abs(c2.quads - c1.quads).max() <= 0.0005 + 1e-9
        for k in v1.keys() - {"version", "characters", "lines"}:  # everything else is as it was
            assert lab[k] == v1[k], k
        for a, b in zip(v1["lines"], lab["lines"], strict=True):
            assert {**b, "box": a["box"]} == a and np.array_equal(a["box"], b["box"])


def test_line_chars_are_written_only_where_they_are_not_the_text_without_whitespace():
    r = Renderer(RenderConfig())
    s = r.generate(np.random.default_rng(3))
    lab, member = written(s)
    assert not any("chars" in ln for ln in lab["lines"])
    # a line whose characters differ (a glyph drawn without ink) says which it has
    lab["lines"][0]["chars"] = lab["lines"][0]["text"].replace(" ", "")[1:]
    with pytest.raises(labels.LabelError, match=r"chars.npy has \d+ rows, the label's lines have \d+ characters"):
        labels.columns(lab, member)
    boxes = labels.decode_boxes(member)[1:]
    lab["char_boxes"]["count"] -= 1
    c = labels.columns(lab, labels.encode_boxes(boxes))
    assert c.chars == "".join(lab["lines"][0]["chars"] if i == 0 else "".join(ln["text"].split())
                              for i, ln in enumerate(lab["lines"]))


def test_encode_boxes_writes_what_numpy_save_writes():
    for n in (0, 1, 9, 10, 312, 100_000):
        a = np.random.default_rng(n).integers(0, 8192, (n, 4))
        buf = io.BytesIO()
        np.save(buf, a.astype("<i2"))
        if getattr(np.lib.format, "GROWTH_AXIS_MAX_DIGITS", None) == 21:  # numpy's header as of numpy 2
            assert labels.encode_boxes(a) == buf.getvalue()
        assert np.array_equal(labels.decode_boxes(labels.encode_boxes(a)), a)


def test_hostile_or_damaged_members_are_refused_in_one_line():
    lab, member = written(Renderer(RenderConfig()).generate(np.random.default_rng(1)))
    n = lab["char_boxes"]["count"]

    def npy(a, **kw) -> bytes:
        buf = io.BytesIO()
        np.save(buf, a, **kw)
        return buf.getvalue()

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<i2", "fortran_order": False, "shape": (10**15, 4)})
    huge = buf.getvalue() + bytes(8 * n)  # a header asking for 8 PB: refused before anything is allocated
    cases = {
        huge: "data bytes, its header says",
        member[:-3]: "data bytes, its header says",
        b"not a numpy file": "is not a .npy array",
        npy(np.zeros((n, 4), np.float32)): "not integer (N, 4) boxes",
        npy(np.zeros((n, 5), np.int16)): "not integer (N, 4) boxes",
        npy(np.array([{"a": 1}] * n, dtype=object), allow_pickle=True): "not integer (N, 4) boxes",
        npy(np.zeros((n + 1, 4), np.int16)): f"has {n + 1} rows, the label's lines have {n} characters",
        npy(np.tile(np.int16([5, 5, 3, 9]), (n, 1))): "x1 <= x0",
        npy(np.tile(np.int16([5, 5, 9, 9999]), (n, 1))): "outside the 256x256 canvas",
    }
    for data, why in cases.items():
        with pytest.raises(labels.LabelError, match=re.escape(why)) as e:
            labels.columns(lab, data)
        assert "\n" not in str(e.value)
    with pytest.raises(labels.LabelError, match="needs the sample's chars.npy member, which is missing"):
        labels.columns(lab, None)
    with pytest.raises(labels.LabelError, match="version 3 is unknown"):
        labels.columns({**lab, "version": 3}, member)
    with pytest.raises(labels.LabelError, match="warp is malformed"):
        labels.columns({**lab, "char_boxes": {**lab["char_boxes"], "warp": [[1, 2]]}}, member)
    assert len(labels.characters(orjson.loads(orjson.dumps(lab)), member)) == n
