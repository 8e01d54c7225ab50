"""One rule for a job's output folder: resume, refuse, or (with `--overwrite`) start over.

A job (render, filter) names what decides its outputs in an identity: its kind, its shard prefix and
a few fields (config hashes, inputs, sample count, shard size...). The identity goes to `DIR/job.json`
before any shard is written, so even a run killed in its first shard is known. A later run with the
same identity resumes; one with another identity is refused, naming the fields that differ, unless
`overwrite`, which first removes every output of the old run (its shards, stats, scores, manifest) and
nothing else: the folder may hold the user's own files.
"""

from __future__ import annotations

import errno
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .shards import TMP, sweep_tmp, write_json_atomic

log = logging.getLogger(__name__)
JOB_FILE = "job.json"
# what any of our jobs may have written, besides its shards (NAME-NNNNNN.tar) and their stats
_OUTPUTS = ("manifest.json", "config.yaml", "scores.jsonl")
_SHARD = re.compile(r"^(?P<name>.+)-\d{6}\.(tar|stats\.json)$")


class FolderInUse(RuntimeError):
    """The output folder holds another job's outputs (the message says which fields differ)."""


@dataclass(frozen=True)
class Identity:
    kind: str  # "render", "filter"
    name: str  # the shard prefix: NAME-000000.tar
    fields: dict[str, Any]  # everything that decides the outputs, JSON-able

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "fields": self.fields}


def _read(out_dir: Path) -> dict[str, Any] | None:
    p = out_dir / JOB_FILE
    if not p.exists():
        return None
    try:
        old = json.loads(p.read_text(encoding="utf-8"))
        if not isinstance(old, dict) or not isinstance(old.get("fields"), dict):
            raise ValueError("not a job identity")
        return old
    except (OSError, ValueError) as e:
        # unreadable: treat as another job's, so nothing is mixed into it without --overwrite
        return {"kind": "unknown", "name": "", "fields": {"unreadable job.json": str(e)}}


def _leftovers(out_dir: Path, known: bool) -> list[Path]:
    """Outputs of a job in this folder: shards with their stats files, scores parts, and (when a job.json
    says the folder is ours, or shards do) our fixed file names, which a user's own folder may also hold."""
    found = sorted(p for p in out_dir.iterdir() if p.is_file() and _SHARD.match(p.name))
    scores = out_dir / "scores"
    if scores.is_dir():
        found += sorted(scores.glob("part-*.jsonl"))
    if known or found or (out_dir / "manifest.json").exists():
        found += [out_dir / n for n in (*_OUTPUTS, JOB_FILE) if (out_dir / n).exists()]
    return found


def _differences(old: dict[str, Any], new: Identity) -> str:
    if old.get("kind") != new.kind:
        return f"a {old.get('kind')} job's outputs, this is a {new.kind} job"
    keys = sorted(set(old["fields"]) | set(new.fields) | {"name"})
    was = {**old["fields"], "name": old.get("name")}
    now = {**new.fields, "name": new.name}
    diff = [k for k in keys if was.get(k) != now.get(k)]
    return "; ".join(f"{k}: {_short(was.get(k))} -> {_short(now.get(k))}" for k in diff) or "unknown differences"


def _short(v: Any) -> str:
    text = json.dumps(v, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def claim(out_dir: Path, ident: Identity, overwrite: bool) -> None:
    """Make `out_dir` this job's: create it, sweep stale temp files, and resume, refuse or start over."""
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "exists and is not a folder", str(out_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    swept = sweep_tmp(out_dir)
    if swept:
        log.info("removed %d stale temp file(s) from %s", swept, out_dir / TMP)
    old = _read(out_dir)
    if old != ident.to_json():
        leftovers = _leftovers(out_dir, old is not None)
        if leftovers:
            why = _differences(old, ident) if old else f"outputs of an unknown run ({leftovers[0].name}, no {JOB_FILE})"
            if not overwrite:
                raise FolderInUse(f"{out_dir} holds another run ({why}); use a new folder or --overwrite")
            for p in leftovers:
                p.unlink(missing_ok=True)
            log.info("--overwrite: removed %d file(s) of the previous run in %s", len(leftovers), out_dir)
    write_json_atomic(out_dir / JOB_FILE, ident.to_json())
