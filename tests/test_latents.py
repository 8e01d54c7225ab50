"""Latents for a diffusion model: `textinfuse latent-stats`, `textinfuse export` and `load_autoencoder`,
on a real tiny training run (tiny-f8c16, 4 steps on 16 drawn text images)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from safetensors.torch import load_file, save_file  # noqa: E402

from training.export import export  # noqa: E402
from training.inference import (  # noqa: E402
    load_autoencoder,
    load_module,
    load_reconstructor,
    reconstruct_tiled,
)
from training.latents import ChannelMoments, latent_stats  # noqa: E402

H, W, R = 40, 48, 32  # image size, and the centre crop the stats use
RUN_SETS = ["model=tiny-f8c16", "data.batch_size=4", "data.workers=0", "data.shuffle_buffer=4",
            "data.holdout_shards=0", "eval.resolution=32", "eval.num_samples=2", "eval.ned_samples=0",
            "log_every=1", "optim.warmup_steps=0", "eval.every=1000", "ckpt_every=1000",
            "stages=[{name: a, steps: 4, resolution: 32, weights: {synthetic: 1.0}, align: 0.0, lr: 1.0e-3}]"]


def _images(n: int = 16) -> list[np.ndarray]:
    """Text drawn on coloured noise, H×W uint8 RGB."""
    import cv2

    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        im = (rng.integers(0, 60, (H, W, 3)) + rng.integers(0, 190, 3)).astype(np.uint8)
        cv2.putText(im, f"Ab{i}", (2, 26), cv2.FONT_HERSHEY_SIMPLEX, 0.6, tuple(int(v) for v in rng.integers(0, 255, 3)), 1)
        out.append(im)
    return out


def _crops(ims: list[np.ndarray]) -> torch.Tensor:
    """The centre R×R crops as float (N, 3, R, R) in [-1, 1]."""
    y, x = (H - R) // 2, (W - R) // 2
    a = np.stack([im[y:y + R, x:x + R] for im in ims])
    return torch.from_numpy(a).permute(0, 3, 1, 2).contiguous().float() / 127.5 - 1


def _png(im: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(im).save(buf, format="PNG")
    return buf.getvalue()


@torch.no_grad()
def _direct(run: Path, n: int, use_ema: bool = True) -> torch.Tensor:
    """float64 latents of the first n centre crops, encoded by the module in one batch."""
    return load_module(run, use_ema=use_ema, device="cpu").encode(_crops(_images()[:n])).double()


@pytest.fixture(scope="session")
def shards(tmp_path_factory) -> Path:
    """The 16 images in two shards (10 + 6)."""
    import webdataset as wds

    out = tmp_path_factory.mktemp("latent_shards")
    ims = _images()
    for k, part in enumerate((ims[:10], ims[10:])):
        with wds.TarWriter(str(out / f"text-{k:06d}.tar")) as w:
            for i, im in enumerate(part):
                w.write({"__key__": f"{k:06d}_{i:06d}", "png": _png(im), "json": b"{}"})
    return out


@pytest.fixture(scope="session")
def run(tmp_path_factory, shards) -> Path:
    """A finished 4-step run (checkpoint step_4, EMA decay 0.99 so EMA and raw weights differ)."""
    from training.config import load_train_config
    from training.loop import train

    run = tmp_path_factory.mktemp("latent_run") / "run"
    train(load_train_config("configs/train/tiny-cpu.yaml", RUN_SETS, [f"synthetic={shards}"]), run)
    return run


@pytest.fixture(scope="session")
def stats_run(tmp_path_factory, run, shards) -> Path:
    """A copy of the run with latent_stats.json of the first 12 images (batches of 5: merged moments)."""
    dst = tmp_path_factory.mktemp("latent_stats_run") / "run"
    shutil.copytree(run, dst)
    latent_stats(dst, str(shards), num=12, resolution=R, batch_size=5, device="cpu")
    return dst


def _cli(capsys, argv: list[str]) -> tuple[int, str, list[str]]:
    from textinfuse.cli import main

    capsys.readouterr()
    rc = main(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err.strip().splitlines()


def test_stats_match_a_direct_computation(stats_run, run):
    s = json.loads((stats_run / "latent_stats.json").read_text())
    assert (s["samples"], s["checkpoint_step"], s["weights"], s["resolution"], s["skipped"]) == (12, 4, "ema", R, 0)
    z = _direct(run, 12)
    assert len(s["mean"]) == len(s["std"]) == z.shape[1] == 16
    np.testing.assert_allclose(s["mean"], z.mean((0, 2, 3)).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s["std"], z.std((0, 2, 3), correction=0).numpy(), rtol=1e-5, atol=1e-6)


def test_raw_weights_stats_differ_from_ema(tmp_path, run, shards):
    for d in ("a", "b"):
        shutil.copytree(run, tmp_path / d)
    a = latent_stats(tmp_path / "a", str(shards), num=4, resolution=R, device="cpu")
    b = latent_stats(tmp_path / "b", str(shards), num=4, resolution=R, use_ema=False, device="cpu")
    z = _direct(run, 4, use_ema=False)
    assert b["weights"] == "model" and a["weights"] == "ema" and a["mean"] != b["mean"]
    np.testing.assert_allclose(b["mean"], z.mean((0, 2, 3)).numpy(), rtol=1e-5, atol=1e-6)


def test_moments_are_sound_for_a_large_mean():
    rng = np.random.default_rng(1)
    z = 1e4 + 1e-3 * rng.standard_normal((7, 3, 5, 5))  # float32 E[z²] - E[z]² would cancel to noise
    m = ChannelMoments()
    for chunk in np.array_split(z, 4):
        m.add(torch.from_numpy(chunk))
    np.testing.assert_allclose(m.mean.numpy(), z.mean((0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(m.std.numpy(), z.std((0, 2, 3)), rtol=1e-6)


def test_normalised_latents_have_zero_mean_unit_std(stats_run):
    ae = load_autoencoder(stats_run, device="cpu")
    assert ae.normalised and ae.step == 4 and ae.kind == "ema" and ae.model == "tiny-f8c16"
    z = ae.encode(np.stack([im[4:36, 8:40] for im in _images()[:12]])).double()  # uint8 (N, H, W, 3)
    assert z.shape == (12, 16, R // 8, R // 8)
    np.testing.assert_allclose(z.mean((0, 2, 3)).numpy(), 0, atol=1e-5)
    np.testing.assert_allclose(z.std((0, 2, 3), correction=0).numpy(), 1, atol=1e-5)


@pytest.mark.parametrize("stats", [True, False])
def test_decode_of_encode_is_the_module_reconstruction(stats_run, stats):
    x = torch.from_numpy(np.stack(_images()[:3])).permute(0, 3, 1, 2).float()[:, :, :37, :45] / 127.5 - 1
    ae = load_autoencoder(stats_run, device="cpu", tile=16, stats=stats)  # 3x3 tiles, padded edges
    z = ae.encode(x)
    assert z.shape == (3, 16, 5, 6) and ae.normalised is stats
    y, ref = ae.decode(z, size=(37, 45)), reconstruct_tiled(ae.module, x, tile=16)
    assert y.shape == x.shape and ae.decode(z).shape == (3, 3, 40, 48)
    if stats:  # (z - m) / s * s + m is float arithmetic
        torch.testing.assert_close(y, ref, atol=1e-5, rtol=0)
    else:
        assert torch.equal(y, ref)


def test_no_stats_file_gives_raw_latents_and_says_so(run, caplog):
    ae = load_autoencoder(run, device="cpu")
    x = _crops(_images()[:2])
    assert not ae.normalised and "not normalised" in caplog.text
    with torch.no_grad():
        assert torch.equal(ae.encode(x), ae.module.encode(x))


def test_export_round_trips(tmp_path, stats_run):
    c = export(stats_run, tmp_path / "ex")
    ex = tmp_path / "ex"
    assert sorted(p.name for p in ex.iterdir()) == ["config.json", "latent_stats.json", "model.safetensors"]
    assert json.loads((ex / "config.json").read_text()) == c
    assert (c["format"], c["model"], c["f"], c["c"], c["weights"], c["step"]) == \
        ("textinfuse-autoencoder", "tiny-f8c16", 8, 16, "ema", 4)
    assert c["arch"] == {k: v for k, v in c["train_config"].get("arch", {}).items() if k in ("skip", "decoder_skip")}
    assert c["train_config"]["model"] == "tiny-f8c16" and c["train_config"]["stages"][0]["steps"] == 4
    assert (ex / "latent_stats.json").read_text().split() == (stats_run / "latent_stats.json").read_text().split()
    ema = load_file(str(stats_run / "ckpt/step_00000004/ema.safetensors"))
    got = load_file(str(ex / "model.safetensors"))
    assert got.keys() == {k[len("net.ae."):] for k in ema} and all(torch.equal(v, ema["net.ae." + k]) for k, v in got.items())

    x = torch.from_numpy(np.stack(_images()[:2])).permute(0, 3, 1, 2).float() / 127.5 - 1
    a, b = load_autoencoder(stats_run, device="cpu"), load_autoencoder(ex, device="cpu")
    f = load_autoencoder(ex / "model.safetensors", device="cpu")
    assert b.normalised and f.normalised and (b.step, b.kind) == (f.step, f.kind) == (4, "ema")
    za = a.encode(x)
    assert torch.equal(za, b.encode(x)) and torch.equal(za, f.encode(x))
    assert torch.equal(a.decode(za), b.decode(za))
    batch = np.random.default_rng(0).random((1, 20, 30, 3), dtype=np.float32)
    assert np.array_equal(load_reconstructor(ex, device="cpu")(batch), load_reconstructor(stats_run, device="cpu")(batch))


def test_export_raw_weights(tmp_path, run):
    c = export(run, tmp_path / "ex", use_ema=False)
    raw = load_file(str(run / "ckpt/step_00000004/model.safetensors"))
    got = load_file(str(tmp_path / "ex/model.safetensors"))
    assert c["weights"] == "model" and not (tmp_path / "ex/latent_stats.json").exists()
    assert all(torch.equal(v, raw["net.ae." + k]) for k, v in got.items())
    assert load_autoencoder(tmp_path / "ex", device="cpu").kind == "model"


def test_arch_comes_from_the_weights_metadata(tmp_path, run):
    from training.config import TrainConfig

    if "arch" not in TrainConfig.__dataclass_fields__:
        pytest.skip("this version has no arch options")
    src = run / "ckpt/step_00000004/ema.safetensors"
    f = tmp_path / "ckpt/step_00000004/ema.safetensors"  # the shortcuts have no parameters: same tensors
    f.parent.mkdir(parents=True)
    from safetensors import safe_open

    with safe_open(str(src), framework="pt") as h:
        meta = h.metadata()
    config = {**json.loads(meta["config"]), "arch": {"skip": "none", "decoder_skip": False}}
    save_file(load_file(str(src)), str(f), metadata={**meta, "config": json.dumps(config)})
    assert (load_module(f, device="cpu").skip, load_module(src, device="cpu").skip) == ("none", "global")
    c = export(f, tmp_path / "ex")
    assert c["arch"] == {"skip": "none", "decoder_skip": False}
    ae = load_autoencoder(tmp_path / "ex", device="cpu")
    x = _crops(_images()[:2])
    assert ae.module.skip == "none" and torch.equal(ae.decode(ae.encode(x)), reconstruct_tiled(ae.module, x))
    _set_json(tmp_path / "ex/config.json", arch={"skip": "global", "decoder_skip": False})
    with pytest.raises(ValueError, match="describes model tiny-f8c16"):
        load_autoencoder(tmp_path / "ex", device="cpu")


def _reshape_one(f: Path) -> None:
    from safetensors import safe_open

    with safe_open(str(f), framework="pt") as h:
        meta = h.metadata()
    t = load_file(str(f))
    t["encoder.conv_in.weight"] = torch.zeros(4, 3, 3, 3)
    save_file(t, str(f), metadata=meta)


def _set_json(f: Path, **kv) -> None:
    f.write_text(json.dumps({**json.loads(f.read_text()), **kv}))


TAMPER = {
    "wrong shape": ("model.safetensors", _reshape_one, "has shape [4, 3, 3, 3]"),
    "not safetensors": ("model.safetensors", lambda f: f.write_bytes(b"PK\x03\x04" + b"\0" * 60), "unreadable safetensors"),
    "a pickle": ("model.safetensors", lambda f: torch.save({"x": torch.zeros(1)}, f), "unreadable safetensors"),
    "config not JSON": ("config.json", lambda f: f.write_text("{model: tiny"), "not valid JSON"),
    "foreign config": ("config.json", lambda f: _set_json(f, format="other"), "not a textinfuse-autoencoder export"),
    "other model": ("config.json", lambda f: _set_json(f, model="f16c64"), "describes model f16c64"),
    "stats of 3 channels": ("latent_stats.json", lambda f: _set_json(f, mean=[0.0, 0.0, 0.0]), "16 finite numbers"),
    "stats with zero std": ("latent_stats.json", lambda f: _set_json(f, std=[0.0] * 16), "<= 0"),
}


@pytest.mark.parametrize("case", list(TAMPER))
def test_tampered_export_is_refused_in_one_line(tmp_path, stats_run, case):
    export(stats_run, tmp_path / "ex")
    name, tamper, why = TAMPER[case]
    f = tmp_path / "ex" / name
    tamper(f)
    with pytest.raises(ValueError) as e:
        load_autoencoder(tmp_path / "ex", device="cpu")
    msg = str(e.value)
    assert msg.startswith(f"{f}: ") and why in msg and "\n" not in msg, msg


def test_cli_latent_stats_and_export(tmp_path, run, shards, capsys):
    r = tmp_path / "run"
    shutil.copytree(run, r)
    rc, out, err = _cli(capsys, ["latent-stats", str(r), "--source", str(shards), "--num", "6", "--resolution", str(R)])
    assert rc == 0 and f"-> {r}/latent_stats.json" in out, err
    s = json.loads((r / "latent_stats.json").read_text())
    assert (s["samples"], s["weights"], s["source"]) == (6, "ema", str(shards))

    folder = tmp_path / "images"  # a folder of images gives the same stats as the same images in shards
    folder.mkdir()
    for i, im in enumerate(_images()[:6]):
        (folder / f"{i:02d}.png").write_bytes(_png(im))
    r2 = tmp_path / "run2"
    shutil.copytree(run, r2)
    rc, _, err = _cli(capsys, ["latent-stats", str(r2), "--source", str(folder), "--num", "50", "--resolution", str(R),
                               "--raw", "--checkpoint", str(run / "ckpt/step_00000004")])
    s2 = json.loads((r2 / "latent_stats.json").read_text())
    assert rc == 0 and (s2["samples"], s2["weights"]) == (6, "model"), err
    z = _direct(run, 6, use_ema=False)
    np.testing.assert_allclose(s2["mean"], z.mean((0, 2, 3)).numpy(), rtol=1e-5, atol=1e-6)

    rc, out, err = _cli(capsys, ["export", str(r), "--out", str(tmp_path / "ex")])
    assert rc == 0 and "tiny-f8c16 (ema weights, step 4)" in out, err
    assert (tmp_path / "ex/latent_stats.json").exists() and load_autoencoder(tmp_path / "ex", device="cpu").normalised
    rc, _, err = _cli(capsys, ["export", str(r), "--out", str(tmp_path / "ex"), "--raw"])  # replaces the export
    assert rc == 0 and json.loads((tmp_path / "ex/config.json").read_text())["weights"] == "model", err


def test_cli_errors_are_one_line(tmp_path, run, shards, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy/notes.txt").write_text("mine")
    cases = [
        (["latent-stats", str(tmp_path / "nope"), "--source", str(shards)], f"{tmp_path / 'nope'}: no such run folder"),
        (["latent-stats", str(tmp_path / "empty"), "--source", str(shards)], "no checkpoint here"),
        (["latent-stats", str(run), "--source", str(tmp_path / "empty"), "--resolution", str(R)],
         f"{tmp_path / 'empty'}: no .tar shards or images"),
        (["latent-stats", str(run), "--source", str(tmp_path / "gone")], f"{tmp_path / 'gone'}: no such folder"),
        (["latent-stats", str(run), "--source", str(shards), "--resolution", "36"], "not a multiple of the model's factor f=8"),
        (["export", str(tmp_path / "nope"), "--out", str(tmp_path / "ex")], "no checkpoint here"),
        (["export", str(run), "--out", str(tmp_path / "busy")], "exists and is not an export folder"),
    ]
    for argv, why in cases:
        rc, _, err = _cli(capsys, argv)
        assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and why in err[0], (argv, err)
    assert not (run / "latent_stats.json").exists() and (tmp_path / "busy/notes.txt").exists()


def test_help_does_not_import_torch():
    code = ("import sys; from textinfuse.cli import build_parser; build_parser(); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
