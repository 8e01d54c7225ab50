"""Readability calibration: how well the bundled OCR reads each difficulty level, and each face at each size.

`run_calibrate(cfg, out_dir)` measures two things with `textinfuse.ocr.read` and the order-free character
F1 of its output against the label (`textinfuse.metrics.char_f1`):

1. **Levels**: `samples_per_level` samples per level (1-5) per language (en, zh), rendered with the
   `render` config restricted to that level and language, i.e. exactly what a render job draws there.
   Reported per level and language: mean, std, median, 10th percentile and n of the per-sample F1.
2. **Cells**: for each face (bundled, or `render.fonts`'s), each em size in `sizes`, each script the
   face writes (en for Latin, zh for Han; `cjk_latin` adds English set in Chinese faces) and each effect
   in `effects` ("none" or an effect of `render_engine/effects/`), `samples_per_cell` controlled samples:
   that one face, that em size, page layout (one column, on the paper sheet; `cell_mode: scene` sets
   scene text straight on the photo instead), the contrast and background choice of `cell_level` (level
   1: WCAG 7-21, calmest of 4 crops) and only that effect, with its chance raised to 1
   (`effects.strength` = 1 / the effect's chance at `cell_level`; an effect may still decline a sample,
   perspective where the warp would push text off the canvas: `applied` counts where it did).
   The size is fixed honestly, not by a level whose range happens to cover it: `text.level_scale` stretches
   `cell_level`'s em range so that it starts at the size (size / range start) and `text.char_px` is
   [size, size], so every block of every sample is set at exactly that size and the label's
   `difficulty.char_px` says so. Effect parameters are `cell_level`'s (level 1: blur sigma 0.3-0.9,
   noise sigma 1.5-4, JPEG quality 70-95, perspective corners up to 3 % of the canvas).

Cost of the defaults (16 bundled faces: 11 Latin, 5 Chinese that also write Latin): levels 5 x 2 x 40 =
400 OCR calls; cells (11 + 5 x 2 = 21 face-scripts) x 7 sizes x 5 effects = 735 cells x 6 = 4,410 OCR
calls; 4,810 in all, one per sample. Measured per sample (render + OCR, 256x256, one busy core): ~1 s for
the level mix, ~2 s for a cell (a dense page: many lines to recognise): ~9,200 core-seconds, about 10-12
minutes on 16 cores (`--executor ray --workers 16`), over two hours on one. Shrink it with `sizes`,
`effects`, `faces` and the sample counts.

Work runs on the project's executors: one task per cell and one per `samples_per_task` level samples,
each sample seeded from (seed, what it measures, its index), so results do not depend on worker count,
chunking or order. A sample that fails to render, or whose OCR raises, is counted (per level and per
cell, with the first errors' messages) and left out of the statistics; a sample without any text is
counted as `empty` and left out too; a face that cannot be loaded fails its cells only, and fonts the
library skipped are listed. None of these ends the run.

Outputs, in DIR: `calibration.json` (config, config hash, versions, the per-level table, one row per
cell, summaries), `calibration.html` (self-contained: charts as inline PNG), `levels.png` (mean F1 per
level per language, std as error bars) and `examples/` (the example images the page shows).
`calibration.json` is written last: a folder holding it with the same config hash is reused as it is (no
OCR at all; missing charts or page are redrawn from it) unless `overwrite`; one from another config is
refused unless `overwrite`. Until then every finished task is appended to `calibration.partial.jsonl`
(its example images already in `examples/`): a run stopped before the end (Ctrl-C, a lost machine) and
started again with the same config in the same folder measures only the tasks that are missing (a task
that failed is measured again); another config is refused there too, and `overwrite` starts over. The
file goes when the run completes. `seconds` in the JSON is the last run's wall time; `task_seconds` sums every task's.
"""

from __future__ import annotations

from .config import SCRIPT_OF_LANG, CalibrateConfig, cell_config, effect_strength, level_config
from .page import HTML_NAME, LEVELS_PNG, write_report
from .run import EXAMPLES, JSON_NAME, PARTIAL, run_calibrate
from .summary import CAL_VERSION, band_of, document, legibility_table, stats
from .tasks import Face, Task, calibrate_task, face_langs, make_tasks, sample_rng, select_faces

__all__ = ["CAL_VERSION", "EXAMPLES", "HTML_NAME", "JSON_NAME", "LEVELS_PNG", "PARTIAL", "SCRIPT_OF_LANG",
           "CalibrateConfig", "Face", "Task", "band_of", "calibrate_task", "cell_config", "document",
           "effect_strength", "face_langs", "legibility_table", "level_config", "make_tasks", "run_calibrate",
           "sample_rng", "select_faces", "stats", "write_report"]
