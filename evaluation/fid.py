"""FID for `textinfuse eval`: features of originals and reconstructions, then the Fréchet distance.

The features come from a network the caller hands in (`FeatureFn`); for `--fid-weights` that is
`training.eval_hooks.fid_extractor`: pytorch-fid's Inception with local weights (never downloaded), so
FID needs the train extra (torch), but this module does not. Features of the originals are cached beside
the OCR cache, keyed by pixel hash and by the network (`FeatureFn.cache_id`, the weights file's digest),
so scoring a second model on the same set only runs the network on its reconstructions.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Protocol

import numpy as np

from textinfuse.metrics import frechet_distance

log = logging.getLogger(__name__)


class FeatureFn(Protocol):
    """A feature extractor: RGB uint8 images (any sizes) to (N, D) float32 features."""

    cache_id: str  # names the network (e.g. its weights' digest): cached features are kept per network

    def __call__(self, images: list[np.ndarray]) -> np.ndarray: ...


class FidScorer:
    """Collects features of (original, reconstruction) pairs; `value()` is the FID of the two sets."""

    def __init__(self, features: FeatureFn, cache_dir: Path | None) -> None:
        self.features = features
        self.cache_path = cache_dir / f".textinfuse-fid-{features.cache_id}.npz" if cache_dir else None
        self.cache: dict[str, np.ndarray] = {}
        if self.cache_path is not None and self.cache_path.exists():
            try:
                with np.load(self.cache_path) as z:
                    self.cache = {k: z[k] for k in z.files}
            except (OSError, ValueError) as e:  # a torn or foreign file: start afresh
                log.warning("%s: unreadable FID cache, ignored (%s)", self.cache_path, e)
        self.new_keys = 0
        self.gt: list[np.ndarray] = []
        self.recon: list[np.ndarray] = []

    def add(self, gts: list[np.ndarray], recons: list[np.ndarray], gt_keys: list[str]) -> None:
        if not gts:
            return
        missing = [i for i, k in enumerate(gt_keys) if k not in self.cache]
        if missing:
            for i, f in zip(missing, self.features([gts[i] for i in missing]), strict=True):
                self.cache[gt_keys[i]] = f
            self.new_keys += len(missing)
        self.gt.extend(self.cache[k] for k in gt_keys)
        self.recon.extend(self.features(recons))

    def save(self) -> None:
        if self.cache_path is None or not self.new_keys:
            return
        tmp = self.cache_path.with_name(self.cache_path.name + f".{os.getpid()}.tmp.npz")
        try:
            np.savez(tmp, **self.cache)
            os.replace(tmp, self.cache_path)
        except OSError as e:  # a read-only set still gets its FID, just without the cache
            log.warning("%s: FID cache not written (%s)", self.cache_path, e)
            tmp.unlink(missing_ok=True)

    def value(self) -> tuple[float | None, str | None]:
        """(FID, None), or (None, reason) when fewer than two pairs were scored."""
        if len(self.gt) < 2:
            return None, "FID needs at least two scored image pairs"
        return frechet_distance(np.stack(self.gt), np.stack(self.recon)), None
