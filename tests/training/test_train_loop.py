from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from training.config import load_train_config
from training.loop import train

BASE = [
    "model=tiny-f8c16", "data.batch_size=8", "data.workers=0", "data.shuffle_buffer=8", "data.holdout_shards=0",
    "eval.resolution=32", "eval.num_samples=8", "eval.ned_samples=0", "log_every=1", "optim.warmup_steps=0",
]


def _cfg(src: dict, sets: list[str]):
    return load_train_config("configs/train/tiny-cpu.yaml", BASE + sets, [f"{k}={v}" for k, v in src.items()])


def _stages(steps: int, align: float = 0.0, **extra) -> list[str]:
    w = json.dumps(extra.get("weights", {"synthetic": 1.0}))
    return [f'stages=[{{name: a, steps: {steps}, resolution: 32, weights: {w}, align: {align}, lr: 3.0e-3}}]']


def _metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_tiny_model_overfits_16_images(tmp_path, small_text_dir):
    steps = 120
    cfg = _cfg({"synthetic": small_text_dir}, _stages(steps) + [
        "data.batch_size=16", "data.shuffle_buffer=16", "eval.num_samples=16", f"eval.every={steps}",
        "ckpt_every=100000", "optim.ema_decay=0.9"])
    summary = train(cfg, tmp_path / "run")
    m = _metrics(tmp_path / "run")
    start, end = m[0], m[-1]
    assert start["step"] == 0 and end["step"] == steps
    first_loss = m[1]["loss"]
    assert end["loss"] <= first_loss / 2, (first_loss, end["loss"])
    assert end["psnr"] >= start["psnr"] + 8, (start["psnr"], end["psnr"])
    assert summary["psnr"] == end["psnr"]
    run = tmp_path / "run"
    assert (run / "config.yaml").exists() and list((run / "tb").iterdir())
    assert (run / "grids" / f"step_{steps:08d}.png").exists()


def test_resume_is_bit_exact(tmp_path, small_text_dir, general_dir):
    # two stages (mixed, then one source) so the resumed run also crosses a stage boundary
    stages = ('stages=[{name: a, steps: 3, resolution: 32, weights: {synthetic: 0.5, general: 0.5}, align: 0.5},'
              ' {name: b, steps: 3, resolution: 32, weights: {synthetic: 1.0}, m_cos: 0.1, m_dist: 0.1,'
              ' align: 0.5, lr: 1.0e-3}]')
    sets = [stages, "teachers.align_positions=8", "data.workers=1", "ckpt_every=100", "eval.every=100"]
    cfg = _cfg({"synthetic": small_text_dir, "general": general_dir}, sets)
    straight = train(cfg, tmp_path / "straight")
    first = train(cfg, tmp_path / "resumed", stop_after=2)
    s = train(cfg, tmp_path / "resumed", resume=True)
    assert s["step"] == 6 and s["weights_sha256"] == straight["weights_sha256"] != first["weights_sha256"]
    for name in ("model", "ema"):
        a = load_file(str(tmp_path / "straight/ckpt/step_00000006" / f"{name}.safetensors"))
        b = load_file(str(tmp_path / "resumed/ckpt/step_00000006" / f"{name}.safetensors"))
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    ma, mb = _metrics(tmp_path / "straight"), _metrics(tmp_path / "resumed")
    assert [r["loss"] for r in ma] == [r["loss"] for r in mb]


def test_cli_parser_calls_train(tmp_path, small_text_dir):
    from textinfuse.cli import build_parser

    a = build_parser().parse_args(["train", "--config", "configs/train/tiny-cpu.yaml", "--source",
                       f"synthetic={small_text_dir}", "--out", str(tmp_path / "run"),
                       *sum((["--set", s] for s in BASE + _stages(2) + ["eval.every=2"]), [])])
    assert a.func(a) == 0
    assert _metrics(tmp_path / "run")[-1]["step"] == 2


def _ddp_worker(rank: int, port: int, cfg, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    summary = train(cfg, out)
    Path(out, f"rank{rank}.json").write_text(json.dumps(summary))


@pytest.mark.slow
def test_ddp_two_processes_gloo(tmp_path, small_text_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = _cfg({"synthetic": small_text_dir}, _stages(4, align=0.5) + ["eval.every=4", "ckpt_every=4"])
    torch.multiprocessing.spawn(_ddp_worker, args=(port, cfg, str(tmp_path / "run")), nprocs=2, join=True)
    m = _metrics(tmp_path / "run")
    assert m[-1]["step"] == 4 and "psnr" in m[-1]
    assert (tmp_path / "run/ckpt/step_00000004/model.safetensors").exists()
    r0, r1 = (json.loads((tmp_path / f"run/rank{r}.json").read_text()) for r in (0, 1))
    assert r0["weights_sha256"] == r1["weights_sha256"]  # gradients were all-reduced: the ranks never diverged


def test_ned_at_eval_steps_and_eval_with_checkpoint(tmp_path, synthetic_dir):
    """The trainer logs `ned` (OCR of originals vs reconstructions) and `textinfuse eval --checkpoint`
    reconstructs with the run's latest checkpoint (tiled, any size)."""
    import numpy as np
    import webdataset as wds
    from PIL import Image

    from textinfuse.cli import main

    cfg = _cfg({"synthetic": synthetic_dir}, [
        'stages=[{name: a, steps: 2, resolution: 64, weights: {synthetic: 1.0}, align: 0.0, lr: 3.0e-3}]',
        "eval.resolution=128", "eval.num_samples=2", "eval.ned_samples=2", "eval.every=2", "data.holdout_shards=1"])
    train(cfg, tmp_path / "run")
    evals = [r for r in _metrics(tmp_path / "run") if "psnr" in r]
    assert [r["step"] for r in evals] == [0, 2] and all(0.0 <= r["ned"] <= 1.0 for r in evals)
    gt = tmp_path / "gt"
    gt.mkdir()
    for i, s in enumerate(wds.WebDataset(str(sorted(synthetic_dir.glob("*.tar"))[0]), shardshuffle=False)):
        if i == 2:
            break
        Image.open(__import__("io").BytesIO(s["png"])).convert("RGB").crop((0, 0, 200, 120)).save(gt / f"{i}.png")
    assert main(["eval", "--gt-dir", str(gt), "--out", str(tmp_path / "eval"), "--checkpoint", str(tmp_path / "run")]) == 0
    res = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert res["num_samples"] == 2 and np.isfinite(res["PSNR"])
