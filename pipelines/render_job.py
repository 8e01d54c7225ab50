"""The render job: `render_shard` (pure: config + shard index -> published shard + stats) and `run_render`.

Every sample's generator is seeded from (run seed, shard, index), so shards are independent of worker
count and order; the same config and seed give byte-identical shards. Done shards (stats present, config
hash matching) are skipped, so an interrupted run resumes where it stopped: `run_render` is the shard-job
skeleton (`shard_job.run_shards`) with the render's parts (`RenderShards`).
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import platform
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import orjson

from render_engine.backgrounds import NoBackground
from render_engine.config import RenderConfig
from render_engine.fonts import FontError
from render_engine.labels import CHARS_MEMBER, encode_boxes
from textinfuse.configio import config_hash, to_dict
from textinfuse.files import name_fields
from textinfuse.images import ImageError
from textinfuse.progress import Progress

from .executors import Executor
from .jobdir import Identity
from .png_writer import encode_png
from .shard_job import ShardJob, Work, run_shards
from .shards import ShardWriter, sample_key, shard_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutputConfig:
    name: str = "textinfuse"  # shard file prefix: NAME-000000.tar
    format: Literal["png", "jpg", "webp"] = "png"
    png_level: int = 1  # deflate level 0-9 (libdeflate: 0 stores, 1 fastest, 9 smallest); see pipelines/png_writer.py
    # PNG row filter. "up" costs least to write and, with "none" and "sub", is what the training loader's
    # fast path decodes; "adaptive" picks per row (libpng's heuristic) for ~5 % fewer bytes
    png_filter: Literal["up", "sub", "none", "average", "paeth", "adaptive"] = "up"
    quality: int = 95  # jpg/webp quality (1-100)
    samples_per_shard: int = 1000
    # OCR every sample with the bundled OCR and record its readability in the label (`ocr_score`:
    # order-free character F1 against the label, and the OCR text). Off by default: about a second per
    # sample per core, far more than rendering it. Needs the `ocr` extra.
    ocr_score: bool = False

    def __post_init__(self) -> None:
        if not self.name or any(c in self.name for c in "/\\.{} "):
            raise ValueError(f"output.name {self.name!r}: use letters, digits, '-' or '_'")
        if not 0 <= self.png_level <= 9 or not 1 <= self.quality <= 100:
            raise ValueError("output.png_level must be 0-9 and output.quality 1-100")
        if self.samples_per_shard < 1:
            raise ValueError("output.samples_per_shard must be >= 1")


@dataclass(frozen=True)
class RenderJobConfig:
    recipe: str = ""  # the recipe this config started from (configs/recipes/NAME.yaml), if any
    seed: int = 0
    num_samples: int = 1000
    render: RenderConfig = field(default_factory=RenderConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def __post_init__(self) -> None:
        if self.num_samples < 1:
            raise ValueError("num_samples must be >= 1")
        if not 0 <= self.seed < 2**63:
            raise ValueError("seed must be in [0, 2**63)")

    @property
    def num_shards(self) -> int:
        return -(-self.num_samples // self.output.samples_per_shard)

    def shard_size(self, shard: int) -> int:
        per = self.output.samples_per_shard
        return min(per, self.num_samples - shard * per)

    def content_hash(self) -> str:
        """What a shard's bytes depend on (not num_samples: growing a run keeps its earlier shards)."""
        return config_hash({"seed": self.seed, "render": to_dict(self.render), "output": to_dict(self.output)})


def versions() -> dict[str, str]:
    import deflate
    import freetype
    import PIL

    import render_engine

    return {"textinfuse": render_engine.__version__, "python": platform.python_version(), "numpy": np.__version__,
            "opencv": cv2.__version__, "pillow": PIL.__version__, "freetype": ".".join(map(str, freetype.version())),
            "libdeflate": deflate.__version__}


def encode(image: np.ndarray, out: OutputConfig) -> bytes:
    """RGB uint8 -> file bytes in the configured format (lossless PNG by default)."""
    if out.format == "png":
        return encode_png(image, out.png_level, out.png_filter)
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if out.format == "jpg":
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, out.quality])
    else:
        ok, buf = cv2.imencode(".webp", bgr, [cv2.IMWRITE_WEBP_QUALITY, out.quality])
    if not ok:
        raise RuntimeError(f"{out.format} encoding failed")
    return buf.tobytes()


def ocr_score(image: np.ndarray, label: dict[str, Any]) -> dict[str, Any]:
    """`output.ocr_score`: what the bundled OCR reads in the sample, and its order-free character F1
    against the label's characters (`textinfuse.metrics.char_f1`, the measure `calibrate` uses)."""
    from render_engine.labels import label_text
    from textinfuse import ocr
    from textinfuse.metrics import char_f1

    text = "\n".join(ln.text for ln in ocr.read(image))
    return {"char_f1": round(char_f1(text, label_text(label)), 4), "ocr_text": text}


def label_members(s) -> dict[str, bytes]:
    """A rendered sample's label members (everything but the image): `json` (label version 2), the
    character boxes beside it (`chars.npy`, see render_engine/labels.py) and `txt` (the text)."""
    lab = s.label
    return {"json": orjson.dumps(lab, option=orjson.OPT_SORT_KEYS), CHARS_MEMBER: encode_boxes(s.char_boxes),
            "txt": lab["text"].encode()}


_RENDERERS: dict[str, Any] = {}


def renderer_for(cfg: RenderConfig):
    """One Renderer (fonts, glyph cache, decoded backgrounds) per config per process."""
    from render_engine.engine import Renderer

    key = config_hash(cfg)
    if key not in _RENDERERS:
        cv2.setNumThreads(1)  # one task per core: OpenCV's own threads would only contend with other tasks
        _RENDERERS.clear()
        _RENDERERS[key] = Renderer(cfg)
    return _RENDERERS[key]


@contextlib.contextmanager
def _gc_paused():
    """No cyclic garbage collection while a shard renders. Each sample allocates thousands of small lists
    and dicts (its label), which would trigger a collection every few samples, and every tenth of those
    walks all the worker's long-lived caches; the hot path makes no reference cycles, so reference
    counting frees everything. About 10 % of a shard's time on this machine."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def render_shard(job: RenderJobConfig, shard: int, out_dir: str | Path) -> dict[str, Any]:
    """Render and publish one shard; return its stats (also written, last, as the done marker)."""
    out_dir = Path(out_dir)
    t0, c0 = time.perf_counter(), time.process_time()
    r = renderer_for(job.render)
    pool = r.background_pool(np.random.default_rng([job.seed, shard, 2**32 - 1]))
    hist: dict[str, Counter] = {k: Counter() for k in ("level", "lang", "mode", "char_px", "font_family", "background",
                                                        "chars_per_image", "contrast", "effects")}
    failed: list[str] = []
    dropped = chars = 0
    with _gc_paused(), ShardWriter(out_dir, job.output.name, shard) as w:
        for i in range(job.shard_size(shard)):
            rng = np.random.default_rng([job.seed, shard, i])
            seeds = {"run": job.seed, "shard": shard, "index": i}
            try:
                for _attempt in range(3):  # a sample whose blocks could hold no text is drawn again
                    s = r.generate(rng, seeds, pool)
                    if s.label["text"]:
                        break
            except (NoBackground, ImageError, FontError) as e:  # the shard fails, after its other samples
                failed.append(f"sample {i}: {e}")
                continue
            lab = s.label
            key = sample_key(shard, i)
            lab["key"] = key
            if job.output.ocr_score:
                lab["ocr_score"] = ocr_score(s.image, lab)
            w.write({"__key__": key, job.output.format: encode(s.image, job.output), **label_members(s)})
            n = lab["char_boxes"]["count"]  # labelled (visible) characters
            chars += n
            dropped += lab["dropped_chars"]
            hist["level"][lab["difficulty"]["level"]] += 1
            hist["lang"][lab["lang"]] += 1
            hist["mode"][lab["mode"]] += 1
            hist["chars_per_image"][min(n // 50 * 50, 1000)] += 1
            hist["contrast"][round(lab["contrast"] or 0, 0)] += 1
            hist["background"][lab["background"]["source"]] += 1
            for ln in lab["lines"]:
                hist["char_px"][ln["char_px"]] += 1
            for f in lab["fonts"]:
                hist["font_family"][f["family"]] += 1
            for e in lab["effects"]:
                hist["effects"][e["name"]] += 1
        if failed:
            raise ShortShard(f"{len(failed)} of {job.shard_size(shard)} samples could not be rendered "
                             f"(first: {failed[0]})")
        size, sha = w.finish()
        bad = r.assets.backgrounds.bad
        stats = {
            "shard": shard, "file": shard_name(job.output.name, shard), "count": w.count, "members": w.members,
            "bytes": size, "sha256": sha, "seed": job.seed, "config_hash": job.content_hash(), "chars": chars,
            "dropped_chars": dropped, "bad_backgrounds": [
                {**name_fields("source", r.assets.backgrounds.refs[i].name), "reason": bad[i].reason,
                 "error": str(bad[i])} for i in sorted(bad)],
            "histograms": {k: {str(a): b for a, b in sorted(v.items())} for k, v in hist.items()},
            "wall_s": round(time.perf_counter() - t0, 3), "cpu_s": round(time.process_time() - c0, 3),
            "versions": versions(),
        }
        w.publish(stats)
    return stats


class ShortShard(RuntimeError):
    """Some samples of a shard could not be rendered: the shard is failed, never published short."""


def identity(job: RenderJobConfig) -> Identity:
    """What decides a render folder's outputs: a run with other values is refused (or `--overwrite`)."""
    return Identity("render", job.output.name, {
        "seed": job.seed, "num_samples": job.num_samples, "samples_per_shard": job.output.samples_per_shard,
        "render_config": config_hash(job.render), "output_config": config_hash(job.output)})


def render_task(shared: tuple[RenderJobConfig, str], shard: int) -> dict[str, Any]:
    """The unit of work an executor runs: one shard (module level, so Ray workers can import it)."""
    job, out_dir = shared
    return render_shard(job, shard, out_dir)


class RenderShards(ShardJob):
    """The render job's parts for the shard-job skeleton (`shard_job.run_shards`)."""

    unit, size_field = "samples", "count"

    def __init__(self, job: RenderJobConfig, out_dir: Path, skipped_fonts: list[tuple[str, str]] = (),
                 legibility_sha256: str = ""):
        self.job, self.skipped_fonts, self.task = job, skipped_fonts, render_task
        self.legibility_sha256 = legibility_sha256
        self.identity, self.config, self.config_hash = identity(job), job, job.content_hash()
        self.work = [Work(s, job.shard_size(s), s) for s in range(job.num_shards)]
        self.shared = (job, str(out_dir))

    def start(self, out: Path) -> None:
        import yaml

        (out / "config.yaml").write_text(yaml.safe_dump(to_dict(self.job), sort_keys=False, allow_unicode=True))

    def finish(self, out: Path, done: list[dict[str, Any]]) -> dict[str, Any]:
        totals: dict[str, Any] = {"samples": sum(s["count"] for s in done), "shards": len(done),
                                  "bytes": sum(s["bytes"] for s in done), "chars": sum(s["chars"] for s in done),
                                  "dropped_chars": sum(s["dropped_chars"] for s in done)}
        hist: dict[str, Counter] = {}
        for s in done:
            for k, v in s["histograms"].items():
                hist.setdefault(k, Counter()).update(v)
        bad = list({json.dumps(b, sort_keys=True): b for s in done for b in s["bad_backgrounds"]}.values())
        return {"seed": self.job.seed, "recipe": self.job.recipe, "totals": totals, "bad_backgrounds": bad,
                "skipped_fonts": [{**name_fields("path", p), "reason": why} for p, why in self.skipped_fonts],
                "histograms": {k: dict(sorted(v.items())) for k, v in hist.items()}, "versions": versions(),
                # the per-face size guard's table (fonts.legibility): its content decides which faces are drawn
                "legibility": {"table": self.job.render.fonts.legibility, "sha256": self.legibility_sha256}}

    def summary(self, manifest: dict[str, Any], out: Path) -> str:
        return f"{manifest['totals']['samples']} samples in {manifest['totals']['shards']} shards -> {out}"


def run_render(job: RenderJobConfig, out_dir: str | Path, overwrite: bool = False,
               executor: Executor | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """Render every shard not yet done (in this process unless an executor is given), then write
    manifest.json and config.yaml. Failed shards are listed in the manifest under "failed_shards"."""
    from render_engine.engine import load_fonts
    from render_engine.legibility import load_table

    if job.output.ocr_score:  # refused here, in one line, not in every worker
        try:
            import rapidocr  # noqa: F401
        except ImportError:
            raise RuntimeError("output.ocr_score needs the bundled OCR: pip install 'textinfuse[ocr]'") from None
    fonts = load_fonts(job.render)  # here, not only in the workers: a job no font can serve is refused at once
    table = load_table(job.render.fonts.legibility)  # likewise a table that cannot be read (one line, the file)
    shards = RenderShards(job, Path(out_dir), fonts.skipped, table.sha256 if table is not None else "")
    return run_shards(shards, out_dir, overwrite, executor, progress)
