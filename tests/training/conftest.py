"""Shards for the trainer tests: rendered text (the real renderer) and a general-image tar."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")


def write_tar(path: Path, images: list[np.ndarray]) -> Path:
    import webdataset as wds
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    with wds.TarWriter(str(path)) as w:
        for i, im in enumerate(images):
            buf = io.BytesIO()
            Image.fromarray(im).save(buf, format="PNG")
            w.write({"__key__": f"{0:06d}_{i:06d}", "png": buf.getvalue(), "json": b"{}"})
    return path


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory) -> Path:
    """32 rendered samples in 2 shards of 16."""
    from pipelines.render_job import OutputConfig, RenderJobConfig, run_render

    out = tmp_path_factory.mktemp("synthetic")
    run_render(RenderJobConfig(seed=1, num_samples=32, output=OutputConfig(samples_per_shard=16)), out)
    return out


def _shrink(im: np.ndarray, size: int) -> np.ndarray:
    import cv2

    h, w = im.shape[:2]
    s = min(h, w)
    im = im[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="session")
def general_dir(tmp_path_factory) -> Path:
    """Bundled backgrounds, centre-cropped and shrunk to 64², in 2 shards."""
    from PIL import Image

    files = sorted(Path(__file__).resolve().parents[2].glob("backgrounds/*.jpg"))[:20]
    ims = [_shrink(np.asarray(Image.open(f).convert("RGB")), 64) for f in files]
    out = tmp_path_factory.mktemp("general")
    write_tar(out / "general-000000.tar", ims[:10])
    write_tar(out / "general-000001.tar", ims[10:])
    return out


@pytest.fixture(scope="session")
def small_text_dir(tmp_path_factory, synthetic_dir) -> Path:
    """16 rendered text images shrunk to 32² in one shard (crops of 32 are the whole image)."""
    import webdataset as wds
    from PIL import Image

    ims = []
    for s in wds.WebDataset(str(sorted(synthetic_dir.glob("*.tar"))[0]), shardshuffle=False):
        key = next(k for k in ("png", "jpg", "webp") if k in s)
        ims.append(_shrink(np.asarray(Image.open(io.BytesIO(s[key])).convert("RGB")), 32))
    out = tmp_path_factory.mktemp("small_text")
    write_tar(out / "text-000000.tar", ims[:16])
    return out



# A tiny run for the hostile-input tests: tiny model, 32 px, one source, a checkpoint every step.
TINY = ["model=tiny-f8c16", "data.batch_size=4", "data.workers=0", "data.shuffle_buffer=4",
        "data.holdout_shards=0", "eval.resolution=32", "eval.num_samples=2", "eval.ned_samples=0",
        "log_every=1", "optim.warmup_steps=0", "eval.every=1000", "ckpt_every=1",
        "stages=[{name: a, steps: 4, resolution: 32, weights: {synthetic: 1.0}, align: 0.0, lr: 1.0e-3}]"]


class Tiny:
    """The tiny run's settings, and `textinfuse` run in this process: `cli(argv) -> (exit code, stderr)`."""

    sets = TINY

    def __init__(self, capsys) -> None:
        self.capsys = capsys

    def config(self, src: Path, *extra: str):
        from training.config import load_train_config

        return load_train_config("configs/train/tiny-cpu.yaml", [*TINY, *extra], [f"synthetic={src}"])

    def argv(self, src: Path, out: Path, *extra: str) -> list[str]:
        argv = ["train", "--config", "configs/train/tiny-cpu.yaml", "--source", f"synthetic={src}",
                "--out", str(out)]
        for s in [*TINY, *extra]:
            argv += ["--set", s]
        return argv

    def cli(self, argv: list[str]) -> tuple[int, str]:
        from textinfuse.cli import main

        self.capsys.readouterr()
        rc = main(argv)
        return rc, self.capsys.readouterr().err


@pytest.fixture
def tiny(capsys) -> Tiny:
    return Tiny(capsys)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, small_text_dir) -> Path:
    """A run folder stopped at step 3 of 4, with checkpoints step_1..step_3 (copy it before tampering)."""
    from training.loop import train

    run = tmp_path_factory.mktemp("tiny_run") / "run"
    train(Tiny(None).config(small_text_dir), run, stop_after=3)
    return run
