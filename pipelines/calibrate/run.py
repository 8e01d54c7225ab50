"""`run_calibrate`: the tasks on an executor, resumable through calibration.partial.jsonl, then the
document and the page. See the package doc."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from render_engine.legibility import Legibility, bundled_table
from textinfuse.configio import config_hash
from textinfuse.progress import Progress

from ..executors import Executor, LocalExecutor
from ..jobdir import FolderInUse
from ..shards import write_json_atomic
from .config import CalibrateConfig
from .page import HTML_NAME, LEVELS_PNG, write_report
from .summary import document, legibility_table
from .tasks import Task, calibrate_task, make_tasks, select_faces

log = logging.getLogger(__name__)

JSON_NAME = "calibration.json"
LEGIBILITY_NAME = "legibility.json"  # the cells' profiles, for fonts.legibility (render_engine/legibility.py)
EXAMPLES = "examples"
PARTIAL = "calibration.partial.jsonl"  # finished tasks of a run not yet done (see run_calibrate)


def run_calibrate(cfg: CalibrateConfig, out_dir: str | Path, executor: Executor | None = None,
                  overwrite: bool = False) -> dict[str, Any]:
    """Measure readability (see the module doc) into `out_dir`; return the calibration.json document.

    A folder whose calibration.json has this config's hash is reused without any OCR (its page and chart
    redrawn if missing); one with another config's is refused (FolderInUse) unless `overwrite`. An
    interrupted run of this config there is continued (calibration.partial.jsonl) unless `overwrite`; one
    of another config is refused the same way."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    h = config_hash(cfg)
    jpath = out / JSON_NAME
    if jpath.exists() and not overwrite:
        try:
            old = json.loads(jpath.read_text(encoding="utf-8"))
            old_hash = old.get("config_hash") if isinstance(old, dict) else None
        except (OSError, ValueError) as e:
            old, old_hash = None, f"unreadable ({type(e).__name__})"
        if old_hash == h:
            log.info("%s: calibration with config %s already there: reused (overwrite to measure again)", jpath, h)
            if not (out / HTML_NAME).exists() or not (out / LEVELS_PNG).exists():
                write_report(old, out)
            _write_legibility(cfg, old, out)
            return old
        raise FolderInUse(f"{out} holds a calibration of another config ({old_hash}, this is {h}): "
                          "use another folder, or overwrite")
    _need_ocr()
    t0 = time.perf_counter()
    faces, skipped = select_faces(cfg)
    tasks = make_tasks(cfg, faces)
    by_id = {f.id: f for f in faces}
    ppath = out / PARTIAL
    if overwrite:
        ppath.unlink(missing_ok=True)
    done = _read_partial(ppath, h)
    if not done:  # a fresh start: an earlier run's examples go (only our own file names)
        for p in (out / EXAMPLES).glob("level*-*-*.png"):
            p.unlink()
    todo = [t for t in tasks if str(t) not in done]
    total = sum(t.count for t in tasks)
    log.info("calibrating: %d faces, %d tasks, %d samples (one OCR call each)%s", len(faces), len(tasks), total,
             f"; {len(tasks) - len(todo)} tasks done by an earlier run, reused" if done else "")
    prog = Progress(total, "samples", already=total - sum(t.count for t in todo))
    results: dict[str, dict[str, Any]] = {}
    failed_tasks: list[dict[str, str]] = []

    def add(task: Task, res: dict[str, Any]) -> None:
        acc = results.setdefault(task.key, {"f1": [], "empty": 0, "render_failed": 0, "ocr_failed": 0,
                                            "applied": 0, "errors": [], "examples": [], "seconds": 0.0, "chunks": {}})
        acc["chunks"][task.start] = res  # chunks in sample order below, whatever order they came in

    for t in tasks:
        if str(t) in done:
            add(t, done[str(t)])
    with open(ppath, "a" if done else "w", encoding="utf-8") as pf:
        if not done:
            pf.write(json.dumps({"config_hash": h}) + "\n")
            pf.flush()

        def on_result(task: Task, res: dict[str, Any] | None, err: str | None) -> None:
            if err is not None:  # the task itself failed twice (a crashed worker): all its samples failed
                failed_tasks.append({"task": str(task), "reason": err})
                res = {"f1": [], "empty": 0, "render_failed": task.count, "ocr_failed": 0, "applied": 0,
                       "errors": [f"task: {err}"], "examples": [], "seconds": 0.0}
            else:  # done: its examples to files, its result to the partial file (a restart skips it)
                res = {**res, "examples": [_save_example(out, task, e) for e in res["examples"]]}
                pf.write(json.dumps({"task": str(task), "result": res}, ensure_ascii=False) + "\n")
                pf.flush()
            add(task, res)
            prog.advance(task.count, failures=res["render_failed"] + res["ocr_failed"])

        ex = executor or LocalExecutor()
        ex.run(calibrate_task, (cfg, by_id), todo, on_result)
    prog.close()
    for acc in results.values():
        for _, res in sorted(acc.pop("chunks").items()):
            for k in ("f1", "examples"):
                acc[k] += res[k]
            for k in ("empty", "render_failed", "ocr_failed", "applied", "seconds"):
                acc[k] += res[k]
            acc["errors"] += [e for e in res["errors"] if e not in acc["errors"]][: max(0, 3 - len(acc["errors"]))]
    doc = document(cfg, h, faces, skipped, tasks, results, failed_tasks, time.perf_counter() - t0)
    write_report(doc, out)
    _write_legibility(cfg, doc, out)
    write_json_atomic(jpath, doc)  # last: its presence means the run finished
    ppath.unlink(missing_ok=True)
    log.info("calibration -> %s (%s, %s)", out, JSON_NAME, HTML_NAME)
    return doc


def _write_legibility(cfg: CalibrateConfig, doc: dict[str, Any], out: Path) -> None:
    """DIR/legibility.json from the no-effect cells, when they were measured under the guard's conditions
    (page on the sheet, cell_level 1): what `fonts.legibility` takes for faces the bundled table lacks."""
    table = legibility_table(doc) if cfg.cell_mode == "page" and cfg.cell_level == 1 else None
    if table is not None and not (out / LEGIBILITY_NAME).exists():
        write_json_atomic(out / LEGIBILITY_NAME, {**_with_bundled(table).to_json(), "calibration": doc["config_hash"]})


def _with_bundled(table: Legibility) -> Legibility:
    """A complete table for `fonts.legibility` (which replaces the bundled one): the measured profiles over
    the bundled faces'."""
    p = bundled_table()
    return table.over(Legibility.load(p)) if p.exists() else table


def _save_example(out: Path, task: Task, e: dict[str, Any]) -> dict[str, Any]:
    """Write an example's PNG to DIR/examples/; return the example with its file name instead of its bytes."""
    d = out / EXAMPLES
    d.mkdir(exist_ok=True)
    name = f"level{task.level}-{task.lang}-{e['index']}.png"
    (d / name).write_bytes(e["png"])
    return {"file": f"{EXAMPLES}/{name}", **{k: v for k, v in e.items() if k != "png"}}


def _read_partial(path: Path, h: str) -> dict[str, dict[str, Any]]:
    """Results of tasks an interrupted run of this config finished (by task), from DIR/calibration.partial.jsonl;
    empty when there is none; FolderInUse when it belongs to another config. A line cut short by the
    interruption is skipped."""
    if not path.exists():
        return {}
    done = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f):
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if n == 0:
                if not isinstance(rec, dict) or rec.get("config_hash") != h:
                    old = rec.get("config_hash") if isinstance(rec, dict) else "unreadable"
                    raise FolderInUse(f"{path.parent} holds an unfinished calibration of another config ({old}, this "
                                      f"is {h}): run that config again to finish it, use another folder, or overwrite")
                continue
            if isinstance(rec, dict) and isinstance(rec.get("result"), dict) and isinstance(rec.get("task"), str):
                done[rec["task"]] = rec["result"]
    return done


def _need_ocr() -> None:
    """Fail now, not once per sample, when the OCR engine is not installed."""
    try:
        import onnxruntime  # noqa: F401
        import rapidocr  # noqa: F401
    except ImportError as e:
        raise ImportError("calibrate needs the OCR engine: pip install 'textinfuse[ocr]'") from e

