"""Render throughput on one core: dense 256x256 page crops, English and Chinese separately.

Prints samples and characters per CPU-second for whole shards (sampling, layout, drawing, effects,
labels, PNG encoding, JSON, tar writing), the floor (PNG-encoding a background crop of the same size with
libpng at level 1, its default filters, through OpenCV: the issue's and DESIGN.md's floor), their ratio,
what our own PNG writer (`pipelines/png_writer.py`) costs on the same crops, the rest of a sample without it,
and the process's peak memory. Medians over shards.

A worker renders thousands of samples per config, so figures are for a warm worker: `--warmup` samples
of another seed are rendered first (their rate, with cold glyph caches, is printed as "cold"). The floor
is measured next to every shard and the ratio taken per shard, so a machine that speeds up or slows
down during the run does not bend the ratio.

    .venv/bin/python benchmarks/render_throughput.py [--shards 6] [--per-shard 150] [--warmup 1200]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.render_job import OutputConfig, RenderJobConfig, encode, render_shard, renderer_for  # noqa: E402
from render_engine.backgrounds import apply_crop, sample_crop  # noqa: E402
from render_engine.config import LayoutConfig, RenderConfig, TextConfig  # noqa: E402

PEERS = {"trdg": 340, "SynthDoG": 100, "SynthTIGER": 25}  # characters per CPU-second, measured here (DESIGN.md)


def png_floor_ms(cfg: RenderConfig, out: OutputConfig, rng: np.random.Generator, n: int = 100) -> tuple[float, float]:
    """Median CPU ms to PNG-encode a background crop of the canvas size (no text): with libpng at level 1
    (OpenCV, default filters; the BGR copy OpenCV needs is not counted), and with our writer and `out`."""
    r = renderer_for(cfg)
    bs = r.assets.backgrounds
    libpng, ours = [], []
    for _ in range(n):
        i = int(rng.integers(len(bs)))
        img = bs.image(i)
        crop = apply_crop(img, sample_crop(rng, img.shape[:2], (cfg.width, cfg.height), cfg.backgrounds.scale),
                          (cfg.width, cfg.height))
        bgr = np.ascontiguousarray(crop[..., ::-1])
        t = time.process_time()
        cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        libpng.append(time.process_time() - t)
        t = time.process_time()
        encode(crop, out)
        ours.append(time.process_time() - t)
    return 1000 * statistics.median(libpng), 1000 * statistics.median(ours)


def bench(lang: str, char_px: tuple[int, int], shards: int, per_shard: int, warmup: int) -> dict:
    cv2.setNumThreads(1)  # one core
    cfg = RenderConfig(levels=(2, 3), text=TextConfig(langs=(lang,), char_px=char_px), layout=LayoutConfig(page_prob=1.0))
    out = OutputConfig(samples_per_shard=per_shard)
    job = RenderJobConfig(seed=1, num_samples=shards * per_shard, render=cfg, output=out)
    warm = RenderJobConfig(seed=0, num_samples=max(warmup, 1), render=cfg, output=out)
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        cold = [0.0, 0]
        for s in range(warm.num_shards):
            st = render_shard(warm, s, d)
            cold[0] += st["cpu_s"]
            cold[1] += st["count"]
            os.unlink(Path(d) / st["file"])
        for s in range(shards):
            floor, ours = png_floor_ms(cfg, out, rng)
            st = render_shard(job, s, d)
            ms = 1000 * st["cpu_s"] / st["count"]
            rows.append((st["cpu_s"], st["count"], st["chars"], floor, ours, ms / floor, (ms - ours) / floor))
            os.unlink(Path(d) / st["file"])
    med = lambda k: statistics.median(r[k] for r in rows)  # noqa: E731
    sps = statistics.median(c / t for t, c, *_ in rows)
    return {"lang": lang, "char_px": char_px, "samples_per_cpu_s": sps,
            "chars_per_cpu_s": statistics.median(ch / t for t, _, ch, *_ in rows),
            "chars_per_sample": statistics.median(ch / c for _, c, ch, *_ in rows),
            "cold_samples_per_cpu_s": cold[1] / max(cold[0], 1e-9), "ms_per_sample": 1000 / sps,
            "floor_ms": med(3), "encode_ms": med(4), "x_floor": med(5), "rest_x_floor": med(6),
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def bench_in_worker(*args) -> dict:
    """Run `bench` in a fresh process (spawned, like a Ray worker) so its peak memory is its own."""
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(bench, args)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", type=int, default=6)
    ap.add_argument("--per-shard", type=int, default=150)
    ap.add_argument("--warmup", type=int, default=1200, help="samples rendered first, with another seed")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    results = [bench_in_worker(lang, px, a.shards, a.per_shard, a.warmup) for lang, px in (("en", (9, 11)), ("zh", (10, 12)))]
    print(f"{'lang':4} {'px':>6} {'chars/img':>9} {'samples/cpu-s':>13} {'(cold)':>7} {'chars/cpu-s':>11} "
          f"{'ms/sample':>9} {'floor ms':>8} {'x floor':>7} {'our encode ms':>13} {'rest x floor':>12} {'worker MB':>9}")
    for r in results:
        print(f"{r['lang']:4} {r['char_px'][0]:>3}-{r['char_px'][1]:<2} {r['chars_per_sample']:9.0f} "
              f"{r['samples_per_cpu_s']:13.1f} {r['cold_samples_per_cpu_s']:7.1f} {r['chars_per_cpu_s']:11.0f} "
              f"{r['ms_per_sample']:9.2f} {r['floor_ms']:8.2f} {r['x_floor']:7.2f} "
              f"{r['encode_ms']:13.2f} {r['rest_x_floor']:12.2f} {r['maxrss_mb']:9.0f}")
    print("floor: libpng PNG-encoding a background crop of the same size at level 1 (OpenCV, default filters); "
          "our encode: pipelines/png_writer.py on the same crops; rest: a sample's time without our encode, over the floor")
    best = min(r["chars_per_cpu_s"] for r in results)
    print("vs peers (characters per CPU-second, measured here): " +
          ", ".join(f"{k} {v} -> {best / v:.0f}x" for k, v in PEERS.items()))


if __name__ == "__main__":
    main()
