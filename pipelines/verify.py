"""`textinfuse verify DIR`: check every shard against its stats and the manifest, with `webdataset`.

Reports missing shards (expected but absent or without stats), extra files (tars nobody listed),
corrupt shards (sha256 or size mismatch, unreadable tar, wrong member count, invalid JSON, samples
without an image, JSON or text) and returns the problems; the CLI exits non-zero if there are any.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .shards import sha256_file

log = logging.getLogger(__name__)
IMAGE_EXTS = ("png", "jpg", "webp")


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


def _check_tar(tar: Path, stats: dict[str, Any], report: Report) -> None:
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
            key = s["__key__"]
            if not any(k in s for k in IMAGE_EXTS) or "json" not in s or "txt" not in s:
                report.add(tar.name, f"sample {key} lacks an image, json or txt member")
                return
            label = json.loads(s["json"])
            if label.get("text") != s["txt"].decode("utf-8"):
                report.add(tar.name, f"sample {key}: txt differs from the label text")
                return
    except (ValueError, UnicodeDecodeError) as e:
        report.add(tar.name, f"invalid JSON or text ({str(e).splitlines()[0]})")
        return
    except Exception as e:  # webdataset/tarfile raise various errors on damaged tars
        report.add(tar.name, f"unreadable tar ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
        return
    if n != stats.get("count"):
        report.add(tar.name, f"{n} samples, stats say {stats.get('count')}")
        return
    report.samples += n


def _against_manifest(manifest: dict[str, Any], shard: int, fname: str, stats: dict[str, Any],
                      report: Report) -> bool:
    """The stats file must agree with the manifest (a tar and its stats replaced together do not pass),
    and hold every sample the run asked for (a short shard is a failed one, never a done one)."""
    listed = {s.get("shard"): s for s in manifest.get("shards", [])}.get(shard)
    if listed is None:
        report.add(fname, "not listed in the manifest (shard not finished when the manifest was written?)")
        return False
    for k in ("sha256", "bytes", "count"):
        if listed.get(k) != stats.get(k):
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
    try:
        manifest = json.loads(man_path.read_text())
        name = manifest["config"]["output"]["name"]
        expected = {s: f"{name}-{s:06d}.tar" for s in range(manifest["num_shards"])}
        for f in manifest.get("failed_shards", []):
            report.add(str(man_path), f"shard {f.get('shard')} failed: {f.get('reason')}")
    except (OSError, ValueError, KeyError, TypeError) as e:
        manifest = None
        report.add(str(man_path), f"missing or unreadable manifest ({type(e).__name__})")
        stats_files = sorted(folder.glob("*.stats.json"))
        name = stats_files[0].name.rsplit("-", 1)[0] if stats_files else "textinfuse"
        expected = {int(p.name[len(name) + 1 : -11]): p.name[:-11] + ".tar" for p in stats_files}
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
        if manifest is None or _against_manifest(manifest, shard, fname, stats, report):
            _check_tar(tar, stats, report)
    return report
