"""Plugin discovery: one class per module in a package, found at import time (effects, filters).

Adding an effect or a filter is then adding one file; no list to edit.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable


def discover(package: str, paths: Iterable[str], base: type, skip: tuple[str, ...] = ("base",)) -> dict[str, object]:
    """Instances of the `base` subclasses defined in `package`'s modules, keyed by their `name`."""
    found: dict[str, object] = {}
    for m in sorted(pkgutil.iter_modules(list(paths)), key=lambda m: m.name):
        if m.name in skip:
            continue
        mod = importlib.import_module(f"{package}.{m.name}")
        for obj in vars(mod).values():
            if isinstance(obj, type) and issubclass(obj, base) and obj is not base and obj.__module__ == mod.__name__:
                found[obj.name] = obj()
    return found
