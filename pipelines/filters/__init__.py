"""Real-image filters, one per module (validity, clarity, text density) or per plugin file (see
`render_engine.plugins`). Adding one is adding a file: its config dataclass becomes a section of the
filter job's config, under the filter's name."""

from __future__ import annotations

import dataclasses

from render_engine.plugins import registry

from .base import Filter, Rule

REGISTRY: dict[str, Filter] = registry(__name__, __path__, Filter)  # type: ignore[assignment]
_CONFIGS: dict[tuple[type, tuple[tuple[str, type], ...]], type] = {}


def ordered() -> list[Filter]:
    return sorted(REGISTRY.values(), key=lambda f: (f.order, f.name))


def config_class(job: type, name: str, module: str) -> type:
    """Class `module.name`: the frozen dataclass `job` (the job's own fields) plus one section per
    registered filter, in filter order, named after the filter and typed by its `config`, so every
    filter's settings load, override (`--set clarity.max_ringing=9`) and hash alike. The same registry
    gives the same class; a plugin loaded later gives a new one."""
    sections = tuple((f.name, f.config) for f in ordered())
    cls = _CONFIGS.get((job, sections))
    if cls is None:
        own = {x.name for x in dataclasses.fields(job)}
        for f in ordered():
            if not (dataclasses.is_dataclass(f.config) and f.config.__dataclass_params__.frozen):
                raise TypeError(f"filter {f.name}: config must be a frozen dataclass, got {f.config!r}")
            keys = {x.name for x in dataclasses.fields(f.config)}
            missing = [r.key for r in f.rules if r.key not in keys]
            if missing or f.name in own:
                raise TypeError(f"filter {f.name}: " + (f"rules use {missing}, not fields of {f.config.__name__}"
                                                        if missing else f"its name is a {name} field"))
        cls = dataclasses.make_dataclass(
            name, [(n, c, dataclasses.field(default_factory=c)) for n, c in sections], bases=(job,), frozen=True)
        cls.__module__, cls.__doc__ = module, job.__doc__  # pickled by reference, as `module.name`
        _CONFIGS[(job, sections)] = cls
    return cls


def check_sections(cfg: object, job: type) -> None:
    """Refuse a config (built where a plugin was loaded) whose filter sections this process has no filter
    for: skipping that filter silently would keep what it should drop."""
    own = {x.name for x in dataclasses.fields(job)}
    unknown = sorted({x.name for x in dataclasses.fields(cfg)} - own - set(REGISTRY))  # type: ignore[arg-type]
    if unknown:
        raise KeyError(f"filters {unknown} are not registered here (a plugin file? set TEXTINFUSE_PLUGINS "
                       "where the filter runs)")


__all__ = ["REGISTRY", "Filter", "Rule", "check_sections", "config_class", "ordered"]
