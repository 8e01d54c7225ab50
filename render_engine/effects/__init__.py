"""Effects, one per module in this package (or in a plugin file, see `render_engine.plugins`); each
module defines one `Effect` subclass.

Adding an effect is adding a file: the registry discovers it at import time, and the default
`effects.enabled` list is built from the registry (every effect whose `enabled_by_default` is true).
"""

from __future__ import annotations

from ..plugins import registry
from .base import STAGES, Effect, EffectContext, Layers

REGISTRY: dict[str, Effect] = registry(__name__, __path__, Effect)  # type: ignore[assignment]


def ordered(names: tuple[str, ...] | None = None) -> list[Effect]:
    """Effects by stage then name (a fixed order keeps samples reproducible)."""
    unknown = sorted(set(names or ()) - set(REGISTRY))
    if unknown:  # a config from a process that had a plugin this one lacks: never render without it
        raise KeyError(f"effects {unknown} are not registered here (a plugin file? set TEXTINFUSE_PLUGINS "
                       "where the renderer runs)")
    chosen = [e for n, e in REGISTRY.items() if names is None or n in names]
    return sorted(chosen, key=lambda e: (STAGES.index(e.stage), e.name))


def default_enabled() -> tuple[str, ...]:
    """`effects.enabled`'s default: the effects on by default, by `default_rank` then name (the order
    only names them: effects apply by stage, then name)."""
    on = [e for e in REGISTRY.values() if e.enabled_by_default]
    return tuple(e.name for e in sorted(on, key=lambda e: (e.default_rank, e.name)))


__all__ = ["REGISTRY", "Effect", "EffectContext", "Layers", "default_enabled", "ordered"]
