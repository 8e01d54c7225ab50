"""`TrainConfig`: nested frozen dataclasses, loaded strictly with `textinfuse.configio` (no torch here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from textinfuse.configio import ConfigError, load


@dataclass(frozen=True)
class StageConfig:
    """One curriculum stage. resolution: square crop side in pixels; buckets: optional (width, height)
    aspect-ratio buckets (each batch uses one, chosen at random), overriding resolution; weights: source
    name -> mixing weight (normalised); m_cos / m_dist: alignment margins (0 = strict); l1 / lpips / align:
    loss weights (a teacher whose weight is 0 is not run in the stage); lr: AdamW learning rate; steps:
    optimiser steps in this stage. batch_size: images per micro-batch per rank (0 or null: data.batch_size);
    grad_accum: micro-batches per optimiser step (>= 1; the loss is weighted by each micro-batch's share
    of the images, so 2 x B accumulated is one step of 2B on the same images). fit: how an image becomes a
    training crop: `crop` (default) cuts it at full size (scaling up only images too small); `resize`
    scales it so it just covers the crop (down or up, aspect kept), then crops the excess of its longer
    side, so a low-resolution stage sees whole pages rather than fragments."""

    name: str
    steps: int
    weights: dict[str, float]
    resolution: int = 256
    buckets: tuple[tuple[int, int], ...] = ()
    m_cos: float = 0.0
    m_dist: float = 0.0
    l1: float = 1.0
    lpips: float = 0.0
    align: float = 0.0
    lr: float = 1e-4
    batch_size: int | None = None
    grad_accum: int = 1
    fit: Literal["crop", "resize"] = "crop"

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError(f"stage {self.name}: steps must be >= 0")
        if self.batch_size is not None and self.batch_size < 0:
            raise ValueError(f"stage {self.name}: batch_size must be >= 1, or 0 for data.batch_size "
                             f"(got {self.batch_size})")
        if self.grad_accum < 1:
            raise ValueError(f"stage {self.name}: grad_accum must be >= 1 (got {self.grad_accum})")
        if not self.weights or any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) <= 0:
            raise ValueError(f"stage {self.name}: weights need a positive total and no negative entry")


@dataclass(frozen=True)
class DataConfig:
    """sources: name -> shard folder (or a .tar glob); `--source NAME=DIR` fills it. holdout_shards: the last
    N shards of each source with more than N shards are kept out of training for evaluation (0: evaluate
    on training shards). workers: DataLoader processes per rank. batch_size: images per micro-batch per
    rank where a stage does not set its own."""

    sources: dict[str, str] = field(default_factory=dict)
    batch_size: int = 8
    workers: int = 2
    shuffle_buffer: int = 256
    holdout_shards: int = 1


@dataclass(frozen=True)
class TeacherConfig:
    """Local weight files; empty means not available. allow_random_teachers: use random stand-ins instead
    of refusing (tests and smoke runs only; the numbers are then meaningless). dinov2_layer: the block
    whose output is aligned to, 1..depth (checked against the teacher when it loads; 12 = the middle of
    DINOv2-L's 24). dino_resolution: 0 = the teacher sees the image at one patch (14 px) per latent
    position (f16 at 256 px: 224 px; f32 at 256 px: only 112 px); N > 0 = about N px on the longer side,
    an integer number of patches per latent position, its features mean-pooled to the latent grid.
    adaptive_weight: false (default) = the alignment loss is weighted by the stage's fixed `align` (the
    report's λ); true = VA-VAE's adaptive weight, λ times ||∇rec|| / ||∇align|| at the encoder's last conv."""

    lpips_vgg: str = ""
    lpips_heads: str = ""
    dinov2: str = ""
    dinov2_layer: int = 12
    dino_resolution: int = 0
    allow_random_teachers: bool = False
    align_positions: int = 256
    adaptive_weight: bool = False

    def __post_init__(self) -> None:
        if self.dinov2_layer < 1:
            raise ValueError(f"dinov2_layer must be >= 1 (a transformer block, 1..depth; got {self.dinov2_layer})")
        if self.dino_resolution < 0:
            raise ValueError(f"dino_resolution must be >= 0 px (got {self.dino_resolution})")


@dataclass(frozen=True)
class ArchConfig:
    """The model's shortcuts (training/models.py; `build_model(model, **arch)`). skip: `global` (default:
    the report's global skip, pixels folded into the latent), `local` (the report's local skip connections:
    DC-AE shortcuts around every down/upsampling stage, no global one) or `none`. decoder_skip: with global,
    also add the skip's mirror to the decoder output; the report does not specify this, this project added
    it (on by default, as the first checkpoints were trained)."""

    skip: Literal["global", "local", "none"] = "global"
    decoder_skip: bool = True


@dataclass(frozen=True)
class MemoryConfig:
    """checkpointing: recompute each encoder/decoder block's activations in backward instead of keeping
    them (torch.utils.checkpoint; less memory, about a third more compute)."""

    checkpointing: bool = False


@dataclass(frozen=True)
class OptimConfig:
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    warmup_steps: int = 0
    ema_decay: float = 0.999


@dataclass(frozen=True)
class EvalConfig:
    """every: evaluate (PSNR on held-out samples, reconstruction grid) every N steps and at the end."""

    every: int = 500
    num_samples: int = 8
    resolution: int = 256
    ned_samples: int = 0  # held-out images OCR'd for `ned` at eval steps (bundled rapidocr; 0 = off)


@dataclass(frozen=True)
class TrainConfig:
    """compile: torch.compile the model (off by default; when compilation fails, one warning and the run
    goes on uncompiled)."""

    model: str
    stages: tuple[StageConfig, ...]
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    arch: ArchConfig = field(default_factory=ArchConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    compile: bool = False
    data: DataConfig = field(default_factory=DataConfig)
    teachers: TeacherConfig = field(default_factory=TeacherConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    log_every: int = 10
    ckpt_every: int = 1000

    def __post_init__(self) -> None:
        if not self.stages:
            raise ValueError("stages: need at least one stage")

    @property
    def total_steps(self) -> int:
        return sum(s.steps for s in self.stages)


TEACHER_PATHS = {"lpips_vgg": "file", "lpips_heads": "file", "dinov2": "folder"}


def check_teacher_paths(t: TeacherConfig) -> None:
    """Refuse a teacher path that is set but is not there, before anything loads: weights are local only,
    and a missing DINOv2 folder would otherwise be taken for a hub id and fetched from the network."""
    for key, kind in TEACHER_PATHS.items():
        p = getattr(t, key)
        if p and not (Path(p).is_dir() if kind == "folder" else Path(p).is_file()):
            why = f"not a {kind}" if Path(p).exists() else f"no such {kind}"
            raise ConfigError(f"teachers.{key}: {p}: {why} (weights are local only; see README)")


def load_train_config(path: str | Path | None, overrides: list[str] = (), sources: list[str] = ()) -> TrainConfig:
    """Load a config file with `--source NAME=DIR` and `--set KEY=VALUE` overrides; checks that every
    source a stage uses is given and that teacher paths exist (the shard folders are checked by `train`)."""
    extra = []
    for s in sources:
        name, sep, d = s.partition("=")
        if not sep or not name or not d:
            raise ConfigError(f"--source {s!r}: expected NAME=DIR")
        extra.append(f"data.sources.{name}={d}")
    cfg = load(TrainConfig, path, [*extra, *overrides])
    check_teacher_paths(cfg.teachers)
    used = {n for st in cfg.stages for n, w in st.weights.items() if w > 0}
    missing = sorted(used - set(cfg.data.sources))
    if missing:
        raise ConfigError(f"{path}: stage weights use source {missing[0]!r} with no shards "
                          f"(give --source {missing[0]}=DIR)")
    return cfg
