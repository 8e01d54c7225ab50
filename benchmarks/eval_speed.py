#!/usr/bin/env python3
"""Seconds per 256x256 image per core for `textinfuse eval`, with and without the cached ground-truth OCR.

Crops real document pages (tests/fixtures/documents) into N 256x256 images, then times `evaluate` with a
mild blur as the "model" (its reconstructions stay readable, so OCR does full work on both sides): a cold
run (OCR of originals and reconstructions) and a warm run (originals from the cache). OCR is
single-threaded, so wall seconds per image are seconds per image per core. Prints medians over
`--repeats` runs, and a cold run with `--workers` processes.
Usage: python benchmarks/eval_speed.py [--n 8] [--repeats 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from evaluation.evaluate import evaluate
from evaluation.ocr_cache import cache_path

DOCS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "documents"


def make_set(d: Path, n: int) -> None:
    import pypdfium2 as pdfium

    pages = [np.asarray(pdfium.PdfDocument(str(DOCS / "debian-reference-en-p7.pdf"))[0].render(scale=1.4)
                        .to_pil().convert("RGB")),
             np.asarray(Image.open(DOCS / "debian-reference-zh-cn-p6.png").convert("RGB"))]
    for i in range(n):
        p = pages[i % 2]
        y, x = 100 + 160 * (i // 2) % (p.shape[0] - 400), 60 + 97 * i % (p.shape[1] - 330)
        Image.fromarray(p[y:y + 256, x:x + 256]).save(d / f"{i:03d}.png")


def mild_blur(batch: np.ndarray) -> np.ndarray:
    """A stand-in autoencoder: Gaussian blur, sigma 0.7 px (text stays readable)."""
    import cv2

    return np.stack([cv2.GaussianBlur(x, (0, 0), 0.7) for x in batch])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8, help="images per run (default 8)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per mode (default 3)")
    ap.add_argument("--workers", type=int, default=2, help="also time a cold run with this many processes (default 2)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")  # a cache of its own: deleting it makes a cold run
        gt = Path(tmp) / "gt"
        gt.mkdir()
        make_set(gt, a.n)
        evaluate(gt, Path(tmp) / "warmup", reference="identity", use_cache=False)  # load the OCR models
        cold, warm = [], []
        for r in range(a.repeats):
            cache_path().unlink(missing_ok=True)  # the OCR cache lives in the private cache folder
            t = time.perf_counter()
            evaluate(gt, Path(tmp) / f"cold{r}", model_fn=mild_blur)
            cold.append((time.perf_counter() - t) / a.n)
            t = time.perf_counter()
            evaluate(gt, Path(tmp) / f"warm{r}", model_fn=mild_blur)
            warm.append((time.perf_counter() - t) / a.n)
            shutil.rmtree(Path(tmp) / f"cold{r}")
        print(f"{a.n} images of 256x256, {a.repeats} runs each, one core (OCR single-threaded):")
        print(f"  without cached ground-truth OCR: median {statistics.median(cold):.3f} s/image/core")
        print(f"  with cached ground-truth OCR:    median {statistics.median(warm):.3f} s/image/core")
        if a.workers > 1:
            par = []
            for r in range(a.repeats):
                cache_path().unlink(missing_ok=True)  # the OCR cache lives in the private cache folder
                t = time.perf_counter()
                evaluate(gt, Path(tmp) / f"par{r}", model_fn=mild_blur, workers=a.workers)
                par.append((time.perf_counter() - t) / a.n)
            print(f"  without the cache, --workers {a.workers}: median {statistics.median(par):.3f} s/image wall "
                  f"({statistics.median(cold) / statistics.median(par):.2f}x one process; includes the workers'"
                  f" start-up and model loading)")


if __name__ == "__main__":
    main()
