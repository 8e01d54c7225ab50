"""Reconstruct images with a trained checkpoint: the `--checkpoint` path of `textinfuse eval`.

`load_reconstructor(path)` takes a checkpoint folder (`ckpt/step_N`), a run's `ckpt/` folder or a run
folder (its latest checkpoint) and returns a callable mapping a float32 batch (N, H, W, 3) in [0, 1] to
reconstructions of the same shape and range. Any H and W work: images are padded to a multiple of the
model's downsampling factor and processed in tiles of at most `tile` px, so large pages fit in memory.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file

from .models import Autoencoder, build_model


def resolve_checkpoint(path: str | Path) -> Path:
    """The checkpoint folder for a checkpoint, a `ckpt/` folder or a run folder."""
    p = Path(path)
    for cand in (p, p / "ckpt"):
        if (cand / "model.safetensors").exists():
            return cand
        if (cand / "latest").exists():
            return cand / (cand / "latest").read_text().strip()
    raise FileNotFoundError(2, "no checkpoint here (model.safetensors or a `latest` pointer)", str(path))


def load_autoencoder(path: str | Path, use_ema: bool = True, device: str | None = None) -> Autoencoder:
    ckpt = resolve_checkpoint(path)
    weights = ckpt / ("ema.safetensors" if use_ema else "model.safetensors")
    with safe_open(str(weights), framework="pt") as f:
        config = json.loads(f.metadata()["config"])
    ae = build_model(config["model"])
    tensors = load_file(str(weights))
    ae.load_state_dict({k[len("net.ae."):]: v for k, v in tensors.items() if k.startswith("net.ae.")})
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return ae.to(dev).eval()


def _factor(ae: Autoencoder) -> int:
    return int(ae.cfg.f) if hasattr(ae, "cfg") and hasattr(ae.cfg, "f") else 16


@torch.no_grad()
def reconstruct_tiled(ae: Autoencoder, x: torch.Tensor, tile: int = 512) -> torch.Tensor:
    """x: (N, 3, H, W) in [-1, 1] -> reconstruction of the same shape, tile by tile (no overlap)."""
    f = _factor(ae)
    n, _, h, w = x.shape
    ph, pw = -h % f, -w % f
    xp = F.pad(x, (0, pw, 0, ph), mode="replicate")
    out = torch.empty_like(xp)
    t = max(f, tile - tile % f)
    for y in range(0, xp.shape[2], t):
        for x0 in range(0, xp.shape[3], t):
            patch = xp[:, :, y : y + t, x0 : x0 + t]
            out[:, :, y : y + t, x0 : x0 + t] = ae(patch)[0].clamp(-1, 1)
    return out[:, :, :h, :w]


def load_reconstructor(path: str | Path, use_ema: bool = True, tile: int = 512,
                       device: str | None = None) -> Callable[[np.ndarray], np.ndarray]:
    ae = load_autoencoder(path, use_ema, device)
    dev = next(ae.parameters()).device

    def fn(batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).permute(0, 3, 1, 2).to(dev) * 2 - 1
        y = reconstruct_tiled(ae, x, tile)
        return ((y + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()

    return fn
