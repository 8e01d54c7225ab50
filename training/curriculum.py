"""The curriculum: stages in order, and where a global step falls in them (no torch here)."""

from __future__ import annotations

from .config import StageConfig, TrainConfig


def stage_at(cfg: TrainConfig, step: int) -> tuple[int, int]:
    """(stage index, step within that stage) for global step `step` (0-based); past the end -> last stage."""
    start = 0
    for i, s in enumerate(cfg.stages):
        if step < start + s.steps:
            return i, step - start
        start += s.steps
    return len(cfg.stages) - 1, step - (start - cfg.stages[-1].steps)


def stage_start(cfg: TrainConfig, index: int) -> int:
    """Global step at which stage `index` begins."""
    return sum(s.steps for s in cfg.stages[:index])


def normalised_weights(stage: StageConfig) -> dict[str, float]:
    """Source weights of a stage scaled to sum to 1 (zero-weight sources dropped)."""
    total = sum(stage.weights.values())
    return {k: v / total for k, v in stage.weights.items() if v > 0}


def lr_at(cfg: TrainConfig, step: int) -> float:
    """The stage's lr, with linear warmup over the first `optim.warmup_steps` global steps."""
    lr = cfg.stages[stage_at(cfg, step)[0]].lr
    w = cfg.optim.warmup_steps
    return lr * min(1.0, (step + 1) / w) if w > 0 else lr


def micro_batch(cfg: TrainConfig, stage: StageConfig) -> int:
    """Images per micro-batch per rank in `stage`: its own batch_size, or data.batch_size when 0/None.
    An optimiser step takes stage.grad_accum of them."""
    return stage.batch_size or cfg.data.batch_size
