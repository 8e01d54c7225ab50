"""Peak memory and time of one f16c64 training step on CPU, with and without activation checkpointing.

    python benchmarks/train_memory.py [--sizes 128 256] [--batch 1] [--model f16c64] [--threads 0]

Each setting runs in a fresh Python process: the model, AdamW and one warm-up step on a 2f px image (so the
optimizer moments and gradients exist), then the measured step — `training.loop.optimizer_step` with the
L1 loss (`micro_loss`, no teachers), as the trainer runs it. Memory is the kernel's resident-set peak
(VmHWM): the child resets it (`/proc/self/clear_refs`, "5") just before the measured step and reads it
after, so `step peak` = VmHWM - VmRSS before the step (saved activations, the gradients, temporaries: what
grows with the image; `fwd+bwd peak` the same, read before AdamW's update) and `process peak` = VmHWM
(that plus weights, AdamW moments and the runtime). PyTorch's CPU
allocator has no cache, and the child sets MALLOC_MMAP_THRESHOLD_ so glibc maps every large tensor and
hands it back on free: the resident set follows live tensors. Where clear_refs cannot be written the
child falls back to getrusage's ru_maxrss, which includes the warm-up (said in the output).
Goal: checkpointing's step peak <= 0.6x the plain one. Default run: about 2-3 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def child(model: str, size: int, batch: int, ckpt: bool, threads: int) -> dict:
    """One setting, in this (fresh) process: a JSON-able dict of MiB and seconds."""
    import torch

    from training.config import StageConfig, TeacherConfig
    from training.loop import Net, micro_loss, optimizer_step
    from training.models import build_model

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = Net(build_model(model), None)
    net.ae.set_checkpointing(ckpt)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    stage = StageConfig("bench", 1, {"s": 1.0})

    def step(x: torch.Tensor) -> None:
        optimizer_step(net, net, opt, [x], lambda b: micro_loss(net, net.ae, b, stage, None, None,
                                                                 TeacherConfig(), False), 1.0, 1e-4)

    f = net.ae.cfg.f
    step(torch.rand(1, 3, 2 * f, 2 * f) * 2 - 1)  # warm-up: the AdamW moments now exist
    opt.zero_grad(set_to_none=True)  # as the step itself does first: its gradients count in its peak
    x = torch.rand(batch, 3, size, size) * 2 - 1
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current resident set
        method = "VmHWM after clear_refs"
    except OSError:
        method = "ru_maxrss (includes the warm-up)"
    def hwm() -> int:
        return _status_kib("VmHWM") if method.startswith("VmHWM") else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    adam, fb = opt.step, {}

    def opt_step(*a, **k):  # the forward+backward peak is read before AdamW adds its own
        fb["peak"] = hwm()
        return adam(*a, **k)

    opt.step = opt_step
    before = _status_kib("VmRSS")
    t = time.perf_counter()
    step(x)
    dt = time.perf_counter() - t
    peak = hwm()
    return {"size": size, "batch": batch, "checkpointing": ckpt, "step_s": dt, "before_mib": before / 1024,
            "process_peak_mib": peak / 1024, "step_peak_mib": (peak - before) / 1024,
            "fwd_bwd_peak_mib": (fb["peak"] - before) / 1024, "method": method,
            "grad_mib": sum(p.numel() * p.element_size() for p in net.parameters()) / 2**20}


def run(model: str, size: int, batch: int, ckpt: bool, threads: int) -> dict:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(128 * 1024), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, __file__, "--child", "--model", model, "--sizes", str(size), "--batch", str(batch),
           "--threads", str(threads)] + (["--checkpointing"] if ckpt else [])
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="f16c64")
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256], help="square image sides in px")
    ap.add_argument("--batch", type=int, default=1, help="images per step")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--checkpointing", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.model, a.sizes[0], a.batch, a.checkpointing, a.threads)))
        return
    rows = [run(a.model, s, a.batch, ck, a.threads) for s in a.sizes for ck in (False, True)]
    print(f"{a.model}, batch {a.batch}, one training step (L1, AdamW) on CPU; memory: {rows[0]['method']}")
    print(f"{'px':>5} {'checkpointing':>13} {'step s':>7} {'fwd+bwd peak MiB':>17} {'step peak MiB':>14} "
          f"{'process peak MiB':>17}")
    for r in rows:
        print(f"{r['size']:>5} {str(r['checkpointing']).lower():>13} {r['step_s']:>7.1f} {r['fwd_bwd_peak_mib']:>17.0f} "
              f"{r['step_peak_mib']:>14.0f} {r['process_peak_mib']:>17.0f}")
    g = rows[0]["grad_mib"]
    for s in a.sizes:
        off, on = (next(r for r in rows if r["size"] == s and r["checkpointing"] is c) for c in (False, True))
        print(f"{s} px: checkpointing / plain = {on['step_peak_mib'] / off['step_peak_mib']:.2f}x step peak "
              f"(goal <= 0.6x), {(on['step_peak_mib'] - g) / (off['step_peak_mib'] - g):.2f}x without the "
              f"{g:.0f} MiB of gradients, {on['process_peak_mib'] / off['process_peak_mib']:.2f}x process peak, "
              f"{on['step_s'] / off['step_s']:.2f}x step time")


if __name__ == "__main__":
    main()
