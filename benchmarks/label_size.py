"""Label size and label build time per sample, on the default render mix, for this checkout and a baseline.

Renders N samples with the default `RenderJobConfig` (the same seeds, background pool and loop as
`render_shard`'s shard 0) and measures what each sample's label costs in the shard: the label members
(every member but the image and the `.txt`: `KEY.json`, and from label version 2 `KEY.chars.npy`), per
labelled character and per sample, with and without their tar headers and padding; and the CPU time to
build them: the engine's label (`Renderer._label`) plus writing the members' bytes. Warm: `--warmup`
samples of another seed are rendered first.

`--baseline REV` runs the same measurement on another revision (e.g. the commit before label version 2)
from a temporary `git worktree`, removed afterwards, and prints both side by side.

    .venv/bin/python benchmarks/label_size.py [--n 400] [--warmup 100] [--baseline REV]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TAR_BLOCK = 512


def measure(repo: Path, n: int, warmup: int, seed: int) -> dict:
    sys.path.insert(0, str(repo))
    import cv2
    import numpy as np
    import orjson

    from pipelines import render_job
    from pipelines.render_job import RenderJobConfig
    from render_engine.engine import Renderer

    assert Path(render_job.__file__).resolve().is_relative_to(repo.resolve()), render_job.__file__
    cv2.setNumThreads(1)
    job = RenderJobConfig(seed=seed, num_samples=n)
    r = Renderer(job.render)
    spent = [0.0]
    inner = Renderer._label

    def timed(self, *a, **k):
        t = time.process_time()
        try:
            return inner(self, *a, **k)
        finally:
            spent[0] += time.process_time() - t

    r._label = timed.__get__(r)
    members = getattr(render_job, "label_members", None)  # label version 2 on; version 1 wrote the json alone
    if members is None:
        members = lambda s: {"json": orjson.dumps(s.label, option=orjson.OPT_SORT_KEYS)}  # noqa: E731
    for i in range(warmup):
        r.generate(np.random.default_rng([seed + 1, 0, i]))
    pool = r.background_pool(np.random.default_rng([seed, 0, 2**32 - 1]))
    rows = []
    for i in range(n):
        spent[0] = 0.0
        s = r.generate(np.random.default_rng([seed, 0, i]), {"run": seed, "shard": 0, "index": i}, pool)
        s.label["key"] = f"000000_{i:06d}"
        t = time.process_time()
        m = members(s)
        build = spent[0] + time.process_time() - t
        lab = {k: v for k, v in m.items() if k != "txt"}
        nbytes = sum(map(len, lab.values()))
        in_tar = sum(TAR_BLOCK + -(-len(v) // TAR_BLOCK) * TAR_BLOCK for v in lab.values())
        chars = len(s.label["characters"]) if "characters" in s.label else s.label["char_boxes"]["count"]
        rows.append((chars, nbytes, in_tar, build, s.label.get("version")))
    chars = sum(r[0] for r in rows)
    return {"repo": str(repo), "version": rows[-1][4], "samples": n, "chars": chars,
            "members": sorted(k for k in m if k != "txt"),
            "bytes_per_char": sum(r[1] for r in rows) / chars, "bytes_per_sample": sum(r[1] for r in rows) / n,
            "tar_bytes_per_char": sum(r[2] for r in rows) / chars, "tar_bytes_per_sample": sum(r[2] for r in rows) / n,
            "build_ms_mean": 1000 * sum(r[3] for r in rows) / n,
            "build_ms_median": 1000 * statistics.median(r[3] for r in rows)}


def baseline(rev: str, a: argparse.Namespace) -> dict:
    """`measure` on revision `rev`, in a temporary worktree (this script runs there as it is here)."""
    with tempfile.TemporaryDirectory(prefix="label_size_") as d:
        tree = Path(d) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), rev], check=True)
        try:
            out = subprocess.run([sys.executable, __file__, "--repo", str(tree), "--json", "--n", str(a.n),
                                  "--warmup", str(a.warmup), "--seed", str(a.seed)],
                                 check=True, capture_output=True, text=True).stdout
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=True)
    return json.loads(out.strip().splitlines()[-1])


def show(name: str, r: dict) -> None:
    print(f"{name:10} v{r['version']}  {'+'.join(r['members']):14} {r['bytes_per_char']:8.1f} {r['bytes_per_sample']:9.0f} "
          f"{r['tar_bytes_per_char']:8.1f} {r['tar_bytes_per_sample']:9.0f} {r['build_ms_mean']:9.3f} {r['build_ms_median']:9.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=400, help="samples measured")
    ap.add_argument("--warmup", type=int, default=100, help="samples rendered first (another seed), not measured")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--baseline", metavar="REV", help="also measure this git revision (a temporary worktree)")
    ap.add_argument("--repo", type=Path, default=ROOT, help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if a.json:
        print(json.dumps(measure(a.repo, a.n, a.warmup, a.seed)))
        return
    base = baseline(a.baseline, a) if a.baseline else None
    here = measure(a.repo, a.n, a.warmup, a.seed)
    print(f"{a.n} samples of the default mix (seed {a.seed}), {here['chars']} labelled characters, {here['chars'] / a.n:.0f} a sample")
    print(f"{'':10} {'':3} {'label members':14} {'B/char':>8} {'B/sample':>9} {'tar B/ch':>8} {'tar B/smp':>9} "
          f"{'build ms':>9} {'(median)':>9}")
    if base:
        show(a.baseline[:10], base)
    show("this", here)
    if base:
        print(f"size {here['bytes_per_char'] / base['bytes_per_char']:.3f}x, in the tar {here['tar_bytes_per_char'] / base['tar_bytes_per_char']:.3f}x, "
              f"build time {here['build_ms_mean'] / base['build_ms_mean']:.2f}x")
    print("label members: every member but the image and the .txt; tar: with each member's 512-byte header and "
          "padding; build: Renderer._label + writing the members' bytes, CPU ms per sample")


if __name__ == "__main__":
    main()
