"""`textinfuse train`, `latent-stats` and `export`: parse flags and call the Python API
(`training.loop.train`, `training.latents.latent_stats`, `training.export.export`).

Wiring (in textinfuse/cli.py): `add_parser(sub)` (train) and `add_latent_parsers(sub)` (latent-stats,
export) where `sub` is the subparsers object; each handler is set with `set_defaults(func=...)`. Torch is
imported when a command runs, never when the parser is built.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(sub) -> None:
    """Add the `train` subcommand to an argparse subparsers object."""
    p = sub.add_parser("train", help="train an autoencoder on TextInfuse shards (needs the train extra)",
                       description="Train a text-capable autoencoder; see configs/train/*.yaml.")
    p.add_argument("--config", metavar="PATH", required=True, help="training config (YAML/TOML)")
    p.add_argument("--source", metavar="NAME=DIR", action="append", default=[],
                   help="shard folder of a source named in the stages' weights (repeatable)")
    p.add_argument("--out", metavar="RUN_DIR", required=True, help="run folder (config, metrics, checkpoints)")
    p.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                   help="override a config value, e.g. data.batch_size=16 (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR's latest checkpoint")
    p.set_defaults(func=cmd_train)


def _positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n}: must be at least 1")
    return n


def add_latent_parsers(sub) -> None:
    """Add the `latent-stats` and `export` subcommands to an argparse subparsers object."""
    p = sub.add_parser("latent-stats", help="per-channel mean/std of a run's latents -> RUN_DIR/latent_stats.json",
                       description="Encode images with a run's latest checkpoint and write the per-channel latent "
                                   "mean and std that load_autoencoder uses to normalise latents.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder (or export folder) to write latent_stats.json to")
    p.add_argument("--source", metavar="DIR", required=True,
                   help="shard folder (or .tar glob) or a folder of images (.png, .jpg, .jpeg, .webp)")
    p.add_argument("--num", type=_positive, default=256, help="images to encode (default 256)")
    p.add_argument("--resolution", type=_positive, default=256,
                   help="side of the centre crops in px, a multiple of the model's f (default 256)")
    p.add_argument("--checkpoint", metavar="PATH", help="a step folder or weights file instead of the latest")
    p.add_argument("--raw", action="store_true", help="the raw weights instead of the EMA weights")
    p.add_argument("--batch-size", type=_positive, default=16, help="images per forward pass (default 16)")
    p.set_defaults(func=cmd_latent_stats)

    e = sub.add_parser("export", help="a run's autoencoder as a self-describing folder (config.json, "
                                      "model.safetensors, latent_stats.json)")
    e.add_argument("run_dir", metavar="RUN_DIR", help="run folder (its latest checkpoint) or a ckpt/step_N folder")
    e.add_argument("--out", metavar="DIR", required=True, help="export folder (an earlier export there is replaced)")
    e.add_argument("--raw", action="store_true", help="the raw weights instead of the EMA weights")
    e.set_defaults(func=cmd_export)


def _needs_torch() -> int | None:
    """Exit status 2 with one line when the train extra is missing, else None."""
    try:
        import safetensors  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        print(f"error: this command needs the train extra ({e.name} missing): pip install 'textinfuse[train]'",
              file=sys.stderr)
        return 2
    return None


def cmd_latent_stats(a: argparse.Namespace) -> int:
    if (rc := _needs_torch()) is not None:
        return rc
    from .latents import latent_stats

    s = latent_stats(a.run_dir, a.source, num=a.num, resolution=a.resolution, checkpoint=a.checkpoint,
                     use_ema=not a.raw, batch_size=a.batch_size)
    print(f"latent stats of {s['samples']} images ({s['weights']} weights, step {s['checkpoint_step']}): "
          f"mean {min(s['mean']):.3g}..{max(s['mean']):.3g}, std {min(s['std']):.3g}..{max(s['std']):.3g} "
          f"-> {a.run_dir}/latent_stats.json")
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    if (rc := _needs_torch()) is not None:
        return rc
    from .export import export

    c = export(a.run_dir, a.out, use_ema=not a.raw)
    print(f"{c['model']} ({c['weights']} weights, step {c['step']}) -> {a.out}")
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    import logging

    from textinfuse.configio import ConfigError

    from .config import load_train_config

    try:
        cfg = load_train_config(a.config, a.set, a.source)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        from .loop import train
    except ImportError as e:
        print(f"error: training needs the train extra ({e.name} missing): pip install 'textinfuse[train]'",
              file=sys.stderr)
        return 2
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        summary = train(cfg, a.out, resume=a.resume)
    except KeyboardInterrupt:
        print(f"interrupted: run again with --resume to continue from {a.out}/ckpt", file=sys.stderr)
        return 130
    print(json.dumps({k: summary[k] for k in ("step", "loss", "psnr", "checkpoint")}))
    return 0
