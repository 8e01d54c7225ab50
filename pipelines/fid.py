"""FID for `textinfuse eval`: Inception features of originals and reconstructions, then the Fréchet distance.

The network is `training.inception.FIDInception` with local weights (pytorch-fid's
`pt_inception-2015-12-05-6726825d.pth`; never downloaded), so FID needs the train extra (torch). Features
of the originals are cached beside the OCR cache, keyed by pixel hash and by the weights file, so scoring
a second model on the same set only runs the network on its reconstructions.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from textinfuse.metrics import frechet_distance

log = logging.getLogger(__name__)


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


class FidScorer:
    """Collects features of (original, reconstruction) pairs; `value()` is the FID of the two sets."""

    def __init__(self, weights: str | Path, cache_dir: Path | None, batch_size: int = 8) -> None:
        import torch

        from training.inception import load_fid_inception

        self.torch, self.batch_size = torch, batch_size
        weights = Path(weights)
        self.net = load_fid_inception(weights)
        self.cache_path = cache_dir / f".textinfuse-fid-{_file_digest(weights)}.npz" if cache_dir else None
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

    def _features(self, images: list[np.ndarray]) -> np.ndarray:
        """(N, 2048) float32 for RGB uint8 images; same-shape images go through the network together."""
        out: list[np.ndarray | None] = [None] * len(images)
        by_shape: dict[tuple, list[int]] = {}
        for i, im in enumerate(images):
            by_shape.setdefault(im.shape, []).append(i)
        with self.torch.inference_mode():
            for idx in by_shape.values():
                for s in range(0, len(idx), self.batch_size):
                    part = idx[s : s + self.batch_size]
                    x = self.torch.from_numpy(np.stack([images[i] for i in part])).permute(0, 3, 1, 2).float() / 255
                    for i, f in zip(part, self.net(x).numpy(), strict=True):
                        out[i] = f
        return np.stack(out).astype(np.float32)  # type: ignore[arg-type]

    def add(self, gts: list[np.ndarray], recons: list[np.ndarray], gt_keys: list[str]) -> None:
        if not gts:
            return
        missing = [i for i, k in enumerate(gt_keys) if k not in self.cache]
        if missing:
            for i, f in zip(missing, self._features([gts[i] for i in missing]), strict=True):
                self.cache[gt_keys[i]] = f
            self.new_keys += len(missing)
        self.gt.extend(self.cache[k] for k in gt_keys)
        self.recon.extend(self._features(recons))

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
