"""`textinfuse export`: a trained autoencoder as a self-describing folder that `load_autoencoder` loads.

The folder: `config.json` (`format`, `model`, `arch`, `f`, `c`, `weights` ("ema" or "model"), `step`,
`train_config`: the run's resolved training config), `model.safetensors` (the autoencoder's weights only,
keys as `Autoencoder.state_dict()` names them, e.g. `encoder.conv_in.weight`; the same facts in its
metadata, so the file alone loads too) and `latent_stats.json` when the run has one. It is written to a
temporary folder beside `out` and renamed into place; an earlier export at `out` is replaced.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from safetensors.torch import save_file

from .checkpoint import _remove  # unlinks a symlink, never follows it
from .inference import EXPORT_FORMAT, STATS_FILE, is_export, load_with_info, read_stats

log = logging.getLogger(__name__)


def export(path: str | Path, out: str | Path, use_ema: bool = True) -> dict:
    """Export the autoencoder of a run (its latest checkpoint), checkpoint or weights file to folder
    `out`: EMA weights unless `use_ema` is False. Returns the written config.json's contents."""
    out = Path(out)
    if out.exists() and not (out.is_dir() and (is_export(out) or not any(out.iterdir()))):
        raise ValueError(f"{out}: exists and is not an export folder (choose another --out)")
    lo = load_with_info(path, use_ema, device="cpu")
    stats = None
    if lo.weights.home is not None and (lo.weights.home / STATS_FILE).exists():
        stats = read_stats(lo.weights.home / STATS_FILE, lo.module.cfg.c)
        if (stats.get("checkpoint_step"), stats.get("weights")) != (lo.step, lo.kind):
            log.warning("%s: computed on the %s weights of step %s, exported: %s weights of step %s; copied "
                        "anyway", lo.weights.home / STATS_FILE, stats.get("weights"), stats.get("checkpoint_step"),
                        lo.kind, lo.step)
    config = {"format": EXPORT_FORMAT, "model": lo.model, "arch": lo.arch, "f": int(lo.module.cfg.f),
              "c": int(lo.module.cfg.c), "weights": lo.kind, "step": lo.step, "train_config": lo.train_config}
    meta = {"format": EXPORT_FORMAT, "config": json.dumps(lo.train_config), "weights": lo.kind}
    if lo.step is not None:
        meta["step"] = str(lo.step)
    tmp = out.with_name(f".{out.name}.tmp")
    _remove(tmp)
    tmp.mkdir(parents=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in lo.module.state_dict().items()}
    save_file(tensors, str(tmp / "model.safetensors"), metadata=meta)
    (tmp / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    if stats is not None:
        (tmp / STATS_FILE).write_text(json.dumps(stats, indent=1) + "\n")
    _remove(out)
    tmp.rename(out)
    log.info("exported %s %s weights of step %s -> %s", lo.model, lo.kind, lo.step, out)
    return config
