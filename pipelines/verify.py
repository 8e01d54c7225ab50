"""`textinfuse verify DIR`: check every shard of a render or filter folder against its stats and the manifest,
with `webdataset`.

Reports missing shards (expected but absent or without stats), extra files (tars nobody listed),
corrupt shards (sha256 or size mismatch, unreadable tar, wrong member count, invalid JSON, samples
without an image, JSON or text, character labels that do not read: a version 2 label whose `chars.npy`
is missing, not an integer (N, 4) array, or has another number of rows than the label has characters)
and returns the problems; the CLI exits non-zero if there are any.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from render_engine.labels import CHARS_MEMBER, LabelError, columns
from textinfuse.images import IMAGE_EXTS

from .shards import sha256_file

log = logging.getLogger(__name__)
NAME = re.compile(r"^[A-Za-z0-9_-]+$")  # what OutputConfig.name allows
MAX_SHARDS = 10_000_000


@dataclass
class Report:
    checked: int = 0
    samples: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, path: str, why: str) -> None:
        self.problems.append((path, why))
        log.error("%s: %s", path, why)


def _check_sample(s: dict[str, Any], kind: str) -> str | None:
    """What is wrong with one sample read back, or None: a render sample has its image, label and text
    (the text equal to the label's) and characters that read (version 1 or 2); a filter sample its
    image and `filter.json` scores that kept it."""
    if not any(k.rsplit(".", 1)[-1].lower() in IMAGE_EXTS for k in s if not k.startswith("__")):
        return "lacks an image member"
    if kind == "filter":
        if "filter.json" not in s:
            return "lacks its filter.json scores"
        return None if json.loads(s["filter.json"]).get("keep") is True else "its scores say it was not kept"
    if "json" not in s or "txt" not in s:
        return "lacks a json or txt member"
    label = json.loads(s["json"])
    if not isinstance(label, dict) or label.get("text") != s["txt"].decode("utf-8"):
        return "txt differs from the label text"
    try:
        columns(label, s.get(CHARS_MEMBER))
    except LabelError as e:
        return str(e)
    return None


def _check_tar(tar: Path, stats: dict[str, Any], report: Report, kind: str) -> None:
    import webdataset as wds

    if tar.stat().st_size != stats.get("bytes"):
        report.add(tar.name, f"size {tar.stat().st_size} != {stats.get('bytes')} in stats")
        return
    if sha256_file(tar) != stats.get("sha256"):
        report.add(tar.name, "sha256 differs from stats (corrupted after writing)")
        return
    n = 0
    try:
        for s in wds.WebDataset([str(tar)], shardshuffle=False, empty_check=False):
            n += 1
            why = _check_sample(s, kind)
            if why:
                report.add(tar.name, f"sample {s['__key__']}: {why}")
                return
    except (ValueError, UnicodeDecodeError, AttributeError) as e:
        report.add(tar.name, f"invalid JSON or text ({str(e).splitlines()[0]})")
        return
    except Exception as e:  # webdataset/tarfile raise various errors on damaged tars
        report.add(tar.name, f"unreadable tar ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
        return
    if n != stats.get("count"):
        report.add(tar.name, f"{n} samples, stats say {stats.get('count')}")
        return
    report.samples += n


def _against_manifest(manifest: dict[str, Any], listed: dict[Any, dict], shard: int, fname: str,
                      stats: dict[str, Any], report: Report) -> bool:
    """The stats file must agree with the manifest (a tar and its stats replaced together do not pass),
    and hold every sample the run asked for (a short shard is a failed one, never a done one)."""
    entry = listed.get(shard)
    if entry is None:
        report.add(fname, "not listed in the manifest (shard not finished when the manifest was written?)")
        return False
    for k in ("sha256", "bytes", "count"):
        if entry.get(k) != stats.get(k):
            report.add(fname, f"{k} in its stats file differs from the manifest (shard replaced after the run?)")
            return False
    cfg = manifest.get("config", {})
    per, total = cfg.get("output", {}).get("samples_per_shard"), cfg.get("num_samples")
    if isinstance(per, int) and isinstance(total, int) and stats.get("count") != min(per, total - shard * per):
        report.add(fname, f"{stats.get('count')} samples, the run asked for {min(per, total - shard * per)}")
        return False
    return True


def verify(folder: str | Path) -> Report:
    folder = Path(folder)
    report = Report()
    man_path = folder / "manifest.json"
    manifest: dict[str, Any] | None = None
    listed: dict[Any, dict] = {}
    kind = "render"
    try:
        manifest = json.loads(man_path.read_text())
        kind = manifest.get("kind", "render")
        name = manifest["config"]["name"] if kind == "filter" else manifest["config"]["output"]["name"]
        num = manifest["num_shards"]
        if not isinstance(name, str) or not NAME.match(name):  # a manifest from elsewhere names files here
            raise ValueError(f"shard prefix {name!r} is not a plain name")
        if not isinstance(num, int) or not 0 <= num <= MAX_SHARDS:
            raise ValueError(f"num_shards {num!r} is out of range")
        expected = {s: f"{name}-{s:06d}.tar" for s in range(num)}
        listed = {s.get("shard"): s for s in manifest.get("shards", []) if isinstance(s, dict)}
        for f in manifest.get("failed_shards", []):
            report.add(str(man_path), f"shard {f.get('shard')} failed: {f.get('reason')}")
    except (OSError, ValueError, KeyError, TypeError) as e:
        manifest, kind = None, "render"
        report.add(str(man_path), f"missing or unreadable manifest ({type(e).__name__}: {e})")
        stats_files = sorted(folder.glob("*.stats.json"))
        name = stats_files[0].name.rsplit("-", 1)[0] if stats_files else "textinfuse"
        found = (re.match(rf"{re.escape(name)}-(\d{{6}})\.stats\.json$", p.name) for p in stats_files)
        expected = {int(m.group(1)): m.group(0)[:-11] + ".tar" for m in found if m}
    pat = re.compile(rf"{re.escape(name)}-(\d{{6}})\.tar$")
    for tar in sorted(folder.glob("*.tar")):
        m = pat.match(tar.name)
        if not m or int(m.group(1)) not in expected:
            report.add(tar.name, "extra tar: not part of this dataset")
    for shard, fname in sorted(expected.items()):
        tar = folder / fname
        stats_path = folder / fname.replace(".tar", ".stats.json")
        if not tar.exists():
            report.add(fname, "missing shard")
            continue
        try:
            stats = json.loads(stats_path.read_text())
        except (OSError, ValueError):
            report.add(fname, "missing or unreadable stats file (shard not finished)")
            continue
        report.checked += 1
        if manifest is None or _against_manifest(manifest, listed, shard, fname, stats, report):
            _check_tar(tar, stats, report, kind)
    return report
