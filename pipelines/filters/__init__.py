"""Real-image filters, one per module (validity, clarity, text density). Adding one is adding a file."""

from __future__ import annotations

import importlib
import pkgutil

from .base import Filter

REGISTRY: dict[str, Filter] = {}

for _m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _m.name == "base":
        continue
    _mod = importlib.import_module(f"{__name__}.{_m.name}")
    for _obj in vars(_mod).values():
        if isinstance(_obj, type) and issubclass(_obj, Filter) and _obj is not Filter and _obj.__module__ == _mod.__name__:
            REGISTRY[_obj.name] = _obj()


def ordered() -> list[Filter]:
    return sorted(REGISTRY.values(), key=lambda f: (f.order, f.name))


__all__ = ["REGISTRY", "Filter", "ordered"]
