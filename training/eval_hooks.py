"""The torch halves of `textinfuse eval`'s optional metrics, built from local weight files (never
downloaded) and handed to `evaluation.evaluate.evaluate` by the caller (the CLI, the ablation):

- `lpips_scorer(weights)`: LPIPS-VGG of two uint8 RGB images (its `lpips=`);
- `fid_extractor(weights)`: pytorch-fid's Inception features of uint8 RGB images (its `fid_features=`).

Torch is imported when one is built, not with this module, so a missing train extra surfaces as an
ImportError from the builder (the evaluation reports it as the metric's reason).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np


def lpips_scorer(weights: str) -> Callable[[np.ndarray, np.ndarray], float]:
    """LPIPS-VGG (v0.1) of two uint8 RGB images, from local weights: "VGG16_TRUNK,LPIPS_HEADS" (torchvision's
    `vgg16-397923af.pth` and the `lpips` wheel's `weights/v0.1/vgg.pth`; .pth or .safetensors) or a folder
    holding `vgg16*` and `vgg.pth`/`lpips*`. Needs the train extra (torch); see training/losses.py."""
    p = Path(weights)
    if p.is_dir():
        trunk = next(iter(sorted(p.glob("vgg16*"))), None)
        heads = next(iter(sorted(p.glob("lpips*")) or sorted(p.glob("vgg.*"))), None)
        if trunk is None or heads is None:
            raise FileNotFoundError(2, "needs vgg16* (trunk) and vgg.pth or lpips* (heads) files", weights)
    else:
        trunk, heads = weights.split(",")
    import torch

    from .losses import LPIPS

    net = LPIPS(str(trunk), str(heads))

    def score(a: np.ndarray, b: np.ndarray) -> float:
        t = [torch.from_numpy(np.array(x)).permute(2, 0, 1)[None].float() / 127.5 - 1 for x in (a, b)]
        with torch.no_grad():
            return float(net(t[0], t[1])[0])

    return score


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


class FidFeatures:
    """pytorch-fid's Inception (`training.inception.FIDInception`, weights loaded strictly) as a feature
    extractor: RGB uint8 images to (N, 2048) float32; same-shape images go through the network together,
    `batch_size` at a time. `cache_id` (the weights file's digest) names the network in feature caches."""

    def __init__(self, weights: str | Path, batch_size: int = 8) -> None:
        import torch

        from .inception import load_fid_inception

        weights = Path(weights)
        self.torch, self.batch_size = torch, batch_size
        self.net = load_fid_inception(weights)
        self.cache_id = _file_digest(weights)

    def __call__(self, images: list[np.ndarray]) -> np.ndarray:
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


def fid_extractor(weights: str | Path, batch_size: int = 8) -> FidFeatures:
    """The FID feature extractor of `--fid-weights` (pytorch-fid's `pt_inception-2015-12-05-*.pth`)."""
    return FidFeatures(weights, batch_size)
