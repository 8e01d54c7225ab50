"""Named recipes: YAML job configs in configs/recipes/ (f16, f32, en, zh, mixed, benchmark-like).

A recipe is the bottom layer of a job's config: the --config file goes over it, flags and --set on top.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from render_engine.paths import data_root
from textinfuse.configio import ConfigError, read_mapping


def recipes_dir() -> Path:
    return data_root() / "configs" / "recipes"


def available() -> list[str]:
    return sorted(p.stem for p in recipes_dir().glob("*.yaml"))


def load_recipe(name_or_path: str) -> dict[str, Any]:
    """The recipe's mapping, with `recipe` set to its name (recorded in the manifest)."""
    p = Path(name_or_path)
    if not p.suffix:
        p = recipes_dir() / f"{name_or_path}.yaml"
        if not p.exists():
            raise ConfigError(f"unknown recipe {name_or_path!r}; available: {', '.join(available())}")
    data = read_mapping(p)
    data["recipe"] = p.stem
    return data
