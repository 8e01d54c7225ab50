"""The filter protocol: `score(image, info) -> scores` (numbers, expensive) then `keep(scores) -> reason`.

Scores are separate from decisions, so thresholds can be re-applied later without re-scoring
(`textinfuse filter --rescore`). Filters run cheapest first; once one rejects an image, the costlier
ones are skipped (their scores are computed later if a looser config needs them).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np


class Filter:
    """Subclass: set `name` and `order` (cheap first), write `score` and `keep`. `cfg` is this filter's
    section of the FilterConfig (a frozen dataclass)."""

    name: ClassVar[str]
    order: ClassVar[int]

    def score(self, image: np.ndarray, info: dict[str, Any], cfg: Any) -> dict[str, float]:
        raise NotImplementedError

    def keep(self, scores: dict[str, float], cfg: Any) -> str | None:
        """None to keep, else the reason (a short snake_case word: it becomes a count key)."""
        raise NotImplementedError
