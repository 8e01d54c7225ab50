"""benchmarks/gpu_smoke.py on the CPU at its smallest settings, its helpers, and DinoTeacher's stand-ins."""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_smoke.py"


def _module():
    spec = importlib.util.spec_from_file_location("gpu_smoke", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _text_image(rng: np.random.Generator, i: int, size: int = 64) -> np.ndarray:
    from PIL import Image, ImageDraw

    im = Image.fromarray(rng.integers(150, 255, (size, size, 3), dtype=np.uint8))
    ImageDraw.Draw(im).text((4, 4 + i % 3 * 16), f"Text {i}", fill=(0, 0, 0))
    return np.asarray(im)


def _shards(folder: Path, seed: int) -> Path:
    """Two WebDataset shards of 8 small images (one held out by the trainer)."""
    import webdataset as wds
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir()
    for s in range(2):
        with wds.TarWriter(str(folder / f"shard-{s:06d}.tar")) as w:
            for i in range(8):
                buf = io.BytesIO()
                Image.fromarray(_text_image(rng, i)).save(buf, format="PNG")
                w.write({"__key__": f"{s:06d}_{i:06d}", "png": buf.getvalue()})
    return folder


@pytest.mark.slow  # both sections in one process: 25-50 s measured on 2 busy shared cores
def test_speed_and_train_sections_run_on_cpu(tmp_path):
    out = tmp_path / "x.json"
    cmd = [sys.executable, str(SCRIPT), "--device", "cpu", "--models", "tiny-f8c16", "--sizes", "32", "--batch", "1",
           "--timing-steps", "1", "--teachers", "none", "--skip-ocr", "--json", str(out),
           "--general", str(_shards(tmp_path / "general", 0)), "--synthetic", str(_shards(tmp_path / "syn", 1)),
           "--config", "configs/train/tiny-cpu.yaml", "--train-steps", "4", "--train-size", "32", "--ned-images", "2",
           "--set", "data.workers=0", "--set", "eval.num_samples=2", "--out", str(tmp_path / "run")]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.read_text())
    rows = res["speed"]
    assert [(x["model"], x["size"], x["checkpointing"]) for x in rows] == [("tiny-f8c16", 32, False),
                                                                        ("tiny-f8c16", 32, True)]
    for x in rows:
        assert x["status"] == "ok" and x["batch"] == 64 and x["step_s"] > 0 and x["images_per_s"] > 0
        assert x["peak_gib"] is None  # no GPU memory on the CPU
    t = res["train"]
    assert t["steps"] == 4 and t["ema_decay"] == pytest.approx(0.9) and t["text_images"] == 2
    assert 0 < t["eval_psnr_step0"] < 60 and {"psnr", "ned"} <= set(t["raw"]) and {"psnr", "ned"} <= set(t["ema"])
    assert res["ocr"] == {"skipped": "--skip-ocr"}
    assert "setting 3/3" in r.stdout and "TINY DINOv2 stand-in" in r.stdout


def test_the_speed_step_runs_with_a_teacher_on_cpu():
    from training.losses import DinoTeacher

    torch.manual_seed(0)
    teacher = DinoTeacher(layer=1, allow_random=True)
    row = _module().speed_row("tiny-f8c16", 32, 1, True, (None, teacher), torch.device("cpu"), 1)
    assert row["status"] == "ok" and row["step_s"] > 0 and row["per_image_mib"] is None


def test_helpers():
    g = _module()
    assert [g.batch_for(16, s) for s in (256, 512, 1024, 128)] == [16, 4, 1, 64]
    assert g.ema_decay_for(1500) == pytest.approx(1 - 1 / 150) and g.ema_decay_for(4) == pytest.approx(0.9)
    assert g.steps_that_fit(1500, None, 10) == 1500  # step time unknown: as asked
    assert g.steps_that_fit(1500, 0.1, 1000) == 1500
    assert g.steps_that_fit(1500, 0.25, 360) == 800  # (360 - 60 s) / (1.5 x 0.25 s)
    assert g.steps_that_fit(1500, 0.2, 30) == 0
    assert len(g.speed_settings(["a", "b"], [256, 512, 1024])) == 12


def test_stand_in_shapes_without_building_them():
    from training.losses import stand_in_config

    large = stand_in_config("large")
    assert (large.num_hidden_layers, large.hidden_size, large.num_attention_heads, large.patch_size) == (24, 1024, 16, 14)
    assert large.hidden_size * large.mlp_ratio == 4096
    assert stand_in_config("tiny", 12).num_hidden_layers == 12 and stand_in_config("tiny", 1).num_hidden_layers == 2


def test_an_unknown_stand_in_is_refused():
    from training.losses import DinoTeacher

    with pytest.raises(ValueError, match="stand_in 'huge'"):
        DinoTeacher(allow_random=True, stand_in="huge")
