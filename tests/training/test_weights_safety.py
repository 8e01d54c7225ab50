"""Weight files from elsewhere (LPIPS, FID Inception, DINOv2, `eval --checkpoint`): nothing in them executes,
and every failure is one line naming the file."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from training.inception import load_fid_inception
from training.inference import load_autoencoder, load_reconstructor
from training.losses import LPIPS, DinoTeacher


class Boom:
    """Unpickling this creates `marker`: the side effect a crafted weights file would have."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _crafted(tmp_path: Path, kind: str) -> tuple[Path, Path]:
    """(weights file, marker) for a crafted pickle: torch's zip format or a bare pickle."""
    marker, f = tmp_path / "PWNED", tmp_path / f"crafted-{kind}.pth"
    if kind == "zip":
        torch.save({"features.0.weight": Boom(marker)}, f)
    else:
        f.write_bytes(pickle.dumps({"features.0.weight": Boom(marker)}, protocol=2))
    return f, marker


def _good_lpips(tmp_path: Path) -> tuple[Path, Path]:
    lp = LPIPS(allow_random=True)
    trunk, heads = tmp_path / "vgg16.pth", tmp_path / "vgg.pth"
    torch.save({f"features.{k}": v for k, v in lp.features.state_dict().items()}, trunk)
    torch.save({f"lin{i}.model.1.weight": lin.weight for i, lin in enumerate(lp.lins)}, heads)
    return trunk, heads


@pytest.mark.parametrize("kind", ["zip", "bare"])
def test_crafted_pickle_weights_never_run(tmp_path, kind):
    f, marker = _crafted(tmp_path, kind)
    _, heads = _good_lpips(tmp_path)
    with pytest.raises(ValueError, match=rf"^{f}: not a weights file \(") as e:
        LPIPS(str(f), str(heads))
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match=rf"^{f}: not a weights file"):
        load_fid_inception(f)
    assert not marker.exists()


def test_broken_weight_files_are_named(tmp_path):
    trunk, heads = _good_lpips(tmp_path)
    cases = {}
    data = trunk.read_bytes()
    (tmp_path / "trunc.pth").write_bytes(data[: len(data) // 2])
    cases["trunc.pth"] = "not a weights file"
    (tmp_path / "garbage.pth").write_bytes(b"\x00garbage" * 100)
    cases["garbage.pth"] = "not a weights file"
    (tmp_path / "empty.pth").write_bytes(b"")
    cases["empty.pth"] = "not a weights file"
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    cases["list.pth"] = "holds a list, not a mapping of names to tensors"
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "wrong.pth")
    cases["wrong.pth"] = "missing"
    torch.save({"lin0.model.1.weight": torch.zeros(3)}, tmp_path / "heads-wrong.pth")
    (tmp_path / "trunc.safetensors").write_bytes(struct.pack("<Q", 1000) + b"{")
    cases["trunc.safetensors"] = "unreadable safetensors"
    for name, why in cases.items():
        with pytest.raises(ValueError, match=rf"^{tmp_path / name}: {why}") as e:
            LPIPS(str(tmp_path / name), str(heads))
        assert "\n" not in str(e.value)
    wrong_heads = rf"^{tmp_path / 'heads-wrong.pth'}: missing 4 tensor\(s\), e.g. lin1.model.1.weight"
    with pytest.raises(ValueError, match=wrong_heads):
        LPIPS(str(trunk), str(tmp_path / "heads-wrong.pth"))
    with pytest.raises(FileNotFoundError) as e:
        LPIPS(str(tmp_path / "nope.pth"), str(heads))
    assert e.value.filename == str(tmp_path / "nope.pth")
    with pytest.raises(ValueError, match=rf"^{tmp_path / 'wrong.pth'}: .*missing"):
        load_fid_inception(tmp_path / "wrong.pth")


@pytest.fixture
def no_network(monkeypatch):
    """Any socket connection attempt fails the test."""

    def refuse(*a, **k):
        raise AssertionError(f"network attempted: {a}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_missing_dinov2_folder_is_local_only(tmp_path, no_network):
    for bad in (tmp_path / "nope", tmp_path / "facebook/dinov2-base"):
        with pytest.raises(FileNotFoundError) as e:
            DinoTeacher(str(bad))
        assert e.value.filename == str(bad) and "local only" in e.value.strerror
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=rf"^{empty}: .*config.json"):
        DinoTeacher(str(empty))


def test_dino_teacher_keeps_transformers_offline(monkeypatch):
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    DinoTeacher(layer=1, allow_random=True)
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"


def test_dinov2_folder_with_pickle_weights_only_is_refused(tmp_path, no_network):
    t = DinoTeacher(layer=1, allow_random=True)
    d = tmp_path / "dino"
    t.net.save_pretrained(str(d))
    DinoTeacher(str(d), layer=1)  # the real layout loads
    marker = tmp_path / "PWNED"
    for f in d.glob("*.safetensors"):
        f.unlink()
    torch.save({"x": Boom(marker)}, d / "pytorch_model.bin")
    with pytest.raises(ValueError, match=rf"^{d}: .*safetensors"):
        DinoTeacher(str(d), layer=1)
    assert not marker.exists()
    (d / "model.safetensors").write_bytes(b"garbage")
    (d / "pytorch_model.bin").unlink()
    with pytest.raises(ValueError, match=rf"^{d}: ") as e:
        DinoTeacher(str(d), layer=1)
    assert "\n" not in str(e.value)


def test_config_refuses_missing_teacher_paths_before_anything_loads(tmp_path):
    """The whole CLI in a fresh process: one line naming the key and the path; transformers never imported,
    no socket opened."""
    marker = tmp_path / "NET"
    code = f"""
import json, socket, sys
def refuse(*a, **k):
    open({str(marker)!r}, "w").write(repr(a))
    raise OSError("no network in this test")
socket.socket.connect = refuse
from textinfuse.cli import main
rc = main(["train", "--config", "configs/train/tiny-cpu.yaml", "--source", "synthetic={tmp_path}",
           "--out", {str(tmp_path / "run")!r}, "--set", "teachers.dinov2={tmp_path / "x/y"}"])
print(json.dumps([rc, "transformers" in sys.modules]))
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    rc, imported = json.loads(p.stdout.strip().splitlines()[-1])
    assert rc == 2 and not imported and not marker.exists()
    assert p.stderr.strip().splitlines() == [
        f"error: teachers.dinov2: {tmp_path / 'x/y'}: no such folder (weights are local only; see README)"]
    assert not (tmp_path / "run").exists()


# --- eval --checkpoint --------------------------------------------------------------------------------


def _ckpt(tiny_run: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    return run


def _rewrite(f: Path, tensors=None, metadata=None) -> None:
    from safetensors import safe_open

    with safe_open(str(f), framework="pt") as h:
        meta = h.metadata()
    save_file(tensors if tensors is not None else load_file(str(f)), str(f),
              metadata=meta if metadata is None else metadata)


def test_eval_checkpoint_loads(tiny_run):
    import numpy as np

    fn = load_reconstructor(tiny_run, device="cpu")
    assert fn(np.zeros((1, 20, 30, 3), np.float32)).shape == (1, 20, 30, 3)


EVAL_CASES = {
    "truncated": (lambda f: f.write_bytes(f.read_bytes()[:1000]), "unreadable safetensors"),
    "garbage": (lambda f: f.write_bytes(b"\xff" * 64), "unreadable safetensors"),
    "huge header": (lambda f: f.write_bytes(struct.pack("<Q", 2**62) + b"{}"), "unreadable safetensors"),
    "empty": (lambda f: f.write_bytes(b""), "unreadable safetensors"),
    "config not JSON": (lambda f: _rewrite(f, metadata={"config": "{not json"}), "metadata"),
    "no metadata": (lambda f: _rewrite(f, metadata={}), "metadata"),
    "config a list": (lambda f: _rewrite(f, metadata={"config": "[1]"}), "metadata"),
    "unknown model": (lambda f: _rewrite(f, metadata={"config": json.dumps({"model": "f99"})}), "f99"),
    "model not a str": (lambda f: _rewrite(f, metadata={"config": json.dumps({"model": ["x"]})}), "model"),
    "other model": (lambda f: _rewrite(f, metadata={"config": json.dumps({"model": "tiny-f16c32"})}),
                    "names model tiny-f16c32"),
    "nan": (lambda f: _rewrite(f, {k: v.fill_(float("nan")) for k, v in load_file(str(f)).items()}),
            "non-finite"),
    "no ae tensors": (lambda f: _rewrite(f, {"x": torch.zeros(1)}), "missing"),
}


@pytest.mark.parametrize("case", list(EVAL_CASES))
def test_eval_checkpoint_refuses_broken_weights_in_one_line(tmp_path, tiny_run, case):
    run = _ckpt(tiny_run, tmp_path)
    f = run / "ckpt/step_00000003/ema.safetensors"
    tamper, why = EVAL_CASES[case]
    tamper(f)
    with pytest.raises(ValueError) as e:
        load_autoencoder(run, device="cpu")
    msg = str(e.value)
    assert msg.startswith(f"{f}: ") and why in msg and "\n" not in msg, msg


@pytest.mark.parametrize("pointer", ["../../etc", "step_00000009", "", "/etc/passwd"])
def test_eval_checkpoint_bad_latest_pointer(tmp_path, tiny_run, pointer):
    run = _ckpt(tiny_run, tmp_path)
    (run / "ckpt/latest").write_text(pointer)
    with pytest.raises((ValueError, FileNotFoundError)) as e:
        load_autoencoder(run, device="cpu")
    where = getattr(e.value, "filename", None) or str(e.value)
    assert str(run / "ckpt/latest") in where and "\n" not in str(e.value)


def test_eval_checkpoint_via_cli_is_one_line(tmp_path, tiny_run, capsys):
    from PIL import Image

    from textinfuse.cli import main

    run = _ckpt(tiny_run, tmp_path)
    f = run / "ckpt/step_00000003/ema.safetensors"
    f.write_bytes(f.read_bytes()[:500])
    gt = tmp_path / "gt"
    gt.mkdir()
    Image.new("RGB", (32, 32)).save(gt / "a.png")
    capsys.readouterr()
    rc = main(["eval", "--gt-dir", str(gt), "--out", str(tmp_path / "ev"), "--checkpoint", str(run)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith(f"error: {f}: unreadable safetensors"), err
