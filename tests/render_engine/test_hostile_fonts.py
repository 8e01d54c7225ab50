"""Hostile and broken fonts: untrusted font files, a shared temp folder other users can write, special
files. Each case is built for real (symlinks, FIFOs, WOFF/WOFF2 made with fontTools, compression bombs)."""

import hashlib
import logging
import os
import struct
import tempfile
import time
import tracemalloc
import zlib
from pathlib import Path
from types import SimpleNamespace

import freetype
import pytest

from render_engine import fonts
from render_engine.config import FontConfig, RenderConfig, TextConfig
from render_engine.fonts import FontError, FontLibrary
from render_engine.paths import bundled_fonts
from tests.conftest import subset_font
from textinfuse import files

LATIN = bundled_fonts() / "latin"
SAMPLE = "AZaz09 abcxyz"


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A private cache home, a stand-in for the shared temp folder, and no faces cached by earlier tests."""
    shared = tmp_path / "shared-tmp"
    shared.mkdir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    monkeypatch.setattr(fonts, "_FILE_CACHE", {})
    monkeypatch.setattr(files, "_FALLBACK", {})
    return SimpleNamespace(tmp=tmp_path, shared=shared, cache=tmp_path / "cache" / "textinfuse" / "fonts")


def web_font(dst: Path, src: Path = LATIN / "DejaVuSans.ttf", flavor: str = "woff2") -> Path:
    from fontTools.ttLib import TTFont

    dst.parent.mkdir(parents=True, exist_ok=True)
    tt = TTFont(str(subset_font(src, dst.with_suffix(".part.ttf"), SAMPLE)))
    dst.with_suffix(".part.ttf").unlink()
    tt.flavor = flavor
    tt.save(str(dst))
    return dst


def family(face) -> bytes:
    """The family FreeType reads from the file it will render with."""
    return freetype.Face(face.path, face.index).family_name


def load_one(path: Path):
    fonts._FILE_CACHE.clear()
    lib = FontLibrary.load([path])
    assert len(lib.faces) == 1
    return lib.faces[0]


# ---- 1. the shared temp folder ------------------------------------------------------------------------

def test_symlink_planted_in_shared_temp_does_not_overwrite_its_target(env):
    web = web_font(env.tmp / "in" / "web.woff2")
    victim = env.tmp / "victim.txt"
    victim.write_bytes(b"a file the runner may write")
    legacy = env.shared / "textinfuse-fonts"  # where WOFF2 used to be decompressed, names predictable
    legacy.mkdir()
    digest = hashlib.sha256(web.read_bytes()).hexdigest()[:16]
    (legacy / f"web-{digest}.tmp").symlink_to(victim)
    face = load_one(web)
    assert victim.read_bytes() == b"a file the runner may write"
    assert family(face) == b"DejaVu Sans" and not face.path.startswith(str(env.shared))


def test_font_planted_in_shared_temp_is_not_used(env):
    web = web_font(env.tmp / "in" / "web.woff2")
    legacy = env.shared / "textinfuse-fonts"
    legacy.mkdir()
    digest = hashlib.sha256(web.read_bytes()).hexdigest()[:16]
    (legacy / f"web-{digest}.otf").write_bytes((LATIN / "LiberationSerif-Regular.ttf").read_bytes())
    assert family(load_one(web)) == b"DejaVu Sans"


def test_cache_is_private_and_a_symlink_in_it_is_replaced_not_followed(env):
    web = web_font(env.tmp / "in" / "web.woff2")
    face = load_one(web)
    cached = Path(face.path)
    assert cached.parent == env.cache.resolve() and (env.cache.stat().st_mode & 0o777) == 0o700
    src_sha, out_sha = cached.stem.split("-")
    assert src_sha == hashlib.sha256(web.read_bytes()).hexdigest()
    assert out_sha == hashlib.sha256(cached.read_bytes()).hexdigest()
    victim = env.tmp / "victim.txt"
    victim.write_bytes(b"keep me")
    cached.unlink()
    cached.symlink_to(victim)
    face = load_one(web)
    assert victim.read_bytes() == b"keep me"
    assert not Path(face.path).is_symlink() and family(face) == b"DejaVu Sans"


def test_different_font_under_the_expected_cache_name_is_rebuilt(env):
    web = web_font(env.tmp / "in" / "web.woff2")
    cached = Path(load_one(web).path)
    cached.write_bytes((LATIN / "LiberationSerif-Regular.ttf").read_bytes())  # same name, other font
    face = load_one(web)
    assert family(face) == b"DejaVu Sans"
    assert hashlib.sha256(Path(face.path).read_bytes()).hexdigest() == Path(face.path).stem.split("-")[1]


@pytest.mark.parametrize("make_unsafe", ["other-owner", "mode-0777", "symlink"])
def test_cache_folder_others_can_change_is_not_used(env, caplog, make_unsafe):
    web = web_font(env.tmp / "in" / "web.woff2")
    if make_unsafe == "symlink":
        target = env.tmp / "elsewhere"
        target.mkdir(mode=0o700)
        env.cache.parent.mkdir(parents=True)
        env.cache.symlink_to(target)
    else:
        env.cache.mkdir(parents=True, mode=0o700)
        if make_unsafe == "other-owner":
            os.chown(env.cache, 65534, 65534)  # the tests run as root: stand in for another local user
        else:
            os.chmod(env.cache, 0o777)
    with caplog.at_level(logging.WARNING):
        face = load_one(web)
    assert family(face) == b"DejaVu Sans"
    assert not face.path.startswith(str(env.cache)) and "font cache not used" in caplog.text
    private = Path(face.path).parent
    assert private.stat().st_uid == os.getuid() and (private.stat().st_mode & 0o777) == 0o700
    assert [p for p in env.cache.iterdir()] == []  # nothing written where others could swap it


# ---- compression bombs and oversized web fonts ----------------------------------------------------------

def _woff2_with_stream(web: Path, stream: bytes) -> bytes:
    """`web` with its brotli stream replaced (header sizes updated to match the new file)."""
    from fontTools.misc import sstruct
    from fontTools.ttLib import woff2

    data = web.read_bytes()
    hdr = SimpleNamespace()
    sstruct.unpack(woff2.woff2DirectoryFormat, data[: woff2.woff2DirectorySize], hdr)
    f = __import__("io").BytesIO(data)
    f.seek(woff2.woff2DirectorySize)
    for _ in range(hdr.numTables):
        woff2.WOFF2DirectoryEntry().fromFile(f)
    out = bytearray(data[: f.tell()] + stream)
    out += b"\0" * (-len(out) % 4)
    struct.pack_into(">I", out, 8, len(out))
    struct.pack_into(">I", out, 20, len(stream))
    return bytes(out)


def _woff_with_table(web: Path, packed: bytes) -> bytes:
    """`web` (WOFF) with its first table's compressed data replaced by `packed`, appended at the end."""
    data = bytearray(web.read_bytes())
    off = len(data)
    data += packed + b"\0" * (-len(packed) % 4)
    # entry 0 (tag, offset, compLength, origLength): claims to inflate to one byte more than it takes
    struct.pack_into(">III", data, 44 + 4, off, len(packed), len(packed) + 1)
    struct.pack_into(">I", data, 8, len(data))
    return bytes(data)


@pytest.mark.parametrize("flavor", ["woff2", "woff"])
def test_decompression_bomb_is_refused_without_inflating_it(env, flavor):
    import brotli

    web = web_font(env.tmp / "in" / f"web.{flavor}", flavor=flavor)
    zeros = bytes(64 * 2**20)
    if flavor == "woff2":
        bomb = _woff2_with_stream(web, brotli.compress(zeros, quality=1))
    else:
        bomb = _woff_with_table(web, zlib.compress(zeros, 9))
    assert len(bomb) < 2**20
    web.write_bytes(bomb)
    tracemalloc.start()
    try:
        lib = FontLibrary.load([web, LATIN / "DejaVuSans.ttf"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20  # the 64 MiB behind the bomb were never held
    assert [r for p, r in lib.skipped if p == str(web)] == [
        "compressed data larger than its declared size (a decompression bomb?)"]


def test_huge_sparse_web_font_is_refused_unread(env):
    big = env.tmp / "in" / "huge.woff2"
    big.parent.mkdir()
    with open(big, "wb") as f:
        f.write(b"wOF2")
        f.truncate(200 * 2**20)  # sparse: no disk used
    t0 = time.monotonic()
    lib = FontLibrary.load([big, LATIN / "DejaVuSans.ttf"])
    assert time.monotonic() - t0 < 1
    assert (str(big), "larger than 128 MiB") in lib.skipped
    assert big.stat().st_blocks * 512 < 2**20


# ---- special and damaged files ----------------------------------------------------------------------

def _broken_fonts(d: Path) -> dict[str, str]:
    """Build one of each broken font in `d`; return file name -> the reason it must be skipped with."""
    from fontTools.ttLib import TTCollection, TTFont

    d.mkdir(parents=True, exist_ok=True)
    os.mkfifo(d / "fifo.ttf")
    (d / "zero.ttf").symlink_to("/dev/zero")
    (d / "empty.ttf").write_bytes(b"")
    good = subset_font(LATIN / "DejaVuSans.ttf", d.parent / "good.ttf", SAMPLE).read_bytes()
    (d / "truncated.ttf").write_bytes(good[: len(good) // 3])
    (d / "folder.ttf").mkdir()
    (d / "loop-a.ttf").symlink_to(d / "loop-b.ttf")
    (d / "loop-b.ttf").symlink_to(d / "loop-a.ttf")
    (d / "sub").mkdir()
    (d / "sub" / "up").symlink_to(d)  # a folder loop: rglob must not walk it forever
    coll = TTCollection()
    coll.fonts = [TTFont(str(d.parent / "good.ttf")), TTFont(str(d.parent / "good.ttf"))]
    coll.save(str(d / "bad-index.ttc"))
    ttc = bytearray((d / "bad-index.ttc").read_bytes())
    struct.pack_into(">I", ttc, 16, 10**9)  # face 1 starts a gigabyte past the end of the file
    (d / "bad-index.ttc").write_bytes(bytes(ttc))
    ttc[8:12] = struct.pack(">I", 0xFFFFFFFF)  # 4 billion faces
    (d / "many-faces.ttc").write_bytes(bytes(ttc))
    return {"fifo.ttf": "not a regular file", "zero.ttf": "not a regular file", "empty.ttf": "empty file",
            "truncated.ttf": "", "folder.ttf": "not a regular file", "loop-a.ttf": "Too many levels",
            "loop-b.ttf": "Too many levels", "bad-index.ttc": "", "many-faces.ttc": ""}


def test_special_and_damaged_files_are_skipped_quickly(env, caplog):
    d = env.tmp / "bad"
    want = _broken_fonts(d)
    t0 = time.monotonic()
    with caplog.at_level(logging.WARNING):
        with pytest.raises(FontError, match=f"no usable font faces in {d}"):
            FontLibrary.load([d])
    assert time.monotonic() - t0 < 5
    with caplog.at_level(logging.WARNING):
        lib = FontLibrary.load([d, env.tmp / "good.ttf"])
    why = {Path(p).name: r for p, r in lib.skipped}
    assert set(why) == {*want, "bad"}
    for name, reason in want.items():
        assert reason in why[name] and why[name], (name, why[name])
    assert why["bad"] == f"none of its {len(want)} font files could be loaded"
    assert all("\n" not in r.getMessage() for r in caplog.records)


def test_a_fifo_given_as_font_folder_is_skipped(env):
    os.mkfifo(env.tmp / "fonts.fifo")
    lib = FontLibrary.load([env.tmp / "fonts.fifo", LATIN / "DejaVuSans.ttf"])
    assert (str(env.tmp / "fonts.fifo"), "not a font file or folder") in lib.skipped


def test_glyphs_without_ink_or_unloadable_are_not_coverage(env):
    """A face whose cmap maps 'b' to an empty outline and 'c' to a damaged one would leave 'b' in the
    label but not in the image, and fail the whole shard on 'c'; both count as not covered."""
    from fontTools.ttLib import TTFont
    from fontTools.ttLib.tables._g_l_y_f import Glyph

    base = subset_font(LATIN / "DejaVuSans.ttf", env.tmp / "base.ttf", SAMPLE)
    tt = TTFont(str(base))
    cmap = tt.getBestCmap()
    tt["glyf"][cmap[ord("b")]] = Glyph()  # no contours
    tt.save(str(env.tmp / "blank.ttf"))
    tt = TTFont(str(env.tmp / "blank.ttf"))
    gid = tt.getGlyphID(cmap[ord("c")])
    start, end = tt["loca"][gid], tt["loca"][gid + 1]
    data = bytearray((env.tmp / "blank.ttf").read_bytes())
    off = tt.reader.tables["glyf"].offset
    data[off + start : off + end] = b"\x7f\xff" + b"\xff" * (end - start - 2)  # 32767 contours, garbage
    (env.tmp / "bad.ttf").write_bytes(bytes(data))
    face = load_one(env.tmp / "bad.ttf")
    assert {"a", "x", " "} <= face.chars and not {"b", "c"} & face.chars
    lib = FontLibrary([face])
    kept_face, kept, dropped = lib.pick("abc xyz", lib.faces, __import__("numpy").random.default_rng(0))
    assert kept == "a xyz" and dropped == "bc"


def test_a_face_that_draws_nothing_is_skipped(env):
    from fontTools.ttLib import TTFont
    from fontTools.ttLib.tables._g_l_y_f import Glyph

    tt = TTFont(str(subset_font(LATIN / "DejaVuSans.ttf", env.tmp / "base.ttf", SAMPLE)))
    for name in tt.getGlyphOrder():
        tt["glyf"][name] = Glyph()
    tt.save(str(env.tmp / "blank.ttf"))
    lib = FontLibrary.load([env.tmp / "blank.ttf", LATIN / "DejaVuSans.ttf"])
    assert any(p.endswith("blank.ttf") and "draws none" in r for p, r in lib.skipped)


@pytest.mark.parametrize("manifest", [b"{not json", b"[]", b'{"fonts": 5}', b'{"fonts": ["x", {"file": 3}]}',
                                      b'{"fonts": [{"file": "base.ttf", "family": 7, "style": ["x"]}]}',
                                      b"\xff\xfe", b"[" * 100000])
def test_a_bad_manifest_is_ignored_with_a_warning(env, caplog, manifest):
    d = env.tmp / "f"
    d.mkdir()
    subset_font(LATIN / "DejaVuSans.ttf", d / "base.ttf", SAMPLE)
    (d / "manifest.json").write_bytes(manifest)
    with caplog.at_level(logging.WARNING):
        face = FontLibrary.load([d]).faces[0]
    assert face.family == "DejaVu Sans" and face.style == "Book"  # the font's own names
    assert f"{d / 'manifest.json'}: " in caplog.text and "ignored" in caplog.text


def test_a_fifo_manifest_does_not_hang(env, caplog):
    d = env.tmp / "f"
    d.mkdir()
    subset_font(LATIN / "DejaVuSans.ttf", d / "base.ttf", SAMPLE)
    os.mkfifo(d / "manifest.json")
    with caplog.at_level(logging.WARNING):
        assert FontLibrary.load([d]).faces[0].family == "DejaVu Sans"
    assert "unreadable font manifest ignored (not a regular file)" in caplog.text


# ---- 3. folders that give no fonts ------------------------------------------------------------------

def test_a_font_folder_without_fonts_is_reported(env, caplog):
    empty = env.tmp / "empty"
    empty.mkdir()
    (empty / "README.txt").write_text("fonts go here")
    with caplog.at_level(logging.WARNING):
        lib = FontLibrary.load([empty, LATIN / "DejaVuSans.ttf"])
    assert f"{empty}: font folder gives no faces: no font files in it" in caplog.text
    assert [r for p, r in lib.skipped if p == str(empty)][0].startswith("no font files in it")
    with pytest.raises(FontError, match=f"no usable font faces in {empty}"):
        FontLibrary.load([empty])


# ---- 4. a language no face writes -------------------------------------------------------------------

def test_require_names_the_language_the_script_and_the_fonts(env):
    d = env.tmp / "latin-only"
    d.mkdir()
    (d / "DejaVuSans.ttf").write_bytes((LATIN / "DejaVuSans.ttf").read_bytes())
    lib = FontLibrary.load([d])
    lib.require(["en"])
    with pytest.raises(FontError) as e:
        lib.require(["en", "zh"])
    assert str(e.value) == (f"no font covers Chinese (langs includes zh): the fonts given ({d}) "
                            "have no face that writes 'han'")
    with pytest.raises(FontError, match="mixed Chinese and English .* writes 'han' and 'latin'"):
        lib.require(["mixed"])
    FontLibrary.load([bundled_fonts()]).require(["en", "zh", "mixed"])


def test_renderer_refuses_a_zh_job_without_a_chinese_font(env):
    from render_engine.engine import Renderer

    d = env.tmp / "latin-only"
    d.mkdir()
    (d / "DejaVuSans.ttf").write_bytes((LATIN / "DejaVuSans.ttf").read_bytes())
    cfg = RenderConfig(text=TextConfig(langs=("zh",)), fonts=FontConfig(dirs=(str(d),), include_bundled=False))
    with pytest.raises(FontError, match="no font covers Chinese"):
        Renderer(cfg)


def test_require_accepts_partial_coverage(env):
    """A face with a few letters of a script is not refused: what it lacks is dropped and counted."""
    partial = subset_font(bundled_fonts() / "zh" / "NotoSansSC-Regular.otf", env.tmp / "few.otf", "中文 ab")
    lib = FontLibrary.load([partial])
    assert lib.faces_for("han") == []  # too few characters to count as a Chinese face when picking
    lib.require(["en", "zh", "mixed"])
