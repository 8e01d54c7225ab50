"""Effects, one per module in this package; each module defines one `Effect` subclass.

Adding an effect is adding a file here: the registry discovers modules at import time.
"""

from __future__ import annotations

from ..plugins import discover
from .base import STAGES, Effect, EffectContext, Layers

REGISTRY: dict[str, Effect] = discover(__name__, __path__, Effect)  # type: ignore[assignment]


def ordered(names: tuple[str, ...] | None = None) -> list[Effect]:
    """Effects by stage then name (a fixed order keeps samples reproducible)."""
    chosen = [e for n, e in REGISTRY.items() if names is None or n in names]
    return sorted(chosen, key=lambda e: (STAGES.index(e.stage), e.name))


__all__ = ["REGISTRY", "Effect", "EffectContext", "Layers", "ordered"]
