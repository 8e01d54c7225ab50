"""`run_ablation`: data, then one training and one evaluation per arm and seed, then the report.

Folder layout (`DIR`):
- `ablation.json`: the identity of the shared training recipe (hash of train and stages) and the config;
- `data/NAME/`: each source's shards (see ablation/data.py);
- `runs/ARM/seed_S/`: a `textinfuse train` run folder, plus `arm.json` (the arm's identity: its
  weights and its sources' specs), `trained.json` (steps, CPU and wall seconds)
  when its training finished, `eval/SET/` (the `textinfuse eval` outputs per evaluation folder),
  `evaluated.json` (the pooled figures, keyed by the evaluation's identity) and `grid/` (its
  reconstructions of the grid crops);
- `results.json`, `results.md`, `grid.png`: see ablation/report.py.

Resume: a run with `evaluated.json` for the same evaluation is done; one with `trained.json` is only
evaluated again (e.g. after `--eval-gt`); one without continues training from its latest checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import logging
import resource
import time
from pathlib import Path
from typing import Any

from pipelines.shards import write_json_atomic
from textinfuse.configio import to_dict

from .config import AblationConfig
from .data import build_sources

log = logging.getLogger(__name__)
ID_FILE = "ablation.json"


class FolderInUse(RuntimeError):
    """DIR holds another ablation (other training identity), or a run without --resume."""


def _cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def _read_json(path: Path) -> dict | None:
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) else None


def claim(out: Path, cfg: AblationConfig, resume: bool) -> None:
    """Make `out` this ablation's folder: new, or the same training recipe with `resume`."""
    out.mkdir(parents=True, exist_ok=True)
    old = _read_json(out / ID_FILE)
    ident = cfg.identity()
    if old is None and (out / "runs").exists():
        raise FolderInUse(f"{out}: holds runs but no readable {ID_FILE}; use a new folder")
    if old is not None:
        if old.get("identity") != ident:
            raise FolderInUse(f"{out}: holds an ablation of another training recipe (train or stages differ: "
                              f"identity {old.get('identity')}, this one {ident}); use a new folder")
        if not resume:
            raise FolderInUse(f"{out}: holds an ablation already; add --resume to continue it, or use a new folder")
    write_json_atomic(out / ID_FILE, {"identity": ident, "config": to_dict(cfg)})


def claim_run(cfg: AblationConfig, arm: str, run: Path, data: dict[str, str]) -> None:
    """A run folder holds one arm's identity (`arm.json`): another is refused, naming the arm. `data`:
    {source: its data job's config hash}."""
    ident = cfg.arm_identity(arm, data)
    old = _read_json(run / "arm.json")
    if old is not None and old.get("identity") != ident:
        raise FolderInUse(f"{run}: arm {arm} was trained with other data (its source weights, sources' specs "
                          f"or resolved job configs changed: identity {old.get('identity')}, now {ident}); use a "
                          "new folder or another arm name")
    run.mkdir(parents=True, exist_ok=True)
    if old is None:
        names = cfg.arm_sources(arm)
        write_json_atomic(run / "arm.json", {"arm": arm, "identity": ident, "weights": cfg.arms[arm],
                                             "sources": {n: to_dict(cfg.sources[n]) for n in names},
                                             "data_config_hashes": {n: data.get(n, "") for n in names}})


def eval_identity(cfg: AblationConfig, text: list[str], photos: list[str], images: list[str] | None = None) -> str:
    """Hash of the evaluation: its folders (and their file names and sizes) and settings. (Without
    `images` the hash is what it was before they existed: earlier runs stay evaluated.)"""
    h = hashlib.sha256()
    for d in [*text, "|", *photos, *(["|images", *images] if images else [])]:
        h.update(d.encode("utf-8", "surrogateescape") + b"\0")
        if not d.startswith("|"):
            for p in sorted(Path(d).iterdir()) if Path(d).is_dir() else ():
                h.update(p.name.encode("utf-8", "surrogateescape") + str(p.stat().st_size).encode() + b"\0")
    h.update(json.dumps([cfg.eval.lpips_weights, cfg.eval.use_ema, cfg.eval.grid_crops, cfg.eval.ned_text]).encode())
    return h.hexdigest()[:16]


def _set_name(d: str, taken: set[str]) -> str:
    name = Path(d).name or "set"
    k, base = 2, name
    while name in taken:
        name, k = f"{base}-{k}", k + 1
    taken.add(name)
    return name


def grid_picks(text: list[str], n: int) -> list[tuple[str, Path]]:
    """`n` text crops for grid.png, spread evenly over the sets and over each set's sorted files."""
    from textinfuse.images import list_images

    sets = [(d, list_images(Path(d))) for d in text]
    sets = [(d, f) for d, f in sets if f]
    picks: list[tuple[str, Path]] = []
    for k, (d, files) in enumerate(sets):
        m = n // len(sets) + (k < n % len(sets))
        step = len(files) / max(m, 1)
        picks += [(d, files[int(i * step)]) for i in range(min(m, len(files)))]
    return picks


def train_run(cfg: AblationConfig, arm: str, seed: int, data: dict[str, dict], run: Path) -> dict:
    from training.loop import train

    claim_run(cfg, arm, run, {n: d["config_hash"] for n, d in data.items()})
    dirs = {n: d["dir"] for n, d in data.items()}
    done = _read_json(run / "trained.json")
    if done is not None:
        return done
    tcfg = cfg.train_config(arm, seed, dirs)
    resumed = (run / "ckpt").exists()
    c0, t0 = _cpu(), time.monotonic()
    summary = train(tcfg, run, resume=resumed)
    done = {"arm": arm, "seed": seed, "steps": summary["step"], "cpu_seconds": round(_cpu() - c0, 1),
            "wall_seconds": round(time.monotonic() - t0, 1), "resumed": resumed,
            "weights_sha256": summary["weights_sha256"], "sources": tcfg.data.sources}
    write_json_atomic(run / "trained.json", done)
    return done


def eval_run(cfg: AblationConfig, run: Path, text: list[str], photos: list[str], ev_id: str,
             picks: list[tuple[str, Path]], images: list[str] | None = None) -> dict:
    """Evaluate one trained run on every text, text-in-image and photo folder; pooled figures per kind (by
    sample count)."""
    import numpy as np
    from PIL import Image

    from evaluation.evaluate import evaluate, load_optional
    from evaluation.images import load_protocol_rgb, to_uint8
    from training.eval_hooks import lpips_scorer
    from training.inference import load_reconstructor

    done = _read_json(run / "evaluated.json")
    if done is not None and done.get("eval_identity") == ev_id:
        return done
    fn = load_reconstructor(run, use_ema=cfg.eval.use_ema, device="cpu" if cfg.train.get("device") == "cpu" else None)
    lpips, lpips_reason = load_optional("LPIPS", cfg.eval.lpips_weights or None, lpips_scorer)
    c0, t0 = _cpu(), time.monotonic()
    res: dict[str, Any] = {"eval_identity": ev_id, "sets": {}}
    taken: set[str] = set()
    for kind, dirs in (("text", text), ("images", images or []), ("photos", photos)):
        for d in dirs:
            name = _set_name(d, taken)
            r = evaluate(d, run / "eval" / name, model_fn=fn, workers=cfg.eval.workers, lpips=lpips,
                         lpips_reason=lpips_reason, worst=6, ocr=kind != "photos", ned_text=cfg.eval.ned_text)
            res["sets"][name] = {"kind": kind, "dir": d, **r}
    grid = run / "grid"
    grid.mkdir(exist_ok=True)
    for k, (_, p) in enumerate(picks):
        x = load_protocol_rgb(p)
        y = fn(x[None].astype(np.float32) / 255.0)[0]
        Image.fromarray(to_uint8(y)).save(grid / f"{k:02d}.png")
    res.update(pool(res["sets"]))
    res["eval_cpu_seconds"] = round(_cpu() - c0, 1)
    res["eval_wall_seconds"] = round(time.monotonic() - t0, 1)
    write_json_atomic(run / "evaluated.json", res)
    return res


def pool(sets: dict[str, dict]) -> dict[str, float | None]:
    """NED over every text crop with text; PSNR/SSIM over text crops and, separately, over photos; the
    same figures of the text-in-image sets as `*_images` (only when there are such sets)."""
    def mean(kind: str, key: str, weight: str) -> float | None:
        rows = [(s[key], s[weight]) for s in sets.values() if s["kind"] == kind and s[key] is not None and s[weight]]
        n = sum(w for _, w in rows)
        return sum(v * w for v, w in rows) / n if n else None

    out = {"NED": mean("text", "NED", "NED_samples"), "PSNR": mean("text", "PSNR", "num_samples"),
           "SSIM": mean("text", "SSIM", "num_samples"), "PSNR_photos": mean("photos", "PSNR", "num_samples"),
           "SSIM_photos": mean("photos", "SSIM", "num_samples")}
    if any(s["kind"] == "images" for s in sets.values()):
        out.update(NED_images=mean("images", "NED", "NED_samples"), PSNR_images=mean("images", "PSNR", "num_samples"),
                   SSIM_images=mean("images", "SSIM", "num_samples"))
    if any(s.get("LPIPS") is not None for s in sets.values()):
        out["LPIPS"] = mean("text", "LPIPS", "num_samples")
        out["LPIPS_photos"] = mean("photos", "LPIPS", "num_samples")
    return out


def run_ablation(cfg: AblationConfig, out: str | Path, arms: list[str] | None = None, seeds: int | None = None,
                 eval_gt: list[str] | None = None, resume: bool = False, executor_factory=None) -> dict:
    """Run the ablation into `out` (layout in the module docstring); returns the results.json dict.
    `executor_factory()` gives the executor for the data jobs (closed before training starts)."""
    from textinfuse.progress import Progress

    from .report import write_report

    out = Path(out)
    arms = arms or list(cfg.run_arms or cfg.arms)
    unknown = [a for a in arms if a not in cfg.arms]
    if unknown:
        raise ValueError(f"--arms: {unknown[0]!r} is not an arm of the config ({', '.join(cfg.arms)})")
    n_seeds = seeds or cfg.seeds
    text = list(eval_gt) if eval_gt else list(cfg.eval.text)
    photos, images = list(cfg.eval.photos), list(cfg.eval.images)
    for d in [*text, *images, *photos]:
        if not Path(d).is_dir():
            raise FileNotFoundError(2, "evaluation folder not found (see datasets/ablation/SOURCES.md)", d)
    if not text:
        raise ValueError("no text evaluation folder: set eval.text in the config or give --eval-gt DIR")
    claim(out, cfg, resume)
    needed = sorted({s for a in arms for s in cfg.arm_sources(a)})
    executor = executor_factory() if executor_factory else None
    try:
        data = build_sources(cfg, needed, out / "data", executor)
    finally:
        if executor is not None:
            executor.close()
    ev_id = eval_identity(cfg, text, photos, images)
    picks = grid_picks([*text, *images], cfg.eval.grid_crops)  # documents and text in images alike
    units = [(a, s) for a in arms for s in range(n_seeds)]
    before = {(a, s) for a, s in units
              if (_read_json(out / "runs" / a / f"seed_{s}" / "evaluated.json") or {}).get("eval_identity") == ev_id}
    prog = Progress(len(units), "runs", every=0.0, already=len(before))
    runs: dict[str, list[dict]] = {a: [] for a in arms}
    for k, (arm, seed) in enumerate(units):
        run = out / "runs" / arm / f"seed_{seed}"
        log.info("run %d/%d: arm %s, seed %d -> %s", k + 1, len(units), arm, seed, run)
        trained = train_run(cfg, arm, seed, data, run)
        evaluated = eval_run(cfg, run, text, photos, ev_id, picks, images)
        runs[arm].append({**trained, **evaluated})
        if (arm, seed) not in before:
            prog.advance(1)
    prog.close()
    return write_report(out, cfg, runs, data, picks, text, photos, images)
