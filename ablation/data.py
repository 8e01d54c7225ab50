"""The arms' data, made by TextInfuse's own jobs: `render` for synthetic text, `filter` for real images.

Each source is built once into `DIR/data/NAME` and shared by every arm and seed that uses it. The jobs
are the same resumable jobs the CLI runs (same identity rule: a changed spec is refused there), so a
killed ablation resumes its data where it stopped.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from textinfuse.configio import load

from .config import AblationConfig, SourceSpec

log = logging.getLogger(__name__)
FLAT_SIDE = 512


def flat_backgrounds(colours: tuple[str, ...], folder: Path) -> Path:
    """One flat PNG per colour in `folder` (the backgrounds of text without natural images)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for c in colours:
        rgb = tuple(int(c[i:i + 2], 16) for i in (1, 3, 5))
        p = folder / f"flat-{c[1:].lower()}.png"
        if not p.exists():
            Image.fromarray(np.full((FLAT_SIDE, FLAT_SIDE, 3), rgb, np.uint8)).save(p)
    return folder


def build_source(name: str, spec: SourceSpec, out: Path, executor) -> dict:
    """Run the source's job into `out` (resuming a partial one); returns a summary for results.json."""
    t0 = time.monotonic()
    if spec.kind == "render":
        from pipelines.recipes import load_recipe
        from pipelines.render_job import RenderJobConfig, run_render

        sets = list(spec.set)
        if spec.flat:
            bg = flat_backgrounds(spec.flat, out.parent / f"{name}.flat")
            sets.append(f"render.backgrounds.sources={json.dumps([str(bg)])}")
        job = load(RenderJobConfig, None, sets, base=load_recipe(spec.recipe) if spec.recipe else None)
        man = run_render(job, out, executor=executor)
        count = man["totals"]["samples"]
    else:
        from pipelines.filter_job import FilterConfig, run_filter

        man = run_filter(list(spec.inputs), load(FilterConfig, None, list(spec.set)), out, executor=executor)
        count = man["totals"]["kept"]
    if man["failed_shards"]:
        f = man["failed_shards"][0]
        raise RuntimeError(f"source {name}: {len(man['failed_shards'])} shard(s) failed in {out} "
                           f"(shard {f['shard']}: {f['reason']}); run again with --resume")
    if count == 0:
        raise RuntimeError(f"source {name}: no image in {out} (see its manifest.json)")
    return {"kind": spec.kind, "dir": str(out), "images": count, "config_hash": man["config_hash"],
            "seconds": round(time.monotonic() - t0, 1)}


def build_sources(cfg: AblationConfig, names: list[str], data_dir: Path, executor) -> dict[str, dict]:
    """Build the named sources (in config order); returns {name: summary}."""
    out = {}
    for k, name in enumerate(n for n in cfg.sources if n in names):
        log.info("data %d/%d: %s (%s)", k + 1, len(names), name, cfg.sources[name].kind)
        out[name] = build_source(name, cfg.sources[name], data_dir / name, executor)
        log.info("data %s: %d images in %.0f s -> %s", name, out[name]["images"], out[name]["seconds"],
                 out[name]["dir"])
    return out
