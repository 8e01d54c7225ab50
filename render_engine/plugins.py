"""Plugins: effects and filters are classes, one per module, found without any list to edit.

The built-in ones are the modules of their package (`render_engine/effects/`, `pipelines/filters/`).
A user's own are Python files outside the project, named in the `TEXTINFUSE_PLUGINS` environment
variable (paths separated by `os.pathsep`; a folder stands for its `*.py` files, in name order) and
loaded once, when the first registry is built, in every process that builds one (the Ray executor
forwards the variable to its workers), or with `load(path)` from Python. A plugin file may define
effects, filters or both; each lands in its registry as if it were a module of that package, and the
job configs (`effects.enabled`, a `FilterConfig` section per filter) are assembled from the registries.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

ENV = "TEXTINFUSE_PLUGINS"
_registries: list[tuple[type, dict[str, object]]] = []  # (base class, its registry) as built, in order
_loaded: dict[str, ModuleType] = {}  # resolved path -> plugin module
_env_read = False


def _members(mod: ModuleType, base: type) -> list[type]:
    """The `base` subclasses `mod` itself defines that have a `name` (helpers without one are skipped)."""
    return [obj for obj in vars(mod).values()
            if isinstance(obj, type) and issubclass(obj, base) and obj is not base
            and obj.__module__ == mod.__name__ and isinstance(getattr(obj, "name", None), str)]


def _add(registry: dict[str, object], mod: ModuleType, base: type) -> None:
    for cls in _members(mod, base):
        old = registry.get(cls.name)
        if old is not None and type(old) is not cls:
            raise ValueError(f"{getattr(mod, '__file__', mod.__name__)}: {base.__name__.lower()} name {cls.name!r} "
                             f"is taken by {type(old).__module__}.{type(old).__name__}")
        registry[cls.name] = cls()


def discover(package: str, paths: Iterable[str], base: type, skip: tuple[str, ...] = ("base",)) -> dict[str, object]:
    """Instances of the `base` subclasses defined in `package`'s modules, keyed by their `name`."""
    found: dict[str, object] = {}
    for m in sorted(pkgutil.iter_modules(list(paths)), key=lambda m: m.name):
        if m.name not in skip:
            _add(found, importlib.import_module(f"{package}.{m.name}"), base)
    return found


def registry(package: str, paths: Iterable[str], base: type) -> dict[str, object]:
    """The registry of `base`: `package`'s own modules, then the plugin files (which `load` adds to it
    later too). The dict is the live registry: keep it, do not copy it."""
    found = discover(package, paths, base)
    _registries.append((base, found))
    for mod in list(_loaded.values()):
        _add(found, mod, base)
    load_env()
    return found


def load_env() -> None:
    """Load the files `TEXTINFUSE_PLUGINS` names (once per process)."""
    global _env_read
    if _env_read:
        return
    _env_read = True  # first: a plugin that imports another registry must not load itself again
    for spec in filter(None, os.environ.get(ENV, "").split(os.pathsep)):
        p = Path(spec).expanduser()
        if not p.exists():
            raise FileNotFoundError(f"{ENV}: {p}: no such file or folder")
        for f in sorted(p.glob("*.py")) if p.is_dir() else [p]:
            load(f)


def load(path: str | Path) -> ModuleType:
    """Import the plugin file `path` (once) and add its effects and filters to every registry, including
    those built later. Its module name is `textinfuse_plugin_<stem>`."""
    p = Path(path).resolve()
    if str(p) in _loaded:
        return _loaded[str(p)]
    name = f"textinfuse_plugin_{p.stem}"
    if name in sys.modules:
        raise ValueError(f"{p}: a plugin named {p.stem!r} is already loaded ({sys.modules[name].__file__})")
    spec = importlib.util.spec_from_file_location(name, p)
    if spec is None or spec.loader is None:
        raise ValueError(f"{p}: not a Python file")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # before running it: dataclasses look their module up there
    try:
        spec.loader.exec_module(mod)
        for base, reg in _registries:
            _add(reg, mod, base)
    except BaseException:
        sys.modules.pop(name, None)
        unload(mod)
        raise
    _loaded[str(p)] = mod
    return mod


def unload(mod: ModuleType) -> None:
    """Take a plugin module's classes out of every registry again (tests; a running job keeps what it has)."""
    for base, reg in _registries:
        for cls in _members(mod, base):
            if type(reg.get(cls.name)) is cls:
                del reg[cls.name]
    for key in [k for k, m in _loaded.items() if m is mod]:
        del _loaded[key]
    sys.modules.pop(mod.__name__, None)
