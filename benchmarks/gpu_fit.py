"""What fits on one 80 GB / 140 GB GPU: images per GPU for each registry model at 256-2048 px, estimated
from CPU activation figures (no GPU needed; where one is lent, benchmarks/gpu_smoke.py measures instead).

    python benchmarks/gpu_fit.py [--models f16c64 f16c128 f32c128 f32c192] [--sizes 128 192] [--json OUT]

Method. For each model, `benchmarks/train_memory.py`'s child measures the resident-set growth of one
training step (L1, AdamW, fp32, batch 1) at two small sizes, with checkpointing off and on; a line
through the two points gives the activation bytes per pixel (the slope; the step's activations grow with
the pixels, the gradients do not). A GPU then holds:
- fixed: weights + gradients + AdamW moments + EMA (4 copies of fp32, plus the gradient: 20 bytes per
  parameter), the 1x1 alignment projection, the teachers (DINOv2-L, 304 M parameters, and LPIPS-VGG16,
  14.7 M, frozen, fp32: 1.3 GB) and a 3 GiB reserve for the CUDA context, cuDNN workspaces and the
  allocator's fragmentation;
- per image: slope x pixels, plus the teachers' transient activations (no_grad; small next to the
  autoencoder's).
The fp32 slope is an upper bound: the trainer runs the autoencoder under bf16 autocast on GPU, where most
saved activations are bf16 (about half), norms and losses float32. So the table prints the fp32 bound and
the bf16 estimate (slope x 0.55). Rounded down to whole images; 0 means not even one image fits.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_memory import run  # noqa: E402

GIB = 2**30
TEACHERS_GB = (304e6 + 14.7e6) * 4 / GIB  # DINOv2-L + VGG16 trunk, fp32
RESERVE_GIB = 3.0
BF16_FACTOR = 0.55
GPUS = {"80 GB": 80e9 / GIB, "140 GB": 140e9 / GIB}
SIZES = (256, 512, 1024, 2048)


def params_of(model: str) -> int:
    from training.models import build_model

    return sum(p.numel() for p in build_model(model).parameters())


def slope(model: str, sizes: tuple[int, int], ckpt: bool) -> float:
    """Activation MiB per pixel of one training step (fp32, CPU), from two sizes."""
    a, b = (run(model, s, 1, ckpt, 0) for s in sizes)
    return (b["fwd_bwd_peak_mib"] - a["fwd_bwd_peak_mib"]) / (sizes[1] ** 2 - sizes[0] ** 2)


def fit(fixed_gib: float, per_px_mib: float, px: int, gpu_gib: float) -> int:
    per_image = per_px_mib * px * px / 1024
    return max(0, int((gpu_gib - fixed_gib) / per_image))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["f16c64", "f16c128", "f32c128", "f32c192"])
    ap.add_argument("--sizes", type=int, nargs=2, default=[128, 192], help="the two measured sides (px)")
    ap.add_argument("--json", help="also write the figures here")
    a = ap.parse_args()
    rows = []
    for m in a.models:
        n = params_of(m)
        fixed = n * 20 / GIB + TEACHERS_GB + RESERVE_GIB
        for ckpt in (False, True):
            s = slope(m, tuple(a.sizes), ckpt)
            for px in SIZES:
                row = {"model": m, "params_M": round(n / 1e6, 1), "checkpointing": ckpt, "px": px,
                       "fp32_act_GiB_per_image": round(s * px * px / 1024, 2),
                       "fixed_GiB": round(fixed, 1)}
                for g, gib in GPUS.items():
                    row[f"fp32 {g}"] = fit(fixed, s, px, gib)
                    row[f"bf16 {g}"] = fit(fixed, s * BF16_FACTOR, px, gib)
                rows.append(row)
            print(f"{m}: {n / 1e6:.1f} M params, checkpointing {str(ckpt).lower()}: {s * 1024:.2f} KiB/px "
                  f"of activations (fp32)", flush=True)
    print("\nimages per GPU (bf16 estimate / fp32 bound), estimated from CPU activation figures")
    print(f"{'model':>8} {'ckpt':>5} " + " ".join(f"{px:>4}px 80GB {px:>4}px 140GB" for px in SIZES))
    for m in a.models:
        for ckpt in (False, True):
            cells = []
            for px in SIZES:
                r = next(r for r in rows if r["model"] == m and r["checkpointing"] == ckpt and r["px"] == px)
                cells += [f"{r['bf16 80 GB']}/{r['fp32 80 GB']}".rjust(11), f"{r['bf16 140 GB']}/{r['fp32 140 GB']}".rjust(12)]
            print(f"{m:>8} {('on' if ckpt else 'off'):>5} " + " ".join(cells))
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
