"""Loader throughput (samples/s per CPU core at 256x256 from shards) and each registry model's cost.

    python benchmarks/loader_throughput.py SHARD_DIR [--batches 20] [--workers 1]

Per core = samples/s with `--workers` DataLoader processes divided by that number (goal >= 400); per
CPU-second = samples over the CPU time of the main process and its workers together (psutil), the
figure that does not flatter a run whose main process also works.
Model cost: MACs per image pixel and parameters of each encoder and decoder (the encoder is the lighter).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from training.data import MixedBatches, make_loader, shard_urls
from training.models import MODELS, build_model, count_params, macs_per_pixel


def _cpu_seconds() -> float:
    """CPU time of this process and its live children (the DataLoader workers), via psutil."""
    import psutil

    procs = [psutil.Process(), *psutil.Process().children(recursive=True)]
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def loader_rate(shards: str, batches: int, workers: int, size: int = 256, batch_size: int = 32) -> tuple[float, float]:
    """(samples per wall second, samples per CPU-second of the main process and its workers together)."""
    ds = MixedBatches([shard_urls(shards)], [1.0], batch_size, [(size, size)], seed=0, buffer=64)
    it = iter(make_loader(ds, workers, seed=0))
    next(it)  # start-up and shuffle-buffer fill are not steady state
    t, c, n = time.perf_counter(), _cpu_seconds(), 0
    for _ in range(batches):
        n += len(next(it)["image"])
    return n / (time.perf_counter() - t), n / max(_cpu_seconds() - c, 1e-9)


def model_costs(side: int = 64) -> dict[str, dict[str, float]]:
    out = {}
    for name, cfg in MODELS.items():
        m = build_model(name).eval()
        s = max(side, cfg.f)
        x = torch.zeros(1, 3, s, s)
        z = m.encode(x)
        out[name] = {"enc_params_M": count_params(m.encoder) / 1e6, "dec_params_M": count_params(m.decoder) / 1e6,
                     "enc_kmacs_per_px": macs_per_pixel(m.encoder, x, s * s) / 1e3,
                     "dec_kmacs_per_px": macs_per_pixel(m.decoder, z, s * s) / 1e3}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shards")
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--workers", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(1)
    rate, per_cpu = loader_rate(a.shards, a.batches, a.workers)
    print(json.dumps({"samples_per_s": round(rate, 1), "workers": a.workers,
                      "samples_per_s_per_core": round(rate / max(a.workers, 1), 1),
                      "samples_per_cpu_s": round(per_cpu, 1), "goal_per_core": 400}))
    print(f"{'model':<12} {'enc params M':>12} {'dec params M':>12} {'enc kMAC/px':>12} {'dec kMAC/px':>12}")
    for name, c in model_costs().items():
        print(f"{name:<12} {c['enc_params_M']:>12.2f} {c['dec_params_M']:>12.2f} "
              f"{c['enc_kmacs_per_px']:>12.1f} {c['dec_kmacs_per_px']:>12.1f}")


if __name__ == "__main__":
    main()
