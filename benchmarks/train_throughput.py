"""Loader + step throughput of the tiny CPU training config, this checkout against another (before/after).

    python benchmarks/train_throughput.py SHARD_DIR [--other REPO_DIR] [--steps 60] [--repeats 3]

Each run is `textinfuse train --config configs/train/tiny-cpu.yaml` in a fresh process (the checkout's own
code first on PYTHONPATH), one stage of `--steps` steps at 128 px, batch 8, one loader worker, on
SHARD_DIR as the `synthetic` source; evaluation and checkpoints are pushed past the end, so the figure is
the loader feeding the step. Throughput = the images of the steps after the first 10 (warm-up: loader
start, first shuffle buffer) over their wall time, from the run's metrics (`steps_per_s`, cumulative,
logged every 10 steps).
Reports the median of `--repeats` runs per checkout, interleaved (A, B, A, B, ...) so a busy machine
slows both alike, and the ratio. `--other`: a second checkout, e.g. `git worktree add /tmp/before COMMIT`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_once(repo: Path, shards: str, steps: int) -> float:
    """images/s of one fresh training run of `repo`'s code on the tiny config."""
    with tempfile.TemporaryDirectory() as tmp:
        stage = (f"stages=[{{name: bench, steps: {steps}, resolution: 128, weights: {{synthetic: 1.0}}, "
                 "align: 0.1, lr: 1.0e-3}]")
        cmd = [sys.executable, "-m", "textinfuse.cli", "train", "--config", str(repo / "configs/train/tiny-cpu.yaml"),
               "--source", f"synthetic={shards}", "--out", f"{tmp}/run", "--set", stage,
               "--set", f"eval.every={steps * 10}", "--set", f"ckpt_every={steps * 10}", "--set", "eval.ned_samples=0",
               "--set", "log_every=10", "--set", "data.holdout_shards=0", "--set", "eval.num_samples=2"]
        env = {**os.environ, "PYTHONPATH": str(repo)}
        subprocess.run(cmd, env=env, cwd=repo, check=True, capture_output=True, text=True)
        rows = [json.loads(line) for line in Path(f"{tmp}/run/metrics.jsonl").read_text().splitlines()]
        logged = {r["step"]: r["steps_per_s"] for r in rows if "steps_per_s" in r}
        if 10 not in logged or max(logged) <= 10:
            raise RuntimeError(f"{repo}: metrics.jsonl lacks steps_per_s at step 10 and after")
        last = max(logged)  # steps_per_s is cumulative: step / seconds since the loop began
        seconds = last / logged[last] - 10 / logged[10]
        return (last - 10) * 8 / seconds  # batch 8


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shards", help="a folder of render shards (e.g. `make demo`'s demo/)")
    ap.add_argument("--other", help="another checkout to compare with (before)")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    repos = {"this": ROOT} | ({"other": Path(a.other).resolve()} if a.other else {})
    got: dict[str, list[float]] = {k: [] for k in repos}
    for i in range(a.repeats):
        for name, repo in repos.items():
            got[name].append(run_once(repo, str(Path(a.shards).resolve()), a.steps))
            print(f"repeat {i + 1}/{a.repeats} {name}: {got[name][-1]:.1f} images/s", flush=True)
    med = {k: statistics.median(v) for k, v in got.items()}
    for name, repo in repos.items():
        print(f"{name} ({repo}): median {med[name]:.1f} images/s (runs: {', '.join(f'{x:.1f}' for x in got[name])})")
    if a.other:
        print(f"this / other = {med['this'] / med['other']:.2f}x")


if __name__ == "__main__":
    main()
