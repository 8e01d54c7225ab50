"""Use a trained autoencoder: `load_autoencoder` (latents for a diffusion model), `load_reconstructor` (the
`--checkpoint` path of `textinfuse eval`) and `load_module` (the bare `Autoencoder` nn.Module).

Each takes a run folder (its latest checkpoint), a run's `ckpt/` folder, a checkpoint folder
(`ckpt/step_N`), an export folder (`textinfuse export`: `config.json` + `model.safetensors`) or a weights
file (`model.safetensors`/`ema.safetensors`, or an export's `model.safetensors`). The architecture comes
from the resolved training config stored in the weights' metadata, so no config file is needed.

Images are float tensors (N, 3, H, W) in [-1, 1], the model's own convention; `encode` also takes uint8
tensors (N, 3, H, W), as training.data yields them, and uint8 numpy arrays (N, H, W, 3) or (H, W, 3).
Any H and W work: images are padded (replicate) to a multiple of the model's factor f and processed in
tiles of at most `tile` px without overlap, so large pages fit in memory.

Weights may come from anyone: only safetensors and JSON are read (see training/safeio.py), and a broken,
foreign or tampered file is refused in one line naming it (LoadError, a ValueError).
"""

from __future__ import annotations

import errno
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import checkpoint
from .models import MODELS, Autoencoder, build_model
from .safeio import LoadError, check_tensors, first_line, read_json, read_safetensors

log = logging.getLogger(__name__)
EXPORT_FORMAT = "textinfuse-autoencoder"  # `format` in an export's config.json and weights metadata
STATS_FILE = "latent_stats.json"
ARCH_KEYS = ("skip", "decoder_skip")  # the `arch` config keys build_model takes as keyword arguments


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


@dataclass(frozen=True)
class Weights:
    """Where a path's weights are: `file` (.safetensors), the export's `config.json` (exports only) and
    `home`, the run or export folder a `latent_stats.json` belongs in (None: unknown)."""

    file: Path
    export_config: Path | None
    home: Path | None


def is_export(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file() and (path / "model.safetensors").exists()


def locate(path: str | Path, use_ema: bool = True) -> Weights:
    """The weights file a path names (see the module docstring); an export holds one set of weights, so
    `use_ema` only chooses between a checkpoint's `ema.safetensors` and `model.safetensors`."""
    p = Path(path)
    if p.suffix == ".safetensors" and p.is_file():
        step_dir = p.parent
        home = step_dir.parent.parent if step_dir.parent.name == "ckpt" else step_dir
        return Weights(p, step_dir / "config.json" if is_export(step_dir) else None, home)
    if is_export(p):
        return Weights(p / "model.safetensors", p / "config.json", p)
    ck = resolve_checkpoint(p)
    return Weights(ck / ("ema.safetensors" if use_ema else "model.safetensors"), None,
                   ck.parent.parent if ck.parent.name == "ckpt" else None)


def _train_config(f: Path, meta: dict[str, str]) -> dict:
    """The resolved training config `textinfuse train` stores in each weights file's metadata."""
    if "config" not in meta:
        raise LoadError(f"{f}: no `config` in its metadata (not written by `textinfuse train`)")
    try:
        config = json.loads(meta["config"])
    except ValueError as e:
        raise LoadError(f"{f}: metadata `config` is not JSON ({first_line(e)})") from None
    if not isinstance(config, dict):
        raise LoadError(f"{f}: metadata `config` names no model (a {type(config).__name__}, not an object)")
    return config


def _model_name(f: Path, config: dict) -> str:
    name = config.get("model")
    if not isinstance(name, str):
        raise LoadError(f"{f}: metadata `config` names no model (model: {str(name)[:40]!r})")
    if name not in MODELS:
        raise LoadError(f"{f}: metadata names model {name[:40]!r}, not one of {', '.join(MODELS)}")
    return name


def _arch(f: Path, config: dict) -> dict:
    """The config's `arch` options build_model takes (empty when the config has none)."""
    arch = config.get("arch", {})
    if not isinstance(arch, dict):
        raise LoadError(f"{f}: metadata `config.arch` is a {type(arch).__name__}, not an object")
    return {k: arch[k] for k in ARCH_KEYS if k in arch}


def _step(f: Path, meta: dict[str, str]) -> int | None:
    """The training step of the weights: their metadata's `step`, else their `step_N` folder's name."""
    text = meta.get("step", "")
    if text.isdigit() and len(text) <= 12:
        return int(text)
    m = checkpoint.STEP_NAME.fullmatch(f.parent.name)
    return int(m.group(1)) if m else None


@dataclass
class Loaded:
    """A loaded autoencoder and what its weights file says about it."""

    module: Autoencoder
    weights: Weights
    model: str  # registry name, e.g. "f16c64"
    arch: dict  # build_model's keyword arguments (empty for the default architecture)
    train_config: dict  # the resolved training config of the run
    kind: str  # "ema" or "model" (raw) weights
    step: int | None


def load_with_info(path: str | Path, use_ema: bool = True, device: str | None = None) -> Loaded:
    """Read, check and load the weights `path` names (see `locate`)."""
    w = locate(path, use_ema)
    tensors, meta = read_safetensors(w.file)
    config = _train_config(w.file, meta)
    name, arch = _model_name(w.file, config), _arch(w.file, config)
    exported = meta.get("format") == EXPORT_FORMAT
    if w.export_config is not None:
        _check_export_config(w.export_config, name, arch)
    try:  # build_model takes the arch options only where the model code knows them; default: none
        ae = build_model(name, **arch) if arch else build_model(name)
    except (TypeError, ValueError, KeyError) as e:
        raise LoadError(f"{w.file}: model {name} with arch {arch} cannot be built here ({first_line(e)})") from None
    prefix = "" if exported else "net.ae."  # a checkpoint also holds the projection (net.proj.*)
    got = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    hint = f" (its metadata names model {name})"
    check_tensors(w.file, {prefix + k: v for k, v in got.items()},
                  {prefix + k: v for k, v in ae.state_dict().items()}, hint=hint)
    ae.load_state_dict(got)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    kind = meta["weights"] if meta.get("weights") in ("ema", "model") else \
        ("ema" if w.file.name == "ema.safetensors" else "model")
    return Loaded(ae.to(dev).eval(), w, name, arch, config, kind, _step(w.file, meta))


def _check_export_config(f: Path, name: str, arch: dict) -> None:
    """An export's config.json must describe the weights beside it."""
    c = read_json(f)
    if not isinstance(c, dict) or c.get("format") != EXPORT_FORMAT:
        what = str(c.get("format"))[:40] if isinstance(c, dict) else f"a {type(c).__name__}"
        raise LoadError(f"{f}: not a {EXPORT_FORMAT} export (format: {what})")
    if c.get("model") != name or c.get("arch", {}) != arch:
        raise LoadError(f"{f}: describes model {str(c.get('model'))[:40]} {c.get('arch', {})}, but "
                        f"model.safetensors holds {name} {arch}")


def load_module(path: str | Path, use_ema: bool = True, device: str | None = None) -> Autoencoder:
    """The `Autoencoder` nn.Module (eval mode) of a run, checkpoint, export or weights file."""
    return load_with_info(path, use_ema, device).module


def read_stats(path: str | Path, channels: int) -> dict:
    """A `latent_stats.json`, checked: `mean` and `std` hold one finite number per latent channel, std > 0."""
    s = read_json(path)
    if not isinstance(s, dict):
        raise LoadError(f"{path}: a {type(s).__name__}, not an object")
    for key in ("mean", "std"):
        v = s.get(key)
        if not isinstance(v, list) or len(v) != channels or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v):
            raise LoadError(f"{path}: `{key}` is not a list of {channels} finite numbers (one per latent channel)")
    if min(s["std"]) <= 0:
        raise LoadError(f"{path}: `std` holds a value <= 0")
    return s


def map_tiles(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, t: int, out_ch: int,
              up: int = 1, down: int = 1) -> torch.Tensor:
    """Apply fn to t×t tiles of x (N, C, H, W), no overlap; fn maps a tile to `out_ch` channels scaled in
    size by up/down (H and W: multiples of down; t a multiple of down). Tiles are passed contiguous: a
    view of an NHWC array (permuted) would send the convolutions down another path, slower on CPU and not
    bitwise equal to the same tile laid out normally."""
    n, _, h, w = x.shape
    out = x.new_empty((n, out_ch, h * up // down, w * up // down))
    for y in range(0, h, t):
        for x0 in range(0, w, t):
            ys, xs = slice(y * up // down, (y + t) * up // down), slice(x0 * up // down, (x0 + t) * up // down)
            out[:, :, ys, xs] = fn(x[:, :, y : y + t, x0 : x0 + t].contiguous())
    return out


def _factor(ae: Autoencoder) -> int:
    return int(ae.cfg.f) if hasattr(ae, "cfg") and hasattr(ae.cfg, "f") else 16


def _tile(ae: Autoencoder, tile: int) -> int:
    f = _factor(ae)
    return max(f, tile - tile % f)


def _pad(x: torch.Tensor, f: int) -> torch.Tensor:
    return F.pad(x, (0, -x.shape[3] % f, 0, -x.shape[2] % f), mode="replicate")


@torch.no_grad()
def reconstruct_tiled(ae: Autoencoder, x: torch.Tensor, tile: int = 512) -> torch.Tensor:
    """x: (N, 3, H, W) in [-1, 1] -> reconstruction of the same shape, tile by tile (no overlap)."""
    y = map_tiles(lambda p: ae(p)[0].clamp(-1, 1), _pad(x, _factor(ae)), _tile(ae, tile), 3)
    return y[:, :, : x.shape[2], : x.shape[3]]


def as_images(images: torch.Tensor | np.ndarray, device: torch.device) -> torch.Tensor:
    """float32 (N, 3, H, W) in [-1, 1] on `device` from a float tensor (N, 3, H, W) in [-1, 1] (used as
    is), a uint8 tensor (N, 3, H, W), or a uint8 array (N, H, W, 3) or (H, W, 3)."""
    if isinstance(images, np.ndarray):
        if images.dtype != np.uint8 or images.ndim not in (3, 4) or images.shape[-1] != 3:
            raise ValueError(f"images: a numpy {images.dtype} array {images.shape}; expected uint8 (N, H, W, 3)")
        a = images[None] if images.ndim == 3 else images
        images = torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2)
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        what = tuple(images.shape) if hasattr(images, "shape") else type(images).__name__
        raise ValueError(f"images: {what}; expected a tensor (N, 3, H, W)")
    if images.dtype == torch.uint8:
        return images.to(device).float() / 127.5 - 1
    if not images.is_floating_point():
        raise ValueError(f"images: a {images.dtype} tensor; expected float in [-1, 1] or uint8")
    return images.to(device, torch.float32)


class LatentAutoencoder:
    """A trained autoencoder for latent diffusion: `encode(images) -> latents`, `decode(latents) -> images`.

    Latents are normalised per channel, (z - mean) / std, with `latent_stats.json` (`textinfuse
    latent-stats`); without one, `normalised` is False and latents are the raw encoder output. Images:
    see `as_images`; decode returns float32 (N, 3, H, W) in [-1, 1]. Both run without gradients, on
    `device`, in float32; `module` is the nn.Module itself (for gradients, or `reconstruct_tiled`).
    """

    def __init__(self, module: Autoencoder, mean: list[float] | None = None, std: list[float] | None = None,
                 tile: int = 512, model: str = "", kind: str = "ema", step: int | None = None) -> None:
        self.module, self.model, self.kind, self.step = module, model, kind, step
        self.device = next(module.parameters()).device
        self.f, self.c = int(module.cfg.f), int(module.cfg.c)
        self.tile = _tile(module, tile)
        self.normalised = mean is not None and std is not None
        self.mean = torch.tensor(mean or [0.0] * self.c, device=self.device).view(1, -1, 1, 1)
        self.std = torch.tensor(std or [1.0] * self.c, device=self.device).view(1, -1, 1, 1)

    def normalise(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self.mean) / self.std if self.normalised else z

    def denormalise(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.std + self.mean if self.normalised else z

    @torch.no_grad()
    def encode(self, images: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Latents (N, c, ceil(H/f), ceil(W/f)), normalised when `normalised`."""
        x = _pad(as_images(images, self.device), self.f)
        return self.normalise(map_tiles(self.module.encode, x, self.tile, self.c, down=self.f))

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """Images (N, 3, h*f, w*f) in [-1, 1] from latents (N, c, h, w) as `encode` gives them; `size`
        (H, W) crops to an encoded image's size (encode pads to a multiple of f)."""
        z = self.denormalise(latents.to(self.device, torch.float32))
        y = map_tiles(lambda p: self.module.decode(p).clamp(-1, 1), z, self.tile // self.f, 3, up=self.f)
        return y if size is None else y[:, :, : size[0], : size[1]]


def load_autoencoder(path: str | Path, use_ema: bool = True, device: str | None = None, tile: int = 512,
                     stats: str | Path | bool = True) -> LatentAutoencoder:
    """The autoencoder of a run, checkpoint, export or weights file, as a `LatentAutoencoder`.

    stats: True uses the `latent_stats.json` of the run or export folder (a warning, and raw latents,
    when there is none); False: raw latents; a path: that stats file. use_ema: a checkpoint's EMA weights
    (default) or its raw ones. device: default cuda when available."""
    lo = load_with_info(path, use_ema, device)
    mean = std = None
    f = Path(stats) if not isinstance(stats, bool) else \
        (lo.weights.home / STATS_FILE if stats and lo.weights.home is not None else None)
    if f is not None and (f.exists() or not isinstance(stats, bool)):
        s = read_stats(f, lo.module.cfg.c)
        mean, std = s["mean"], s["std"]
        if (s.get("checkpoint_step"), s.get("weights")) != (lo.step, lo.kind):
            log.warning("%s: computed on the %s weights of step %s, loaded: %s weights of step %s; using them",
                        f, s.get("weights"), s.get("checkpoint_step"), lo.kind, lo.step)
    elif stats:
        log.warning("%s: no %s; latents are not normalised (run `textinfuse latent-stats`)",
                    lo.weights.home or lo.weights.file, STATS_FILE)
    return LatentAutoencoder(lo.module, mean, std, tile, lo.model, lo.kind, lo.step)


def load_reconstructor(path: str | Path, use_ema: bool = True, tile: int = 512,
                       device: str | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """A callable mapping float32 (N, H, W, 3) in [0, 1] to reconstructions of the same shape and range."""
    ae = load_module(path, use_ema, device)
    dev = next(ae.parameters()).device

    def fn(batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).permute(0, 3, 1, 2).to(dev) * 2 - 1
        y = reconstruct_tiled(ae, x, tile)
        return ((y + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()

    return fn
