"""Effects, one per module in this package; each module defines one `Effect` subclass.

Adding an effect is adding a file here: the registry discovers modules at import time.
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import STAGES, Effect, EffectContext, Layers

REGISTRY: dict[str, Effect] = {}

for _m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _m.name == "base":
        continue
    _mod = importlib.import_module(f"{__name__}.{_m.name}")
    for _obj in vars(_mod).values():
        if isinstance(_obj, type) and issubclass(_obj, Effect) and _obj is not Effect and _obj.__module__ == _mod.__name__:
            REGISTRY[_obj.name] = _obj()


def ordered(names: tuple[str, ...] | None = None) -> list[Effect]:
    """Effects by stage then name (a fixed order keeps samples reproducible)."""
    chosen = [e for n, e in REGISTRY.items() if names is None or n in names]
    return sorted(chosen, key=lambda e: (STAGES.index(e.stage), e.name))


__all__ = ["REGISTRY", "Effect", "EffectContext", "Layers", "ordered"]
