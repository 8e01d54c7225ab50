"""The filter protocol: `score(image, info) -> scores` (numbers, expensive) then `keep(scores) -> reason`.

Scores are separate from decisions, so thresholds can be re-applied later without re-scoring
(`textinfuse filter --rescore`). Filters run cheapest first; once one rejects an image, the costlier
ones are skipped (their scores are computed later if a looser config needs them). A filter owns its
config: a dataclass of its thresholds, which becomes its section of the job's `FilterConfig`.

A filter's decision is a list of `Rule`s, checked in order: the first that fails gives the reason. The
rules are data, so the job (which scores a rescore needs), the report (which thresholds to draw) and the
benchmarks read them from the filter itself: adding a filter or a threshold is a one-file change.
(A rule's `key` must be a field of the filter's `config`; the config assembly checks it.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np


@dataclass(frozen=True)
class Rule:
    """Fail with `reason` when `scores[score]` is below (`way="min"`) or above (`"max"`) the config
    value `key`. `log`: the score spans decades (the report draws it on a log axis)."""

    score: str
    key: str
    way: Literal["min", "max"]
    reason: str
    log: bool = False

    def fails(self, scores: dict[str, Any], cfg: Any) -> bool | None:
        """True or False; None when the score is missing (not computed yet)."""
        v = scores.get(self.score)
        return None if v is None else not self.passes(v, getattr(cfg, self.key))

    def passes(self, value: float, threshold: float) -> bool:
        return value >= threshold if self.way == "min" else value <= threshold


@dataclass(frozen=True)
class Switch:
    """The config of a filter that has no settings but whether it runs."""

    enabled: bool = True


class Filter:
    """Subclass: set `name`, `order` (cheap first), `config` and `rules`, write `score`.

    `config` is the filter's own frozen dataclass (its thresholds and settings, with defaults); the filter
    job's `FilterConfig` gets a section of that type under the filter's name (`--set NAME.KEY=V`), and
    `cfg` below is that section. A section with `enabled = False` keeps everything."""

    name: ClassVar[str]
    order: ClassVar[int]
    config: ClassVar[type] = Switch
    rules: ClassVar[tuple[Rule, ...]] = ()

    def score(self, image: np.ndarray, info: dict[str, Any], cfg: Any) -> dict[str, float]:
        raise NotImplementedError

    def decide(self, scores: dict[str, Any], cfg: Any) -> tuple[str | None, bool]:
        """(reason or None to keep, complete). `complete` is False when a rule that had to be checked
        found its score missing: the image must be scored again under this config."""
        if not getattr(cfg, "enabled", True):
            return None, True
        for rule in self.rules:
            failed = rule.fails(scores, cfg)
            if failed is None:
                return None, False
            if failed:
                return rule.reason, True
        return None, True

    def keep(self, scores: dict[str, Any], cfg: Any) -> str | None:
        """None to keep, else the reason (a short snake_case word: it becomes a count key)."""
        reason, complete = self.decide(scores, cfg)
        if not complete:
            raise KeyError(f"{self.name}: scores lack what this config needs; score the image again")
        return reason
