"""Checkpoints: `step_NNNNNNNN/` with `model.safetensors` (autoencoder + projection), `ema.safetensors`
(both carry the resolved config as metadata) and `state.pt` (optimizer, step, stage, RNG, data position)."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file


def _flat(modules: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    return {f"{name}.{k}": v.detach().cpu().contiguous() for name, m in modules.items()
            for k, v in m.state_dict().items()}


def _unflat(modules: dict[str, torch.nn.Module], tensors: dict[str, torch.Tensor]) -> None:
    for name, m in modules.items():
        pre = f"{name}."
        m.load_state_dict({k[len(pre):]: v for k, v in tensors.items() if k.startswith(pre)})


def save(ckpt_dir: Path, modules: dict[str, torch.nn.Module], ema: dict[str, torch.nn.Module],
         optimizer: torch.optim.Optimizer, state: dict[str, Any], config: dict) -> Path:
    """Write a checkpoint atomically (temp folder, then rename) and point `latest` at it."""
    final = ckpt_dir / f"step_{state['step']:08d}"
    tmp = ckpt_dir / f".tmp_{final.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    meta = {"config": json.dumps(config), "step": str(state["step"])}
    save_file(_flat(modules), str(tmp / "model.safetensors"), metadata=meta)
    save_file(_flat(ema), str(tmp / "ema.safetensors"), metadata=meta)
    rng = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save({"optimizer": optimizer.state_dict(), "state": state, "rng": rng, "config": config},
               tmp / "state.pt")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    (ckpt_dir / "latest").write_text(final.name + "\n")
    return final


def latest(ckpt_dir: Path) -> Path | None:
    p = ckpt_dir / "latest"
    return ckpt_dir / p.read_text().strip() if p.exists() else None


def load(path: Path, modules: dict[str, torch.nn.Module], ema: dict[str, torch.nn.Module],
         optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Restore weights, optimizer and RNG in place; returns the saved loop state."""
    _unflat(modules, load_file(str(path / "model.safetensors")))
    _unflat(ema, load_file(str(path / "ema.safetensors")))
    blob = torch.load(path / "state.pt", map_location="cpu", weights_only=False)
    optimizer.load_state_dict(blob["optimizer"])
    torch.set_rng_state(blob["rng"]["torch"])
    np.random.set_state(blob["rng"]["numpy"])
    random.setstate(blob["rng"]["python"])
    if "cuda" in blob["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(blob["rng"]["cuda"])
    return blob["state"]
