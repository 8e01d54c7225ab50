"""The shard-job skeleton: what every job that writes shards does (render, filter), written once.

A job supplies only what differs, as a `ShardJob`: its identity (what decides its outputs), its work
(one `Work` per shard), the task a worker runs for one shard, which publishes it through
`shards.ShardWriter` (tar, companion files, then its stats file: the done marker), and its own manifest
keys. `run_shards` does the rest, in this order:

1. claim the folder (`jobdir.claim`: sweep stale temp files; resume, refuse, or with `overwrite` start
   over, by the identity);
2. skip the done shards, by one rule (`is_done`): the stats file is there with the job's config hash
   and the work's size, and the tar and the companion files are in place;
3. run the others on an executor (one that raised runs once more at the end: `executors.retry_once`),
   counting progress and listing the shards that failed twice;
4. sweep temp files, then write `manifest.json`: the common keys (kind, config, config hash, number of
   shards, failed shards, the done shards) and the job's own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textinfuse.configio import to_dict
from textinfuse.progress import Progress

from .executors import Executor, LocalExecutor
from .jobdir import Identity, claim
from .shards import read_stats, shard_name, sweep_tmp, write_json_atomic

log = logging.getLogger(__name__)
SHARD_KEYS = ("shard", "file", "count", "bytes", "sha256")  # what the manifest lists of each done shard


@dataclass(frozen=True)
class Work:
    """One shard's work."""

    index: int  # the shard: NAME-{index:06d}.tar
    size: int  # what progress counts (samples, inputs); a done shard's stats hold it under `size_field`
    item: Any  # what the job's task receives

    def __str__(self) -> str:  # how logs name it ("task 3 failed...")
        return str(self.item)


class ShardJob:
    """The parts of a shard job that differ. A subclass sets the attributes (in `__init__`) and defines
    `finish` and `summary`; `companions` and `start` are optional."""

    identity: Identity  # kind, shard prefix (`identity.name`) and the fields that decide the outputs
    config: Any  # the job's config dataclass, recorded in the manifest
    config_hash: str  # stamped into every stats file by the task; a shard stamped otherwise is redone
    unit: str  # what progress counts: "samples", "images"
    size_field: str  # the stats field holding a shard's size ("count", "inputs")
    work: list[Work]
    task: Callable[[Any, Any], dict[str, Any]]  # (shared, item) -> stats; module level: Ray workers import it
    shared: Any  # what every task receives (sent to the workers once)

    def companions(self, index: int) -> Sequence[str]:
        """Files (relative to the folder) a shard publishes besides its tar, before its stats file."""
        return ()

    def start(self, out: Path) -> None:
        """After the folder is claimed, before any shard runs."""

    def finish(self, out: Path, done: list[dict[str, Any]]) -> dict[str, Any]:
        """After every shard ran: write the job's own outputs; return its manifest keys (`done`: the stats
        of the shards that are there, in shard order)."""
        raise NotImplementedError

    def summary(self, manifest: dict[str, Any], out: Path) -> str:
        """The run's closing log line."""
        raise NotImplementedError


def is_done(job: ShardJob, out: Path, w: Work) -> bool:
    """The resume rule: a shard is done when its stats file (written last) says this job's config hash
    and this work's size, and its tar and companion files are in place."""
    st = read_stats(out, job.identity.name, w.index)
    files = (shard_name(job.identity.name, w.index), *job.companions(w.index))
    return bool(st and st.get("config_hash") == job.config_hash and st.get(job.size_field) == w.size
                and all((out / f).exists() for f in files))


def run_work(shared: tuple[Callable[[Any, Any], Any], Any], work: Work) -> dict[str, Any]:
    """The unit an executor runs: the job's task on one shard's item (module level, for Ray workers)."""
    task, job_shared = shared
    return task(job_shared, work.item)


def run_shards(job: ShardJob, out_dir: str | Path, overwrite: bool = False, executor: Executor | None = None,
               progress: Progress | None = None) -> dict[str, Any]:
    """Run every shard of `job` not yet done in `out_dir` (in this process unless an executor is given),
    then write manifest.json; return it. Failed shards are listed under "failed_shards"."""
    out = Path(out_dir)
    claim(out, job.identity, overwrite)
    job.start(out)
    todo = [w for w in job.work if not is_done(job, out, w)]
    total = sum(w.size for w in job.work)
    prog = progress or Progress(total, job.unit, already=total - sum(w.size for w in todo))
    if len(todo) < len(job.work):
        log.info("resuming: %d of %d shards already done", len(job.work) - len(todo), len(job.work))
    failed: list[dict[str, Any]] = []

    def on_result(w: Work, stats: dict[str, Any] | None, error: str | None) -> None:
        if error is not None:
            failed.append({"shard": w.index, "reason": error})
            log.error("shard %d failed: %s", w.index, error)
            prog.advance(0, failures=w.size)
        else:
            prog.advance(stats[job.size_field])

    (executor or LocalExecutor()).run(run_work, (job.task, job.shared), todo, on_result)
    prog.close()
    sweep_tmp(out)
    done = [st for w in job.work if (st := read_stats(out, job.identity.name, w.index))]
    manifest = {"kind": job.identity.kind, "config": to_dict(job.config), "config_hash": job.config_hash,
                "num_shards": len(job.work), "failed_shards": sorted(failed, key=lambda f: f["shard"]),
                "shards": [{k: st[k] for k in SHARD_KEYS} for st in done]}
    manifest.update(job.finish(out, done))
    write_json_atomic(out / "manifest.json", manifest)
    log.info("%s", job.summary(manifest, out))
    return manifest
