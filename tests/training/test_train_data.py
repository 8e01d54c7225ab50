from __future__ import annotations

from pathlib import Path

import pytest
import torch

from textinfuse.configio import ConfigError
from training.config import load_train_config
from training.data import MixedBatches, eval_images, make_loader, shard_urls, split_holdout


def test_delivered_mix_matches_weights(general_dir, small_text_dir):
    weights = {"general": 0.7, "text": 0.3}
    ds = MixedBatches([shard_urls(str(general_dir)), shard_urls(str(small_text_dir))], list(weights.values()),
                      batch_size=64, sizes=[(16, 16)], seed=3, buffer=16)
    counts = torch.zeros(2)
    for i, batch in enumerate(make_loader(ds, workers=2, seed=0)):
        assert batch["image"].shape == (64, 3, 16, 16) and batch["image"].dtype == torch.uint8
        counts += torch.bincount(batch["source"], minlength=2)
        if i == 49:
            break
    got = (counts / counts.sum()).tolist()
    assert counts.sum() == 3200
    assert abs(got[0] - 0.7) <= 0.03 and abs(got[1] - 0.3) <= 0.03


def test_skip_resumes_the_same_stream(general_dir, small_text_dir):
    urls = [shard_urls(str(general_dir)), shard_urls(str(small_text_dir))]

    def batches(skip, workers, n):
        ds = MixedBatches(urls, [0.5, 0.5], 4, [(16, 16), (24, 8)], seed=1, skip_batches=skip, buffer=8)
        out = []
        for b in make_loader(ds, workers, seed=0):
            out.append(b)
            if len(out) == n:
                return out

    for workers in (0, 2):
        full = batches(0, workers, 7)
        resumed = batches(3, workers, 4)
        for a, b in zip(full[3:], resumed, strict=True):
            assert torch.equal(a["image"], b["image"]) and torch.equal(a["source"], b["source"])


def test_holdout_and_eval_images(general_dir):
    train, held = split_holdout(shard_urls(str(general_dir)), 1)
    assert len(train) == 1 and len(held) == 1 and train != held
    x = eval_images([held], 4, 48)
    assert x.shape == (4, 3, 48, 48)


def test_config_is_strict_and_takes_sources(tmp_path):
    path = "configs/train/tiny-cpu.yaml"
    cfg = load_train_config(path, ["data.batch_size=4"], ["synthetic=/some/dir"])
    assert cfg.data.sources == {"synthetic": "/some/dir"} and cfg.data.batch_size == 4
    assert len(cfg.stages) == 3
    with pytest.raises(ConfigError, match="no shards"):
        load_train_config(path)
    with pytest.raises(ConfigError, match="unknown key data.bogus"):
        load_train_config(path, ["data.bogus=1"], ["synthetic=/d"])


@pytest.mark.parametrize("name", ["f16c64", "f16c128", "f32c128", "f32c192"])
def test_shipped_gpu_configs_load(name, tmp_path, monkeypatch):
    config = Path(f"configs/train/{name}.yaml").resolve()
    monkeypatch.chdir(tmp_path)  # the configs name weights/... relative to the working folder
    with pytest.raises(ConfigError, match=r"^teachers.lpips_vgg: weights/vgg16-397923af.pth: no such file"):
        load_train_config(config, [], ["general=/g", "real=/r", "synthetic=/s"])
    (tmp_path / "weights/dinov2-large").mkdir(parents=True)
    for f in ("vgg16-397923af.pth", "lpips_vgg_v0.1.pth"):
        (tmp_path / "weights" / f).write_bytes(b"")
    cfg = load_train_config(config, [], ["general=/g", "real=/r", "synthetic=/s"])
    assert cfg.model == name and len(cfg.stages) == 3
    assert not cfg.teachers.allow_random_teachers
    first, last = cfg.stages[0], cfg.stages[-1]
    assert set(first.weights) == {"general"} or first.weights.get("synthetic", 0) == 0
    assert last.m_cos >= first.m_cos and last.m_dist >= first.m_dist  # strict -> loose
    w = last.weights
    assert abs(w["general"] - (w["real"] + w["synthetic"])) < 1e-9  # balanced general : text


@pytest.mark.parametrize("key,kind", [("lpips_vgg", "file"), ("lpips_heads", "file"), ("dinov2", "folder")])
def test_teacher_paths_are_checked_at_config_load(tmp_path, key, kind):
    missing, wrong = tmp_path / "x/y", tmp_path / "wrong"
    if kind == "file":
        wrong.mkdir()  # a folder where a file belongs
    else:
        wrong.write_text("")
    for p, why in ((missing, f"no such {kind}"), (wrong, f"not a {kind}")):
        with pytest.raises(ConfigError) as e:
            load_train_config("configs/train/tiny-cpu.yaml", [f"teachers.{key}={p}"], ["synthetic=/d"])
        assert str(e.value) == f"teachers.{key}: {p}: {why} (weights are local only; see README)"
