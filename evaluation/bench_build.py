"""Build an OmniDoc-TokenBench-style benchmark of 256x256 text crops from your own PDFs or page images.

Per page: render (PDFs with pypdfium2 at `dpi`), detect text lines (rapidocr detector), estimate the
character size, pick the language (`lang`, or `auto`: OCR a strip of sample lines and count Han
characters), rescale the page so characters are `zh_char_px` (16) or `en_char_px` (10) pixels, merge
line boxes into text blocks, tile the blocks with `crop`-sized windows, OCR each window and keep those
with `zh_chars` (200-600) or `en_chars` (300-600) characters (whitespace removed), then drop near
duplicates by character n-gram overlap (n = 3 Chinese, 5 English; overlap = shared n-grams / n-grams of
the smaller text; dropped above 0.2 against a kept crop of the same page, above 0.3 against any other).

Character size: the detector's line boxes are about `BOX_TO_EM` (1.35) times the font size (em); a Han
glyph fills the em, so Chinese "character px" is the em; for Latin text "character px" is the cap
height, about 0.7 em, so 10 px means an em of about 14 px (at a 10 px em a dense 256 px crop holds ~900
characters, beyond the 600 limit).

Writes `out/<doc>-p<page>-<k>.png`, `out/benchmark.jsonl` (file, source, page, box [x0, y0, x1, y1] in
pixels of the page rescaled by `scale`, scale (pixels per PDF point, or the resize factor of an image),
lang, ocr_text, chars) and `out/bench_stats.json` (kept and rejected crops by reason; the pages that
failed, counted in `failed` and listed with their reasons in `failed_pages`: one bad page never ends the build).
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from textinfuse.images import ImageError, is_image_name
from textinfuse.progress import Progress

from .images import load_protocol_rgb

log = logging.getLogger(__name__)
BOX_TO_EM = 1.35  # detector line-box height / font size, measured on debian-reference pages (1.25-1.4)
CAP_TO_EM = 0.7  # Latin cap height / em
HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True)
class BenchConfig:
    lang: str = "auto"  # auto | en | zh
    crop: int = 256
    stride: int = 256  # step between windows inside a text block; < crop gives overlapping candidates
    zh_char_px: float = 16.0
    en_char_px: float = 10.0
    zh_chars: tuple[int, int] = (200, 600)
    en_chars: tuple[int, int] = (300, 600)
    zh_ngram: int = 3
    en_ngram: int = 5
    page_overlap: float = 0.2
    set_overlap: float = 0.3
    dpi: float = 150.0  # first render of PDF pages, for detection only
    detect_side: int = 1024
    estimate_floor: float = 0.6  # skip OCR of windows whose box-based estimate is under this x the minimum

    def __post_init__(self) -> None:
        if self.lang not in ("auto", "en", "zh"):
            raise ValueError(f"lang {self.lang!r}: use auto, en or zh")
        if self.crop < 32 or self.stride < 1 or self.zh_char_px <= 0 or self.en_char_px <= 0:
            raise ValueError("crop >= 32, stride >= 1 and character sizes > 0 are required")
        for name in ("zh_chars", "en_chars"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"{name} {lo}-{hi}: need 0 <= MIN <= MAX")


@dataclass
class Page:
    source: str
    index: int
    image: np.ndarray  # RGB uint8 at `scale`
    scale: float
    pdf_page: object = None  # pypdfium2 page, re-rendered at the final scale


def page_refs(inputs: list[str | Path]) -> list[tuple[Path, int]]:
    """(file, page index) of every page of the PDFs and page images in `inputs` (files or folders), in
    sorted order; nothing is rendered yet. A PDF that cannot be opened gives one ref, (file, -1), whose
    loading fails with its reason (so it is counted as a failed page, not the end of the build)."""
    files: list[Path] = []
    for i in map(Path, inputs):
        if i.is_dir():
            files += sorted(p for p in i.iterdir() if is_image_name(p) or p.suffix.lower() == ".pdf")
        elif i.exists():
            files.append(i)
        else:
            raise FileNotFoundError(2, "not found", str(i))
    refs: list[tuple[Path, int]] = []
    for f in files:
        if f.suffix.lower() != ".pdf":
            refs.append((f, 0))
            continue
        try:
            refs += [(f, k) for k in range(len(_pdf(f)))]
        except Exception:  # reported when the page is loaded
            refs.append((f, -1))
    return refs


def _pdf(f: Path):
    try:
        import pypdfium2 as pdfium
    except ImportError as e:
        raise ImportError("PDF input needs pypdfium2: pip install pypdfium2") from e
    return pdfium.PdfDocument(str(f))


def load_page(ref: tuple[Path, int], dpi: float) -> Page:
    """One page: a PDF page rendered at `dpi`, or a page image at its own size."""
    f, k = ref
    if f.suffix.lower() != ".pdf":
        return Page(str(f), 0, load_protocol_rgb(f), 1.0)
    doc = _pdf(f)
    if not 0 <= k < len(doc):
        raise ValueError(f"{f}: not a readable PDF")
    s = dpi / 72.0
    return Page(str(f), k, render_pdf(doc[k], s), s, doc[k])


def render_pdf(page, scale: float) -> np.ndarray:
    return np.asarray(page.render(scale=scale).to_pil().convert("RGB"))


def detect_lang(img: np.ndarray, boxes: np.ndarray) -> str:
    """'zh' when Han characters are over 30 % of the OCR text of up to 8 sample lines, else 'en'."""
    from textinfuse import ocr

    rows = []
    for b in boxes[:: max(1, len(boxes) // 8)][:8]:
        x0, y0 = np.floor(b.min(0)).astype(int).clip(0)
        x1, y1 = np.ceil(b.max(0)).astype(int)
        rows.append(img[y0:y1, x0:x1])
    w = max(r.shape[1] for r in rows)
    strip = np.full((sum(r.shape[0] + 8 for r in rows), w, 3), 255, np.uint8)
    y = 0
    for r in rows:
        strip[y:y + r.shape[0], :r.shape[1]] = r
        y += r.shape[0] + 8
    text = "".join(ln.text for ln in ocr.read(strip)).replace(" ", "")
    return "zh" if text and len(HAN.findall(text)) / len(text) > 0.3 else "en"


def text_blocks(boxes: np.ndarray, em: float, shape: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """Merge line boxes closer than ~1 em vertically and ~3 em horizontally: (x0, y0, x1, y1) each."""
    mask = np.zeros(shape, np.uint8)
    for b in boxes:
        x0, y0 = b.min(0).astype(int)
        x1, y1 = b.max(0).astype(int)
        mask[max(y0, 0):y1, max(x0, 0):x1] = 255
    k = cv2.getStructuringElement(cv2.MORPH_RECT, (max(3, int(3 * em)), max(3, int(1.2 * em))))
    n, _, stats, _ = cv2.connectedComponentsWithStats(cv2.dilate(mask, k))
    return [(x, y, x + w, y + h) for x, y, w, h, _ in stats[1:n]]


def windows(block: tuple[int, int, int, int], crop: int, stride: int, w: int, h: int) -> list[tuple[int, int]]:
    """Top-left corners of crop windows tiling a block (centred when the block is smaller), inside the page."""
    def starts(a, b, limit):
        if b - a <= crop:
            return [(a + b - crop) // 2]
        return list(range(a, b - crop // 2, stride))

    out = []
    for y in starts(block[1], block[3], h):
        for x in starts(block[0], block[2], w):
            out.append((int(min(max(x, 0), w - crop)), int(min(max(y, 0), h - crop))))
    return list(dict.fromkeys(out))


def estimate_chars(boxes: np.ndarray, x: int, y: int, crop: int, em: float, lang: str) -> float:
    """Characters in a window guessed from the line boxes it overlaps (no OCR): box width / char width
    (1 em for Han, 0.5 em for Latin), weighted by the overlapping fraction of each box."""
    lo, hi = boxes.min(1), boxes.max(1)
    iw = (np.minimum(hi[:, 0], x + crop) - np.maximum(lo[:, 0], x)).clip(0)
    ih = (np.minimum(hi[:, 1], y + crop) - np.maximum(lo[:, 1], y)).clip(0)
    bw, bh = (hi - lo).clip(1e-6).T
    return float(np.sum(iw * ih / (bw * bh) * bw / (em * (1.0 if lang == "zh" else 0.5))))


def ngrams(text: str, n: int) -> set[str]:
    return {text[i:i + n] for i in range(max(len(text) - n + 1, 1))}


def overlap(a: set[str], b: set[str]) -> float:
    return len(a & b) / max(min(len(a), len(b)), 1)


def build_benchmark(inputs: list[str | Path], out: str | Path, cfg: BenchConfig = BenchConfig()) -> list[dict]:
    """Build the benchmark in `out` (see the module docstring); returns the rows of benchmark.jsonl."""
    from textinfuse import ocr

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    kept: list[dict] = []
    grams: list[tuple[str, int, set[str]]] = []  # (source, page, n-grams) of kept crops
    reasons: Counter = Counter()
    failed: list[str] = []
    refs = page_refs(inputs)
    prog = Progress(len(refs), "pages")
    for f, k in refs:  # one page in memory at a time
        try:
            rows = _page_crops(load_page((f, k), cfg.dpi), cfg, ocr, grams, reasons, out, len(kept))
        except ImportError:
            raise
        except Exception as e:  # one bad page must not end the build
            why = str(e) if isinstance(e, ImageError) else f"{type(e).__name__}: {e}"  # an image's reason is one line
            failed.append(f"{f} page {max(k, 0)}: {why}")
            log.warning(failed[-1])
            prog.advance(1, failures=1)
            continue
        kept += rows
        prog.advance(1)
    prog.close()
    with (out / "benchmark.jsonl").open("w", encoding="utf-8") as f:
        for r in kept:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    stats = {"pages": len(refs), "kept": len(kept), "rejected": dict(reasons), "failed": len(failed),
             "failed_pages": failed, "config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__}}
    (out / "bench_stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    log.info("%d crops kept from %d pages (%d failed); rejected %s -> %s", len(kept), len(refs), len(failed),
             dict(reasons), out)
    return kept


def _page_crops(page: Page, cfg: BenchConfig, ocr, grams: list, reasons: Counter, out: Path,
                first: int) -> list[dict]:
    boxes = ocr.detect(page.image, max_side=cfg.detect_side)
    if len(boxes) == 0:
        reasons["page without text"] += 1
        return []
    em = float(np.median(np.ptp(boxes[:, :, 1], axis=1))) / BOX_TO_EM
    lang = cfg.lang if cfg.lang != "auto" else detect_lang(page.image, boxes)
    target_em = cfg.zh_char_px if lang == "zh" else cfg.en_char_px / CAP_TO_EM
    factor = target_em / em
    if page.pdf_page is not None:
        img = render_pdf(page.pdf_page, page.scale * factor)
        factor = img.shape[1] / page.image.shape[1]
    else:
        interp = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
        img = cv2.resize(page.image, None, fx=factor, fy=factor, interpolation=interp)
    h, w = img.shape[:2]
    if h < cfg.crop or w < cfg.crop:
        reasons["page smaller than a crop"] += 1
        return []
    boxes = boxes * factor
    lo, hi = cfg.zh_chars if lang == "zh" else cfg.en_chars
    n = cfg.zh_ngram if lang == "zh" else cfg.en_ngram
    rows = []
    for block in text_blocks(boxes, target_em, (h, w)):
        for x, y in windows(block, cfg.crop, cfg.stride, w, h):
            if estimate_chars(boxes, x, y, cfg.crop, target_em, lang) < cfg.estimate_floor * lo:
                reasons["too few characters (estimated from line boxes)"] += 1
                continue
            crop = np.ascontiguousarray(img[y:y + cfg.crop, x:x + cfg.crop])
            text = ocr.page_text(crop)  # reading order, whitespace removed: what the character limits count
            if not lo <= len(text) <= hi:
                reasons["too few characters" if len(text) < lo else "too many characters"] += 1
                continue
            g = ngrams(text, n)
            dup = next((o for s, p, kg in grams if (o := overlap(g, kg)) >
                        (cfg.page_overlap if (s, p) == (page.source, page.index) else cfg.set_overlap)), None)
            if dup is not None:
                reasons["near duplicate"] += 1
                continue
            grams.append((page.source, page.index, g))
            name = f"{Path(page.source).stem}-p{page.index:03d}-{first + len(rows):05d}.png"
            cv2.imwrite(str(out / name), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
            rows.append({"file": name, "source": page.source, "page": page.index,
                         "box": [x, y, x + cfg.crop, y + cfg.crop], "scale": round(page.scale * factor, 6),
                         "lang": lang, "ocr_text": text, "chars": len(text)})
    return rows
