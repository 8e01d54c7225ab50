"""`textinfuse bench-build` on real documents (tests/fixtures/documents, see SOURCES.md): an English PDF
page, the same page again as a page image (near duplicates), and a Chinese page image."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evaluation.bench_build import BenchConfig, build_benchmark, ngrams, overlap, windows

DOCS = Path(__file__).resolve().parents[1] / "fixtures" / "documents"


@pytest.fixture(scope="session")
def bench(tmp_path_factory) -> tuple[Path, list[dict]]:
    pdfium = pytest.importorskip("pypdfium2")
    src = tmp_path_factory.mktemp("docs")
    page = pdfium.PdfDocument(str(DOCS / "debian-reference-en-p7.pdf"))[0]
    page.render(scale=1.7).to_pil().convert("RGB").save(src / "en-scan.png")  # same text, another raster
    out = tmp_path_factory.mktemp("bench")
    # This document sets Chinese with a 1.6 line pitch: at the default 16 px em a 256 px crop holds
    # ~150-180 characters, under the 200 minimum, so its Chinese page is rescaled to a 12 px em.
    cfg = BenchConfig(zh_char_px=12.0)
    rows = build_benchmark([DOCS / "debian-reference-en-p7.pdf", src / "en-scan.png",
                            DOCS / "debian-reference-zh-cn-p6.png"], out, cfg)
    return out, rows


def test_crops_are_256_with_characters_in_range(bench):
    out, rows = bench
    assert {r["lang"] for r in rows} == {"en", "zh"}
    for r in rows:
        lo, hi = (200, 600) if r["lang"] == "zh" else (300, 600)
        assert lo <= r["chars"] == len(r["ocr_text"]) <= hi
        assert Image.open(out / r["file"]).size == (256, 256)
        x0, y0, x1, y1 = r["box"]
        assert (x1 - x0, y1 - y0) == (256, 256) and r["scale"] > 0


def test_jsonl_reads_back(bench):
    out, rows = bench
    back = [json.loads(x) for x in (out / "benchmark.jsonl").read_text(encoding="utf-8").splitlines()]
    assert back == rows and len(rows) >= 3
    assert set(back[0]) == {"file", "source", "page", "box", "scale", "lang", "ocr_text", "chars"}
    stats = json.loads((out / "bench_stats.json").read_text())
    assert stats["kept"] == len(rows) and stats["failed_pages"] == []


def test_near_duplicates_are_dropped(bench):
    out, rows = bench
    assert not [r for r in rows if r["source"].endswith("en-scan.png")]  # the re-rasterised page adds nothing
    assert json.loads((out / "bench_stats.json").read_text())["rejected"]["near duplicate"] >= 1
    for i, a in enumerate(rows):
        for b in rows[:i]:
            n = 3 if a["lang"] == "zh" else 5
            limit = 0.2 if (a["source"], a["page"]) == (b["source"], b["page"]) else 0.3
            assert overlap(ngrams(a["ocr_text"], n), ngrams(b["ocr_text"], n)) <= limit


def test_overlap_and_windows():
    a, b = ngrams("abcdefghij", 3), ngrams("abcdefgxyz", 3)
    assert overlap(a, a) == 1.0 and 0.4 < overlap(a, b) < 0.7
    assert windows((0, 0, 100, 100), 256, 256, 1000, 1000) == [(0, 0)]  # centred, clamped to the page
    assert windows((0, 0, 700, 300), 256, 256, 1000, 1000) == [(0, 0), (256, 0), (512, 0)]
    assert np.all(np.array(windows((900, 900, 1000, 1000), 256, 256, 1000, 1000)) <= 744)


def test_cli_size_and_count_flags_reach_the_config(tmp_path):
    from textinfuse.cli import main

    out = tmp_path / "b"
    rc = main(["bench-build", "--input", str(DOCS / "debian-reference-zh-cn-p6.png"), "--out", str(out),
               "--lang", "zh", "--zh-char-px", "14", "--zh-chars", "150-600", "--set", "set_overlap=0.5"])
    stats = json.loads((out / "bench_stats.json").read_text())
    assert rc == 0 and stats["config"]["zh_char_px"] == 14.0 and list(stats["config"]["zh_chars"]) == [150, 600]
    assert stats["config"]["set_overlap"] == 0.5 and stats["kept"] >= 1
    rows = [json.loads(x) for x in (out / "benchmark.jsonl").read_text().splitlines()]
    assert all(150 <= r["chars"] <= 600 and r["lang"] == "zh" for r in rows)
    with pytest.raises(SystemExit):
        main(["bench-build", "--input", "x", "--out", str(tmp_path / "c"), "--zh-chars", "lots"])


def test_broken_pages_are_counted_and_the_build_goes_on(tmp_path, caplog):
    """A corrupt page image and a corrupt PDF are failed pages with their reasons; the build finishes."""
    src = tmp_path / "in"
    src.mkdir()
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (src / "broken.pdf").write_bytes(b"%PDF-1.4 truncated")
    Image.fromarray(np.full((64, 64, 3), 255, np.uint8)).save(src / "blank.png")  # a page without text
    pytest.importorskip("pypdfium2")
    with caplog.at_level("INFO"):
        rows = build_benchmark([src], tmp_path / "out", BenchConfig())
    stats = json.loads((tmp_path / "out" / "bench_stats.json").read_text())
    assert rows == [] and stats["pages"] == 3
    assert sorted(f.split(" page ")[0].rsplit("/", 1)[-1] for f in stats["failed_pages"]) == ["broken.pdf", "broken.png"]
    assert "failures 2" in caplog.text
