"""Real-image filters, one per module (validity, clarity, text density). Adding one is adding a file."""

from __future__ import annotations

from render_engine.plugins import discover

from .base import Filter

REGISTRY: dict[str, Filter] = discover(__name__, __path__, Filter)  # type: ignore[assignment]


def ordered() -> list[Filter]:
    return sorted(REGISTRY.values(), key=lambda f: (f.order, f.name))


__all__ = ["REGISTRY", "Filter", "ordered"]
