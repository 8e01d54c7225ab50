"""`textinfuse latent-stats`: per-channel mean and std of a trained autoencoder's latents, written to
`RUN_DIR/latent_stats.json`, which `load_autoencoder` uses to normalise latents for a diffusion model.

The file: `mean` and `std` (one float per latent channel, over every latent position of every image;
std is the population std), `samples` (images used), `checkpoint_step`, `weights` ("ema" or "model"),
`source`, `resolution` (px, the side of the centre crops), plus `model` and `skipped` (undecodable images).
Moments are accumulated in float64 and merged per batch (Chan et al.), so they stay exact to float64
precision over millions of positions and do not cancel when a channel's mean is large against its std.
"""

from __future__ import annotations

import errno
import itertools
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from textinfuse.images import IMAGE_EXTS, list_images, load_rgb

from .checkpoint import replace_text
from .data import LOADER_MAX_PIXELS, decode_rgb, random_crop
from .inference import STATS_FILE, LatentAutoencoder, load_with_info
from .shards import ShardReader, shard_urls

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 10.0


class ChannelMoments:
    """Running per-channel count, mean and sum of squared deviations (float64) of (N, C, h, w) batches."""

    def __init__(self) -> None:
        self.n = 0
        self.mean = self.m2 = torch.zeros(0, dtype=torch.float64)

    def add(self, z: torch.Tensor) -> None:
        z = z.detach().double().transpose(0, 1).reshape(z.shape[1], -1)
        nb, mb = z.shape[1], z.mean(1)
        m2b = (z - mb[:, None]).square().sum(1)
        if self.n == 0:
            self.n, self.mean, self.m2 = nb, mb, m2b
            return
        d, n = mb - self.mean, self.n + nb
        self.mean = self.mean + d * (nb / n)
        self.m2 = self.m2 + m2b + d.square() * (self.n * nb / n)
        self.n = n

    @property
    def std(self) -> torch.Tensor:
        return (self.m2 / self.n).sqrt()


class Crops:
    """Centre crops size² (uint8 (size, size, 3)) of the images of `source` (see `_images`), upscaled
    first when smaller; images that cannot be read or decoded are skipped with a warning and counted in
    `skipped`."""

    def __init__(self, source: str, size: int) -> None:
        self.source, self.size, self.skipped = source, size, 0
        self.reader: ShardReader | None = None

    def __iter__(self) -> Iterator[np.ndarray]:
        for decode, item in self._images():
            try:
                yield random_crop(decode(item), (self.size, self.size), None)
            except ValueError as e:  # textinfuse.images.ImageError, or a sample without an image
                self.skipped += 1
                if self.skipped <= 10:
                    log.warning("%s: image skipped: %s", self.source, e)

    def _images(self) -> Iterator[tuple[Callable[[Any], np.ndarray], Any]]:
        """(decoder, item) per image of a shard folder, a .tar file or glob (the loader's `decode_rgb` and
        an undecoded sample), or a folder of image files (the same reading of a file, and its path);
        FileNotFoundError naming the source when it holds none of these."""
        p = Path(self.source)
        if p.is_dir() and not any(p.glob("*.tar")):
            files = list_images(p)
            if not files:
                raise FileNotFoundError(errno.ENOENT, f"no .tar shards or images ({', '.join(IMAGE_EXTS)}) here",
                                        self.source)
            yield from ((_load_file, f) for f in files)
            return
        urls = shard_urls(self.source)
        self.reader = ShardReader(self.source, urls, raise_when_dry=False)
        for url in urls:
            yield from ((decode_rgb, s) for s in self.reader.read(url))

    def why_none(self) -> str:
        """Why no image came: one line naming the source."""
        if self.reader is not None and not self.reader.samples:
            return self.reader.dry()
        return f"{self.source}: no decodable images ({self.skipped} undecodable)"


def _load_file(path: Path) -> np.ndarray:
    """An image file read as the loader reads a sample's image (PIL's conversion, the loader's pixel limit)."""
    return load_rgb(path, LOADER_MAX_PIXELS, plain=True)


def _progress(done: int, total: int, t0: float) -> None:
    rate = done / max(time.time() - t0, 1e-9)
    eta = time.strftime("%H:%M:%S", time.gmtime((total - done) / max(rate, 1e-9)))
    log.info("latent-stats: %d/%d images, %.1f images/s, ETA %s", done, total, rate, eta)


def latent_stats(run_dir: str | Path, source: str, num: int = 256, resolution: int = 256,
                 checkpoint: str | Path | None = None, use_ema: bool = True, batch_size: int = 16,
                 device: str | None = None) -> dict:
    """Encode the first `num` images of `source` (centre crops resolution², a multiple of the model's f)
    with the run's latest checkpoint (or `checkpoint`: a step folder or weights file), EMA weights unless
    `use_ema` is False; write `run_dir/latent_stats.json` atomically and return its contents."""
    run = Path(run_dir)
    if not run.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such run folder", str(run))
    if num < 1 or batch_size < 1:
        raise ValueError(f"num ({num}) and batch_size ({batch_size}) must be at least 1")
    lo = load_with_info(checkpoint if checkpoint is not None else run, use_ema, device)
    ae = LatentAutoencoder(lo.module)  # raw latents, tiled as `load_autoencoder(...).encode` tiles them
    if resolution < ae.f or resolution % ae.f:
        raise ValueError(f"resolution {resolution}: not a multiple of the model's factor f={ae.f} "
                         "(padded positions would enter the statistics)")
    moments, done, t0, last = ChannelMoments(), 0, time.time(), time.time()
    images = Crops(source, resolution)
    it = iter(images)
    while done < num:
        batch = list(itertools.islice(it, min(batch_size, num - done)))
        if not batch:
            break
        moments.add(ae.encode(np.stack(batch)))
        done += len(batch)
        if time.time() - last >= PROGRESS_EVERY_S:
            _progress(done, num, t0)
            last = time.time()
    if not done:
        raise ValueError(images.why_none())
    if done < num:
        log.warning("%s: only %d decodable images, fewer than the %d asked", source, done, num)
    _progress(done, num, t0)
    stats = {"mean": moments.mean.tolist(), "std": moments.std.tolist(), "samples": done,
             "checkpoint_step": lo.step, "weights": lo.kind, "source": str(source), "resolution": resolution,
             "model": lo.model, "skipped": images.skipped}
    replace_text(run / STATS_FILE, json.dumps(stats, indent=1) + "\n")
    return stats
