"""Training data: per-source WebDataset streams, mixed by weight, decoded and randomly cropped into batches.

Each source is a folder of WebDataset shards (`render`, `filter`, or any image tars: members named like
images, `textinfuse.images.IMAGE_EXTS`). Per source the shard stream is resampled (infinite) from a seed
shared by all ranks, then `wds.split_by_node` and a split by worker give each rank and DataLoader worker
its own shards; samples are shuffled in a buffer seeded per (rank, worker). The mix is drawn per sample
with a seeded numpy Generator (`wds.RandomMix` uses the global `random`, so it cannot be reproduced or
resumed). Each DataLoader worker builds whole batches; every batch carries the source index of each
sample, so the delivered mix is counted by the consumer. Resume: a worker skips the raw (undecoded)
samples of the batches already consumed, and crops draw from a Generator seeded by the batch index, so
the stream after resume is identical.

Shards and images come from anyone. A shard that cannot be read is warned about once and counted, and the
source goes on with its other shards; a source none of whose shards gives a sample, or none of whose first
`UNDECODABLE_LIMIT` samples decodes, ends the run with `NoSamples` naming it (the resampled stream would
otherwise retry for ever). Images over `LOADER_MAX_PIXELS` are refused from their header, before decoding.
Images are decoded by `textinfuse.images.decode_image` as PIL converts them (`plain`), render's PNGs on its
fast path.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
from collections.abc import Iterator, Sequence

import cv2
import numpy as np
import torch
import webdataset as wds
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from textinfuse.images import IMAGE_EXTS, ImageError, decode_image

from .shards import NoSamples, ShardReader, shard_urls

__all__ = ["NoSamples", "MixedBatches", "decode_rgb", "eval_images", "make_loader", "random_crop", "resize_crop",
           "shard_urls", "split_holdout"]

log = logging.getLogger(__name__)
LOADER_MAX_PIXELS = 8192 * 8192  # larger images are refused unread (a 300 KB PNG can decode to gigabytes)
UNDECODABLE_LIMIT = 100  # samples of a source that all fail to decode before it is given up


def split_holdout(urls: list[str], holdout: int) -> tuple[list[str], list[str]]:
    """(training shards, held-out shards): the last `holdout` shards are held out when more remain."""
    if holdout <= 0 or len(urls) <= holdout:
        return urls, urls
    return urls[:-holdout], urls[-holdout:]


def decode_rgb(sample: dict) -> np.ndarray:
    """The sample's image (its first member named like an image, in IMAGE_EXTS' order: png first) as RGB
    uint8 (H, W, 3), as PIL converts it; `textinfuse.images.ImageError` (a ValueError; `reason` says why)
    naming the member when it is corrupt or larger than LOADER_MAX_PIXELS (checked from the header, before
    decoding), ValueError when the sample has no image."""
    key = sample.get("__key__")
    for ext in IMAGE_EXTS:
        if ext in sample:
            try:
                return decode_image(sample[ext], LOADER_MAX_PIXELS, plain=True)
            except ImageError as e:
                raise ImageError(e.reason, f"{key}.{ext}: {e}") from None
    raise ValueError(f"{key}: no image member")


def random_crop(img: np.ndarray, size: tuple[int, int], rng: np.random.Generator | None) -> np.ndarray:
    """Crop (w, h) at a random place (centre when rng is None); images too small are first scaled up."""
    tw, th = size
    h, w = img.shape[:2]
    if h < th or w < tw:
        s = max(tw / w, th / h)
        w, h = max(tw, round(w * s)), max(th, round(h * s))
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
    x0 = int(rng.integers(0, w - tw + 1)) if rng is not None else (w - tw) // 2
    y0 = int(rng.integers(0, h - th + 1)) if rng is not None else (h - th) // 2
    return img[y0:y0 + th, x0:x0 + tw]


def resize_crop(img: np.ndarray, size: tuple[int, int], rng: np.random.Generator | None) -> np.ndarray:
    """Scale the image so it just covers (w, h), aspect kept (area filter down, linear up), then crop the
    excess of its longer side at a random place (centre when rng is None): the whole image, or nearly."""
    tw, th = size
    h, w = img.shape[:2]
    s = max(tw / w, th / h)
    if s != 1:
        nw, nh = max(tw, round(w * s)), max(th, round(h * s))
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    return random_crop(img, size, rng)


FITS = {"crop": random_crop, "resize": resize_crop}


def _rank_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def raw_stream(urls: list[str], shard_seed: int, sample_seed: int, buffer: int, worker: int = 0,
               workers: int = 1, name: str = "#0") -> Iterator[dict]:
    """Infinite undecoded samples of one source for this rank and (logical) DataLoader worker; NoSamples
    when none of the source's shards gives one."""
    shards = ShardReader(name, urls)
    return iter(wds.DataPipeline(
        wds.ResampledShards(urls, seed=shard_seed, worker_seed=lambda: 0, deterministic=True),
        wds.split_by_node,
        lambda src: itertools.islice(src, worker, None, workers),  # split_by_worker, by logical id
        lambda src: (s for d in src for s in shards.read(d["url"])),
        wds.shuffle(buffer, initial=buffer, rng=random.Random(sample_seed)),
    ))


class MixedBatches(IterableDataset):
    """Infinite batches {"image": uint8 (B, 3, h, w), "source": int64 (B,), "skipped": int64 ()} mixed from
    several sources; `skipped` counts the batch's samples that did not decode (B is that much shorter).

    sizes: (w, h) crop sizes (aspect buckets; one per batch); skip_batches: batches already consumed by
    this rank in this stream (resume); names: how errors name each source (default #0, #1, ...); fit:
    `crop` (random_crop) or `resize` (resize_crop: the whole image scaled down to cover the crop).
    A batch none of whose samples decodes is dropped; resume counts it as consumed only when it replays
    the same drop, so a run that met one may resume a batch off (rare: it needs a mostly broken source).
    """

    def __init__(self, urls: Sequence[list[str]], weights: Sequence[float], batch_size: int,
                 sizes: Sequence[tuple[int, int]], seed: int, skip_batches: int = 0, buffer: int = 256,
                 names: Sequence[str] | None = None, fit: str = "crop") -> None:
        if fit not in FITS:
            raise ValueError(f"fit={fit!r}: expected one of {', '.join(FITS)}")
        self.urls, self.batch_size, self.sizes, self.fit = list(urls), batch_size, list(sizes), fit
        w = np.asarray(weights, float)
        self.p = w / w.sum()
        self.seed, self.skip, self.buffer = seed, skip_batches, buffer
        self.names = list(names) if names else [f"#{k}" for k in range(len(self.urls))]

    def _skipped(self, k: int, e: ValueError, ok: list[int], bad: list[int]) -> None:
        """Count a sample of source k that did not decode; give the source up when none ever did."""
        bad[k] += 1
        if not ok[k] and bad[k] >= UNDECODABLE_LIMIT:
            raise NoSamples(f"source {self.names[k]}: none of its first {bad[k]} samples decodes (last: {e})")
        if bad[k] <= 10 or bad[k] % 100 == 0:
            log.warning("source %s: sample skipped (%d so far): %s", self.names[k], bad[k], e)

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        # The DataLoader takes batch j from worker j % nw counting from its own start; after `skip` batches,
        # its worker w therefore serves what the original run's worker (w + skip) % nw did.
        wid = (wid + self.skip) % nw
        rank, _ = _rank_world()
        streams = [raw_stream(u, shard_seed=self.seed * 1000 + k, sample_seed=hash((self.seed, k, rank, wid)),
                              buffer=self.buffer, worker=wid, workers=nw, name=self.names[k])
                   for k, u in enumerate(self.urls)]
        mix = np.random.default_rng([self.seed, rank, wid, 1])
        n_skip = max(0, (self.skip - wid + nw - 1) // nw)
        ok, bad = [0] * len(streams), [0] * len(streams)
        b = 0
        while True:
            ks = mix.choice(len(streams), size=self.batch_size, p=self.p)
            raws = [next(streams[k]) for k in ks]
            if b < n_skip:  # resume: replay the mix and the sample order without decoding
                b += 1
                continue
            rng = np.random.default_rng([self.seed, rank, wid, 2, b])
            size = self.sizes[int(rng.integers(len(self.sizes)))]
            b += 1
            imgs = []
            for k, r in zip(ks, raws, strict=True):
                try:
                    imgs.append(FITS[self.fit](decode_rgb(r), size, rng))
                    ok[k] += 1
                except ValueError as e:  # a bad sample shortens its batch; the job goes on
                    imgs.append(None)
                    self._skipped(int(k), e, ok, bad)
            keep = [i for i, im in enumerate(imgs) if im is not None]
            if not keep:
                log.warning("a batch of %d samples had none that decodes: dropped", len(imgs))
                continue
            yield {"image": torch.from_numpy(np.stack([imgs[i] for i in keep])).permute(0, 3, 1, 2).contiguous(),
                   "source": torch.as_tensor(ks[keep], dtype=torch.int64),
                   "skipped": torch.tensor(len(imgs) - len(keep), dtype=torch.int64)}


def make_loader(ds: MixedBatches, workers: int, seed: int, pin: bool = False) -> DataLoader:
    """A DataLoader over whole batches; its own generator keeps the global torch RNG untouched."""
    return DataLoader(ds, batch_size=None, num_workers=workers, pin_memory=pin,
                      generator=torch.Generator().manual_seed(seed),
                      prefetch_factor=4 if workers else None, persistent_workers=False)


def eval_images(urls: Sequence[list[str]], n: int, size: int, names: Sequence[str] | None = None) -> torch.Tensor:
    """The first `n` decodable images, round-robin over sources, centre-cropped to size²: uint8 (n,3,s,s).
    Each shard is read once; ValueError naming every source and why when none gives an image."""
    names = list(names) if names else [f"#{k}" for k in range(len(urls))]
    readers = [ShardReader(name, u, raise_when_dry=False) for name, u in zip(names, urls, strict=True)]
    its = [(r, (s for url in u for s in r.read(url))) for r, u in zip(readers, urls, strict=True)]
    out: list[np.ndarray] = []
    while len(out) < n and its:
        for r, it in list(its):
            try:
                out.append(random_crop(decode_rgb(next(it)), (size, size), None))
            except StopIteration:
                its.remove((r, it))
            except ValueError as e:
                log.warning("eval sample skipped: source %s: %s", r.name, e)
            if len(out) >= n:
                break
    if not out:
        why = "; ".join(r.dry() if not r.samples else f"source {r.name}: none of its {r.samples} samples decodes"
                        for r in readers)
        raise ValueError(f"no evaluation images: {why}")
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()
