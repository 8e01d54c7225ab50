"""Reconstruct images with a trained checkpoint: the `--checkpoint` path of `textinfuse eval`.

`load_reconstructor(path)` takes a checkpoint folder (`ckpt/step_N`), a run's `ckpt/` folder, a run
folder (its latest checkpoint) or a weights file (`model.safetensors`/`ema.safetensors`) and returns a
callable mapping a float32 batch (N, H, W, 3) in [0, 1] to reconstructions of the same shape and range. Any H and W work: images are padded to a multiple of the
model's downsampling factor and processed in tiles of at most `tile` px, so large pages fit in memory.
Checkpoints may come from anyone: only safetensors are read (see training/safeio.py), and a broken one is
refused in one line naming the file.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import checkpoint
from .models import MODELS, Autoencoder, build_model
from .safeio import LoadError, check_tensors, first_line, read_safetensors


def resolve_checkpoint(path: str | Path) -> Path:
    """The checkpoint folder for a checkpoint, a `ckpt/` folder or a run folder (the step its `latest`
    names: a bare `step_N` here, nothing else)."""
    p = Path(path)
    for cand in (p, p / "ckpt"):
        if (cand / "model.safetensors").exists():
            return cand
        if (cand / "latest").exists() or (cand / "latest").is_symlink():
            try:
                return checkpoint.read_latest(cand)
            except LoadError as e:
                newest = checkpoint.step_folders(cand)
                hint = f"; newest here: {newest[0]} (pass it as --checkpoint)" if newest else ""
                raise LoadError(f"{e}{hint}") from None
    raise FileNotFoundError(errno.ENOENT, "no checkpoint here (model.safetensors or a `latest` pointer)", str(path))


def _model_name(f: Path, meta: dict[str, str]) -> str:
    """The model the weights' metadata names (the resolved config `textinfuse train` stores in each file)."""
    if "config" not in meta:
        raise LoadError(f"{f}: no `config` in its metadata (not written by `textinfuse train`)")
    try:
        config = json.loads(meta["config"])
    except ValueError as e:
        raise LoadError(f"{f}: metadata `config` is not JSON ({first_line(e)})") from None
    name = config.get("model") if isinstance(config, dict) else None
    if not isinstance(name, str):
        raise LoadError(f"{f}: metadata `config` names no model (model: {str(name)[:40]!r})")
    if name not in MODELS:
        raise LoadError(f"{f}: metadata names model {name[:40]!r}, not one of {', '.join(MODELS)}")
    return name


def load_autoencoder(path: str | Path, use_ema: bool = True, device: str | None = None) -> Autoencoder:
    """The autoencoder of a checkpoint (see resolve_checkpoint) or of a `.safetensors` file written by the
    trainer. Only safetensors are read; a torn, foreign or tampered file is a LoadError (ValueError) in one
    line naming it, or FileNotFoundError."""
    p = Path(path)
    weights = p if p.suffix == ".safetensors" and p.is_file() else \
        resolve_checkpoint(p) / ("ema.safetensors" if use_ema else "model.safetensors")
    tensors, meta = read_safetensors(weights)
    name = _model_name(weights, meta)
    ae = build_model(name)
    got = {k: v for k, v in tensors.items() if k.startswith("net.ae.")}
    check_tensors(weights, got, {f"net.ae.{k}": v for k, v in ae.state_dict().items()},
                  hint=f" (its metadata names model {name})")
    ae.load_state_dict({k[len("net.ae."):]: v for k, v in got.items()})
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
