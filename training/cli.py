"""`textinfuse train`: parse flags, load the config, call `training.loop.train` (the Python API).

Wiring (in textinfuse/cli.py): `from training.cli import add_parser` then `add_parser(sub)` where `sub`
is the subparsers object; the subcommand's handler is set with `set_defaults(func=cmd_train)`.
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
