"""Checkpoints: `ckpt/step_NNNNNNNN/` with `model.safetensors` (autoencoder + projection), `ema.safetensors`
(both carry the resolved config as metadata), `optim.safetensors` (optimizer moments, torch/CUDA RNG) and
`state.json` (format, loop state, param groups, Python/numpy RNG, config); `ckpt/latest` names the newest.

Nothing here unpickles: a run folder may come from anyone, and torch.save's pickle runs code on load. The
old format's `state.pt` is refused unread. A broken newest checkpoint (torn write, tampering) is named in a
warning and the newest older one that loads is used instead (`resume`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from . import ckpt_state
from .safeio import LoadError, check_tensors, read_json, read_safetensors, regular_file

log = logging.getLogger(__name__)
FORMAT = 2
STEP_NAME = re.compile(r"step_(\d{1,12})")


def _flat(modules: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    return {f"{name}.{k}": v.detach().cpu().contiguous() for name, m in modules.items()
            for k, v in m.state_dict().items()}


def _unflat(modules: dict[str, torch.nn.Module], tensors: dict[str, torch.Tensor]) -> None:
    for name, m in modules.items():
        pre = f"{name}."
        m.load_state_dict({k[len(pre):]: v for k, v in tensors.items() if k.startswith(pre)})


def _remove(p: Path) -> None:
    """Delete p; a symlink is unlinked, never followed (its target may be anything)."""
    if p.is_symlink() or p.is_file():
        p.unlink()
    elif p.is_dir():
        shutil.rmtree(p)


def replace_text(p: Path, text: str) -> None:
    """Write p atomically; a symlink at p is replaced, not written through."""
    tmp = p.with_name(f".{p.name}.tmp")
    _remove(tmp)
    tmp.write_text(text)
    os.replace(tmp, p)


def save(ckpt_dir: Path, modules: dict[str, torch.nn.Module], ema: dict[str, torch.nn.Module],
         optimizer: torch.optim.Optimizer, state: dict[str, Any], config: dict) -> Path:
    """Write a checkpoint atomically (temp folder, then rename) and point `latest` at it."""
    final = ckpt_dir / f"step_{state['step']:08d}"
    tmp = ckpt_dir / f".tmp_{final.name}"
    _remove(tmp)
    tmp.mkdir(parents=True)
    meta = {"config": json.dumps(config), "step": str(state["step"])}
    save_file(_flat(modules), str(tmp / "model.safetensors"), metadata=meta)
    save_file(_flat(ema), str(tmp / "ema.safetensors"), metadata=meta)
    opt_t, opt_j = ckpt_state.optimizer_to_files(optimizer)
    rng_t, rng_j = ckpt_state.rng_to_files()
    save_file({**opt_t, **rng_t}, str(tmp / "optim.safetensors"), metadata={"format": str(FORMAT)})
    blob = {"format": FORMAT, "state": state, "optimizer": opt_j, "rng": rng_j, "config": config}
    (tmp / "state.json").write_text(json.dumps(blob))
    _remove(final)
    tmp.rename(final)
    replace_text(ckpt_dir / "latest", final.name + "\n")
    return final


def read_latest(ckpt_dir: Path) -> Path:
    """The step folder `ckpt_dir/latest` names: a bare `step_N` that exists here, nothing else."""
    p = regular_file(ckpt_dir / "latest")
    with p.open("rb") as f:
        name = f.read(64).decode("ascii", "replace").strip()
    if not STEP_NAME.fullmatch(name):
        raise LoadError(f"{p}: names {name[:40]!r}, not a step folder (step_NNNNNNNN)")
    if not (ckpt_dir / name).is_dir():
        raise LoadError(f"{p}: names {name}, which does not exist")
    return ckpt_dir / name


def latest(ckpt_dir: Path) -> Path | None:
    """The newest checkpoint `latest` names, or None (no pointer, or a bad one)."""
    try:
        return read_latest(ckpt_dir)
    except (LoadError, OSError):
        return None


def step_folders(ckpt_dir: Path) -> list[Path]:
    """`step_N` folders, newest first."""
    found = [d for d in ckpt_dir.iterdir() if STEP_NAME.fullmatch(d.name) and d.is_dir()]
    return sorted(found, key=lambda d: int(d.name[5:]), reverse=True)


def load(path: Path, modules: dict[str, torch.nn.Module], ema: dict[str, torch.nn.Module],
         optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Restore weights, optimizer and RNG in place; returns the saved loop state. Everything is read and
    checked first: on LoadError or FileNotFoundError nothing has been changed."""
    if not (path / "state.json").exists() and (path / "state.pt").exists():
        raise LoadError(f"{path / 'state.pt'}: old pickle checkpoint format, not loaded (pickle can run code; "
                        "checkpoints are read from safetensors + JSON only)")
    files = {n: path / f for n, f in (("model", "model.safetensors"), ("ema", "ema.safetensors"),
                                      ("optim", "optim.safetensors"), ("state", "state.json"))}
    weights = {}
    for name, mods in (("model", modules), ("ema", ema)):
        weights[name], meta = read_safetensors(files[name])
        check_tensors(files[name], weights[name], _flat(mods), hint=_saved_model(meta))
    blob = read_json(files["state"])
    js = str(files["state"])
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise LoadError(f"{js}: not a format-{FORMAT} checkpoint state (format {str(blob.get('format'))[:20]})"
                        if isinstance(blob, dict) else f"{js}: a {type(blob).__name__}, not an object")
    loop = ckpt_state.check_loop_state(js, blob.get("state"), int(path.name[5:]))
    tensors = read_safetensors(files["optim"])[0]
    opt_sd = ckpt_state.optimizer_from_files(str(files["optim"]), js, tensors, blob.get("optimizer"), optimizer)
    rng = ckpt_state.check_rng(str(files["optim"]), js, tensors, blob.get("rng"))
    try:  # validates group sizes before it changes anything; the checks above make a failure unlikely
        optimizer.load_state_dict(opt_sd)
    except (ValueError, KeyError, RuntimeError) as e:
        raise LoadError(f"{files['optim']}: optimizer state refused ({type(e).__name__}: {e})") from None
    _unflat(modules, weights["model"])
    _unflat(ema, weights["ema"])
    ckpt_state.set_rng(rng)
    return loop


def _saved_model(meta: dict[str, str]) -> str:
    """`(saved by model X)` from a weights file's metadata, when it says: the usual cause of a mismatch."""
    try:
        model = json.loads(meta.get("config", "")).get("model")
    except (ValueError, AttributeError):
        return ""
    return f" (saved by model {model[:40]!r})" if isinstance(model, str) else ""


def _why(e: Exception) -> str:
    if isinstance(e, OSError) and e.filename:
        return f"{e.filename}: {e.strerror or e}"
    return str(e)


def resume(ckpt_dir: Path, modules: dict[str, torch.nn.Module], ema: dict[str, torch.nn.Module],
           optimizer: torch.optim.Optimizer) -> tuple[Path, dict[str, Any]] | None:
    """Load the checkpoint `latest` names or, when it does not load, the newest older one that does
    (each refusal a warning). None when there is nothing to resume; LoadError when nothing loads."""
    if not ckpt_dir.is_dir():
        return None
    folders, pointer, first = step_folders(ckpt_dir), None, None
    if (ckpt_dir / "latest").exists() or (ckpt_dir / "latest").is_symlink():
        try:
            newest = read_latest(ckpt_dir)
            folders = [newest] + [f for f in folders if int(f.name[5:]) < int(newest.name[5:])]
        except (LoadError, OSError) as e:
            pointer = _why(e)
            log.warning("%s; trying the newest step_* folder instead", pointer)
    if not folders:
        if pointer:
            raise LoadError(f"cannot resume from {ckpt_dir}: {pointer}; no step_* folder to resume from")
        return None
    for d in folders:
        try:
            return d, load(d, modules, ema, optimizer)
        except (LoadError, OSError) as e:
            first = first or _why(e)
            log.warning("%s; falling back to an older checkpoint", _why(e))
    raise LoadError(f"cannot resume from {ckpt_dir}: {first}; no older checkpoint loads")
