"""Build fonts/legibility.json (the bundled faces' legibility profiles, render_engine/legibility.py) from one
or more `textinfuse calibrate` runs.

    python scripts/build_legibility.py CAL_DIR [CAL_DIR ...] [--out fonts/legibility.json]

Each CAL_DIR holds a finished calibration.json whose cells were measured under the guard's conditions
(`cell_mode: page`, `cell_level: 1`). The no-effect cells of all runs are pooled per face, language and
size (mean weighted by each cell's sample count), so a later run with other sizes or more samples adds to
an earlier one. The runs' commands and config hashes are recorded in the file's `sources`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.calibrate import legibility_table  # noqa: E402
from render_engine.legibility import bundled_table  # noqa: E402


def _dumps(doc: dict) -> str:
    """JSON with one line per profile and per source (readable, diffable)."""
    lines = []
    for k, v in doc.items():
        if isinstance(v, list):
            items = ",\n".join("  " + json.dumps(x, ensure_ascii=False) for x in v)
            lines.append(f"{json.dumps(k)}: [\n{items}\n ]")
        else:
            lines.append(f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}")
    return "{\n " + ",\n ".join(lines) + "\n}\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="calibration folders (each with calibration.json)")
    ap.add_argument("--out", default=str(bundled_table()), help="where to write (default: fonts/legibility.json)")
    a = ap.parse_args(argv)
    docs = []
    for d in a.runs:
        doc = json.loads((Path(d) / "calibration.json").read_text(encoding="utf-8"))
        cfg = doc["config"]
        if cfg.get("cell_mode", "page") != "page" or cfg.get("cell_level", 1) != 1:
            print(f"{d}: cells not measured on a page at cell_level 1: left out", file=sys.stderr)
            continue
        docs.append(doc)
    if not docs:
        print("no usable calibration", file=sys.stderr)
        return 2
    table = legibility_table(*docs)
    out = {**table.to_json(),
           "conditions": "page on the paper sheet, level-1 contrast and background, no effect (textinfuse calibrate cells)",
           "sources": [{"config_hash": d["config_hash"], "created": d["created"], "samples_per_cell": d["config"]["samples_per_cell"],
                        "sizes": d["config"]["sizes"], "versions": {k: d["versions"].get(k) for k in ("rapidocr", "onnxruntime")}}
                       for d in docs]}
    Path(a.out).write_text(_dumps(out), encoding="utf-8")
    print(f"{a.out}: {len(table)} profiles from {len(docs)} calibration(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
