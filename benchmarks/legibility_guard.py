"""What the per-face legibility guard (render_engine/legibility.py) costs the renderer: ms per sample with
the guard on (`fonts.legibility: bundled`) and off (`none`), same assets, same seeds, rounds interleaved
(off, on, off, on, ...) so a machine that speeds up or slows down bends both alike. Prints each round,
the medians and their ratio (the render benchmark's goals allow no real slowdown).

    .venv/bin/python benchmarks/legibility_guard.py [--rounds 9] [--samples 150] [--level 1-5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from render_engine.config import FontConfig, RenderConfig
from render_engine.engine import Renderer
from render_engine.levels import parse_levels


def ms_per_sample(r: Renderer, pool: list[int], n: int) -> float:
    t = time.perf_counter()
    for i in range(n):
        r.generate(np.random.default_rng([3, i]), None, pool)
    return (time.perf_counter() - t) / n * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--samples", type=int, default=150, help="samples per round and setting")
    ap.add_argument("--level", default="1-5", help="levels drawn (the guard binds most at 2-3)")
    a = ap.parse_args()
    levels = tuple(parse_levels(a.level))
    on = Renderer(RenderConfig(levels=levels))
    off = Renderer(RenderConfig(levels=levels, fonts=FontConfig(legibility="none")), on.assets)
    pool = on.background_pool(np.random.default_rng(0))
    for r in (on, off):  # warm the glyph caches of both
        ms_per_sample(r, pool, 50)
    res: dict[str, list[float]] = {"off": [], "on": []}
    for k in range(a.rounds):
        for name, r in (("off", off), ("on", on)):
            res[name].append(ms_per_sample(r, pool, a.samples))
        print(f"round {k + 1}/{a.rounds}: off {res['off'][-1]:.2f} ms, on {res['on'][-1]:.2f} ms", flush=True)
    m = {k: statistics.median(v) for k, v in res.items()}
    print(f"median ms/sample (levels {a.level}): guard off {m['off']:.2f}, on {m['on']:.2f}; "
          f"on/off {m['on'] / m['off']:.3f}")


if __name__ == "__main__":
    main()
