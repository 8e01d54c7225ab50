"""The filter job: score real images (validity, clarity, OCR text density), keep the good ones.

Inputs (folders, globs, brace patterns, list files, WebDataset tars: `textinfuse.images.find_images`)
become units of work: one per input tar, or one per `files_per_task` loose files. An input that cannot be
read or decoded is recorded with its `textinfuse.images.Reason` code as its reason (`truncated`,
`too_many_pixels`...). Each unit writes a shard of the kept images (original bytes, untouched, with a
JSON of scores and source), a part of `scores.jsonl` (one line for every input) and, last, its stats
(the done marker): the same shard-job skeleton as render (`shard_job.run_shards`,
with `FilterShards`), so the same executors, atomic publishing and resume.
`--rescore` re-applies new thresholds to recorded scores, computing only scores that are missing.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import orjson

from textinfuse.configio import config_hash
from textinfuse.files import name_fields
from textinfuse.images import ImageError, ImageRef, decode_image_info, find_images

from .executors import Executor
from .filters import check_sections, config_class, ordered
from .filters.clarity import ClarityConfig  # noqa: F401 (re-exported: scripts import the sections from here)
from .filters.text_density import TextDensityConfig  # noqa: F401
from .filters.validity import ValidityConfig  # noqa: F401
from .jobdir import Identity
from .shard_job import ShardJob, Work, run_shards
from .shards import ShardWriter, sample_key, shard_name

log = logging.getLogger(__name__)
SCORES = "filter.json"  # the member holding a kept sample's scores and source


@dataclass(frozen=True)
class FilterJobFields:
    """The filter job's config: these fields, then a section per registered filter under its name
    (`validity`, `clarity`, `text_density`, a plugin's...), typed by the filter's own config dataclass.
    Use it as `FilterConfig`, which this module assembles from the filter registry."""

    name: str = "filtered"  # output shard prefix
    files_per_task: int = 256  # loose files per unit of work (a tar is always one unit)

    def __post_init__(self) -> None:
        if self.files_per_task < 1:
            raise ValueError("files_per_task must be >= 1")


def __getattr__(name: str) -> Any:
    if name == "FilterConfig":  # built on use, so a filter from a plugin loaded later gets its section
        return config_class(FilterJobFields, "FilterConfig", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if TYPE_CHECKING:  # for the annotations below: the assembled class is a subclass
    FilterConfig = FilterJobFields


@dataclass(frozen=True)
class Unit:
    index: int
    refs: tuple[ImageRef, ...] = field(repr=False)
    prior: tuple[dict[str, Any] | None, ...] = field(default=(), repr=False)  # recorded scores per ref (rescore)

    def __str__(self) -> str:  # how logs name it
        return f"unit {self.index} ({len(self.refs)} inputs from {self.refs[0].path if self.refs else '-'})"


def make_units(specs: list[str], files_per_task: int) -> tuple[list[Unit], list[tuple[str, str]]]:
    refs, problems = find_images(specs)
    by_tar: dict[str, list[ImageRef]] = {}
    loose: list[ImageRef] = []
    for r in refs:
        (by_tar.setdefault(r.path, []) if r.offset >= 0 else loose).append(r)
    groups = [tuple(v) for _, v in sorted(by_tar.items())]
    loose.sort(key=lambda r: r.path)
    groups += [tuple(loose[i : i + files_per_task]) for i in range(0, len(loose), files_per_task)]
    return [Unit(i, g) for i, g in enumerate(groups)], problems


def source_of(ref: ImageRef) -> dict[str, str]:
    """Where an input came from, for JSON (names that are not UTF-8 also carry their bytes, see name_fields)."""
    if ref.offset < 0:
        return name_fields("path", ref.path)
    return {**name_fields("shard", ref.path), **name_fields("key", ref.name.split(":", 1)[1])}


def _unsafe(ref: ImageRef) -> bool:
    name = ref.name.split(":", 1)[1] if ref.offset >= 0 else ""
    return name.startswith("/") or ".." in Path(name).parts


def _ext(ref: ImageRef) -> str:
    """The image's member extension: a tar member's own (byte-faithful), a loose file's suffix."""
    return ref.member_ext or Path(ref.name).suffix.lower().lstrip(".").replace("jpeg", "jpg") or "bin"


def score_one(ref: ImageRef, cfg: FilterConfig, prior: dict[str, Any] | None) -> tuple[dict[str, Any], bytes | None, str]:
    """Score and decide one input; returns (record, original bytes if kept, extension)."""
    rec: dict[str, Any] = {"source": source_of(ref), "keep": False, "reason": None}
    ext = _ext(ref)
    if _unsafe(ref):
        rec["reason"] = "unsafe_name"
        return rec, None, ext
    try:
        data = ref.read()
    except ImageError as e:
        rec.update(reason=e.reason, error=str(e))
        return rec, None, ext
    image = info = None
    for f in ordered():
        section = getattr(cfg, f.name)
        scores = (prior or {}).get(f.name)
        if not getattr(section, "enabled", True):  # a disabled filter keeps everything and costs nothing
            if scores:
                rec[f.name] = scores
            continue
        if scores is None or not f.decide(scores, section)[1]:  # not scored, or not what this config needs
            if image is None:
                try:
                    image, info = decode_image_info(data, cfg.validity.max_pixels)
                except ImageError as e:
                    rec.update(reason=e.reason, error=str(e))
                    return rec, None, ext
                rec["format"] = {k: info[k] for k in ("format", "mode", "frames", "bits")}
            scores = f.score(image, info, section)
        rec[f.name] = scores
        reason = f.keep(scores, section)
        if reason:
            rec["reason"] = reason
            return rec, None, ext
    rec["keep"] = True
    return rec, data, ext


def scores_part(shard: int) -> str:
    """A unit's part of scores.jsonl (relative to the folder), published with its shard, before its stats."""
    return f"scores/part-{shard:06d}.jsonl"


def filter_unit(shared: tuple[FilterConfig, str, str], unit: Unit) -> dict[str, Any]:
    """Score one unit, publish its kept images and its scores part; return its stats (written last)."""
    cfg, out_dir, job_hash = shared
    check_sections(cfg, FilterJobFields)
    out = Path(out_dir)
    cv2.setNumThreads(1)  # one task per core: OpenCV's own threads would only contend with other tasks
    t0, c0 = time.perf_counter(), time.process_time()
    reasons: Counter = Counter()
    lines = []
    keys: set[str] = set()
    with ShardWriter(out, cfg.name, unit.index) as w:
        for k, ref in enumerate(unit.refs):
            rec, data, ext = score_one(ref, cfg, unit.prior[k] if unit.prior else None)
            reasons[rec["reason"] or "kept"] += 1
            lines.append(orjson.dumps(rec, option=orjson.OPT_SORT_KEYS))
            if rec["keep"]:
                w.write(_kept_sample(ref, k, unit.index, rec, data, ext, keys))
        size, sha = w.finish()
        stats = {"shard": unit.index, "file": shard_name(cfg.name, unit.index), "inputs": len(unit.refs),
                 "count": w.count, "members": w.members, "bytes": size, "sha256": sha, "config_hash": job_hash,
                 "reasons": dict(reasons), "wall_s": round(time.perf_counter() - t0, 3),
                 "cpu_s": round(time.process_time() - c0, 3)}
        (out / "scores").mkdir(exist_ok=True)
        w.publish(stats, [(out / scores_part(unit.index), b"\n".join(lines) + (b"\n" if lines else b""))])
    return stats


def _kept_sample(ref: ImageRef, k: int, shard: int, rec: dict[str, Any], data: bytes, ext: str,
                 keys: set[str]) -> dict[str, Any]:
    """A kept input as a sample: a tar sample keeps its key and every member byte for byte (caption,
    metadata...), with the scores beside them in `KEY.filter.json` (a previous filter run's scores there
    are replaced); a loose file gets key SHARD_INDEX."""
    key = ref.key or sample_key(shard, k)
    if key in keys or "." in key:  # a second image of one sample, or a key webdataset would split
        key = sample_key(shard, k)
    keys.add(key)
    rec = {**rec, **name_fields("key", key)}
    extras = {e: b for e, b in ref.read_extras().items() if e not in (ext, SCORES)} if ref.extras else {}
    return {"__key__": key, **extras, ext: data, SCORES: orjson.dumps(rec, option=orjson.OPT_SORT_KEYS)}


def load_prior(scores_jsonl: Path) -> dict[str, dict[str, Any]]:
    """Recorded scores by source (for --rescore)."""
    out = {}
    with open(scores_jsonl, "rb") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rec = orjson.loads(line)
                    out[json.dumps(rec["source"], sort_keys=True)] = rec
                except (orjson.JSONDecodeError, KeyError, TypeError) as e:
                    raise ValueError(f"{scores_jsonl}: line {n} is not a score record ({type(e).__name__}: {e})") from None
    return out


def identity(cfg: FilterConfig, units: list[Unit], rescore_from: str | Path | None) -> Identity:
    """What decides a filter folder's outputs: the config, the exact list of inputs, the rescored run."""
    listing = hashlib.sha256(b"\n".join(os.fsencode(f"{r.path}:{r.name}") for u in units for r in u.refs))
    return Identity("filter", cfg.name, {
        "config": config_hash(cfg), "inputs": listing.hexdigest()[:16], "num_inputs": sum(len(u.refs) for u in units),
        "rescore_from": name_fields("dir", os.fspath(rescore_from or ""))})


class FilterShards(ShardJob):
    """The filter job's parts for the shard-job skeleton (`shard_job.run_shards`): one shard per unit."""

    unit, size_field = "images", "inputs"

    def __init__(self, inputs: list[str], cfg: FilterConfig, out_dir: Path, units: list[Unit], problems,
                 rescore_from: str | Path | None):
        self.inputs, self.units, self.problems, self.rescore_from = inputs, units, problems, rescore_from
        self.identity, self.config = identity(cfg, units, rescore_from), cfg
        self.config_hash = config_hash(self.identity.fields)
        self.work = [Work(u.index, len(u.refs), u) for u in units]
        self.task, self.shared = filter_unit, (cfg, str(out_dir), self.config_hash)

    def companions(self, index: int) -> tuple[str, ...]:
        return (scores_part(index),)

    def finish(self, out: Path, done: list[dict[str, Any]]) -> dict[str, Any]:
        """scores.jsonl (every part, in unit order), and the filter's manifest keys."""
        tmp = out / "_tmp" / "scores.jsonl.part"
        tmp.parent.mkdir(exist_ok=True)
        with open(tmp, "wb") as f:
            for u in self.units:
                part = out / scores_part(u.index)
                if part.exists():
                    f.write(part.read_bytes())
        tmp.replace(out / "scores.jsonl")
        reasons: Counter = Counter()
        for st in done:
            reasons.update(st["reasons"])
        return {"inputs": self.inputs, "rescore_from": str(self.rescore_from or ""), "input_problems": self.problems,
                "totals": {"inputs": sum(len(u.refs) for u in self.units), "kept": reasons.get("kept", 0),
                           "reasons": dict(sorted(reasons.items()))}}

    def summary(self, manifest: dict[str, Any], out: Path) -> str:
        return f"{manifest['totals']['kept']} of {manifest['totals']['inputs']} images kept -> {out}"


def run_filter(inputs: list[str], cfg: FilterConfig, out_dir: str | Path, executor: Executor | None = None,
               rescore_from: str | Path | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Filter `inputs` into `out_dir` (resumable; a folder of another filter run is refused unless
    `overwrite`); with `rescore_from`, reuse that run's scores."""
    units, problems = make_units(inputs, cfg.files_per_task)
    if not units:  # nothing to filter is an error, never an empty success
        why = "; ".join(f"{src}: {reason}" for src, reason in problems[:3]) or "no inputs given"
        raise FileNotFoundError(errno.ENOENT, f"no images in the inputs ({why})", inputs[0] if inputs else "")
    if rescore_from is not None:
        prior = load_prior(Path(rescore_from) / "scores.jsonl")
        units = [Unit(u.index, u.refs, tuple(prior.get(json.dumps(source_of(r), sort_keys=True)) for r in u.refs))
                 for u in units]
    job = FilterShards(inputs, cfg, Path(out_dir), units, problems, rescore_from)
    return run_shards(job, out_dir, overwrite, executor)
