"""`AblationConfig`: one experiment, every arm. Loaded strictly with `textinfuse.configio` (no torch here).

An arm is the shared training recipe (`train`: a TrainConfig without stages; `stages`: the shared
schedule without source weights) plus the arm's own source weights per stage. So arms can differ only in
the data they see: `train_config(arm, seed, dirs)` assembles each arm's TrainConfig, and everything but
`stages[*].weights` and `data.sources` is the same for every arm by construction.

Relative paths in `sources[*].inputs` and `eval.*` are read from the config file's folder, so a config
works from any working directory.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from textinfuse.configio import ConfigError, from_dict, load, to_dict


@dataclass(frozen=True)
class SourceSpec:
    """Data one or more arms train on, made by TextInfuse itself in `DIR/data/NAME`.

    kind `render`: `textinfuse render --recipe RECIPE --set ...` (`set` holds RenderJobConfig overrides,
    e.g. `num_samples=2000`, `render.text.char_px=[18, 30]`); `flat`: background colours (#rrggbb) drawn
    as flat images instead of the photos (text without natural backgrounds).
    kind `filter`: `textinfuse filter --input INPUTS --set ...` (FilterConfig overrides)."""

    kind: Literal["render", "filter"]
    inputs: tuple[str, ...] = ()
    recipe: str = ""
    set: tuple[str, ...] = ()
    flat: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind == "filter" and not self.inputs:
            raise ValueError("a filter source needs inputs")
        if self.kind == "render" and self.inputs:
            raise ValueError("a render source takes no inputs (backgrounds go in set: render.backgrounds.sources)")
        for c in self.flat:
            if not (len(c) == 7 and c[0] == "#" and all(ch in "0123456789abcdefABCDEF" for ch in c[1:])):
                raise ValueError(f"flat colour {c!r}: use #rrggbb")


@dataclass(frozen=True)
class EvalSpec:
    """text: folders of real document crops (NED, PSNR, SSIM; `--eval-gt` replaces them); images: folders
    of real text in images, e.g. screenshots (NED_images, PSNR_images, SSIM_images: reported beside the
    documents' figures, not pooled with them, so the goal stays on documents); photos: folders of photos
    (PSNR_photos, SSIM_photos: a gain on text must not be paid for on photos);
    grid_crops: text crops shown in grid.png; workers: OCR processes; lpips_weights: local LPIPS weights
    (see `textinfuse eval`; empty = no LPIPS); use_ema: evaluate the EMA weights (else the raw ones);
    ned_text: the OCR text NED compares, `textinfuse eval --ned-text`: "engine" (OmniDoc-TokenBench's,
    the default) or "normalised" (reading order, whitespace removed)."""

    text: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    photos: tuple[str, ...] = ()
    grid_crops: int = 6
    workers: int = 2
    lpips_weights: str = ""
    use_ema: bool = False
    ned_text: str = "engine"

    def __post_init__(self) -> None:
        if self.grid_crops < 0 or self.workers < 1:
            raise ValueError("eval: grid_crops >= 0 and workers >= 1 are required")
        if self.ned_text not in ("engine", "normalised"):
            raise ValueError(f"eval.ned_text {self.ned_text!r}: use engine or normalised")


@dataclass(frozen=True)
class GoalSpec:
    """The claim the experiment checks: `arm` beats `baseline` by `min_ned_gain` NED and `contrast` by
    more than the seed-to-seed spread, with photo PSNR at most `max_photo_psnr_drop` dB under `baseline`."""

    arm: str = "synthetic"
    baseline: str = "general"
    contrast: str = "plain-text"
    min_ned_gain: float = 0.15
    max_photo_psnr_drop: float = 0.5


@dataclass(frozen=True)
class AblationConfig:
    train: dict[str, Any]
    stages: tuple[dict[str, Any], ...]
    sources: dict[str, SourceSpec]
    arms: dict[str, dict[str, dict[str, float]]]  # arm -> stage name -> source -> weight
    eval: EvalSpec = field(default_factory=EvalSpec)
    goal: GoalSpec = field(default_factory=GoalSpec)
    seeds: int = 2
    run_arms: tuple[str, ...] = ()  # arms run when --arms is not given (default: every arm)
    notes: str = ""

    def __post_init__(self) -> None:
        if self.seeds < 1:
            raise ValueError("seeds must be at least 1")
        if "stages" in self.train or "seed" in self.train:
            raise ValueError("train: give the schedule in `stages` and seeds with `seeds`, not inside train")
        names = [s.get("name") for s in self.stages]
        if not self.stages or len(set(names)) != len(names) or not all(isinstance(n, str) for n in names):
            raise ValueError("stages: need at least one stage, each with a unique name")
        for s in self.stages:
            if "weights" in s:
                raise ValueError(f"stage {s['name']}: source weights belong to the arms, not the shared stages")
        if not self.arms:
            raise ValueError("arms: need at least one arm")
        unknown = [a for a in self.run_arms if a not in self.arms]
        if unknown:
            raise ValueError(f"run_arms: {unknown[0]!r} is not an arm")
        for arm, per_stage in self.arms.items():
            if set(per_stage) != set(names):
                raise ValueError(f"arm {arm}: give weights for exactly the stages {names} (got {sorted(per_stage)})")
            for st, w in per_stage.items():
                unknown = sorted(set(w) - set(self.sources))
                if unknown:
                    raise ValueError(f"arm {arm}, stage {st}: source {unknown[0]!r} is not in sources")

    def arm_sources(self, arm: str) -> list[str]:
        """The sources an arm trains on (positive weight in some stage), sorted."""
        return sorted({n for w in self.arms[arm].values() for n, v in w.items() if v > 0})

    def train_config(self, arm: str, seed: int, source_dirs: dict[str, str]):
        """The TrainConfig of one arm and seed; `source_dirs` maps the arm's sources to shard folders."""
        from training.config import TrainConfig

        data = json.loads(json.dumps(self.train))
        data["seed"] = seed
        data.setdefault("data", {})["sources"] = {n: source_dirs[n] for n in self.arm_sources(arm)}
        data["stages"] = [{**s, "weights": {n: float(v) for n, v in self.arms[arm][s["name"]].items() if v > 0}}
                          for s in self.stages]
        try:
            return from_dict(TrainConfig, data)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"arm {arm}: {e}") from None

    def identity(self) -> str:
        """sha256 of the shared training recipe (train, stages): an ablation folder holds one recipe."""
        return _digest({"train": self.train, "stages": self.stages})

    def arm_identity(self, arm: str, data: dict[str, str] | None = None) -> str:
        """sha256 of what decides one arm's weights: the recipe, its source weights, its sources' specs and
        `data`, {source: its job's resolved config hash} (so a changed render or filter default, which a
        spec does not show, is a change too). Adding an arm, or changing another one, leaves this arm's
        finished runs valid."""
        names = self.arm_sources(arm)
        return _digest({"recipe": self.identity(), "weights": self.arms[arm],
                        "sources": {n: self.sources[n] for n in names},
                        "data": {n: (data or {}).get(n, "") for n in names}})


def _digest(obj: Any) -> str:
    blob = json.dumps(to_dict(obj), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _resolve(base: Path, p: str) -> str:
    return p if not p or Path(p).is_absolute() else str((base / p).resolve())


def load_ablation(path: str | Path, overrides: list[str] = ()) -> AblationConfig:
    """Load an ablation config, with relative input and eval paths resolved against its folder, and every
    arm's TrainConfig checked (so a bad value is reported before any data is made)."""
    cfg = load(AblationConfig, path, list(overrides))
    base = Path(path).resolve().parent
    sources = {n: replace(s, inputs=tuple(_resolve(base, i) for i in s.inputs)) for n, s in cfg.sources.items()}
    ev = replace(cfg.eval, text=tuple(_resolve(base, p) for p in cfg.eval.text),
                 images=tuple(_resolve(base, p) for p in cfg.eval.images),
                 photos=tuple(_resolve(base, p) for p in cfg.eval.photos),
                 lpips_weights=_resolve(base, cfg.eval.lpips_weights))
    cfg = replace(cfg, sources=sources, eval=ev)
    for arm in cfg.arms:
        cfg.train_config(arm, 0, {n: f"<{n}>" for n in cfg.sources})
    return cfg
