"""`train --resume` on hostile or broken run folders: nothing in them executes, every refusal is one line
naming the file, and a broken newest checkpoint falls back to the newest older one that loads."""

from __future__ import annotations

import json
import logging
import os
import shutil
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from training.loop import train


@pytest.fixture(autouse=True)
def _info_logs(caplog):
    caplog.set_level(logging.INFO, logger="training")


class Boom:
    """Unpickling this creates `marker`: the side effect a crafted checkpoint would have."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _copy(run: Path, dst: Path) -> Path:
    shutil.copytree(run, dst, symlinks=True)
    return dst


def _step(run: Path, n: int) -> Path:
    return run / "ckpt" / f"step_{n:08d}"


def _to_old_format(step: Path, marker: Path) -> None:
    """Make `step` look like a checkpoint of the old format, with a pickle that would run code."""
    for f in step.iterdir():
        if f.name not in ("model.safetensors", "ema.safetensors"):
            f.unlink()
    torch.save({"optimizer": Boom(marker), "state": {"step": 3}}, step / "state.pt")


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_old_pickle_checkpoint_is_never_loaded_and_resume_falls_back(tmp_path, tiny_run, small_text_dir,
                                                                     tiny, caplog):
    run, marker = _copy(tiny_run, tmp_path / "run"), tmp_path / "PWNED"
    _to_old_format(_step(run, 3), marker)
    rc, err = tiny.cli([*tiny.argv(small_text_dir, run), "--resume"])
    assert not marker.exists()
    assert rc == 0, err
    assert f"{_step(run, 3) / 'state.pt'}: old pickle checkpoint format" in caplog.text
    assert "resumed from" in caplog.text and "step_00000002" in caplog.text
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 4


def test_only_old_pickle_checkpoints_refused_in_one_line(tmp_path, tiny_run, small_text_dir, tiny):
    run, marker = _copy(tiny_run, tmp_path / "run"), tmp_path / "PWNED"
    for n in (1, 2, 3):
        _to_old_format(_step(run, n), marker)
    rc, err = tiny.cli([*tiny.argv(small_text_dir, run), "--resume"])
    assert not marker.exists()
    line = _one_line(err)
    assert rc == 2 and "state.pt: old pickle checkpoint format" in line and "no older checkpoint loads" in line


def test_checkpoint_holds_no_pickle(tiny_run):
    step = _step(tiny_run, 3)
    assert sorted(f.name for f in step.iterdir()) == ["ema.safetensors", "model.safetensors",
                                                      "optim.safetensors", "state.json"]
    state = json.loads((step / "state.json").read_text())
    assert state["state"]["step"] == 3 and isinstance(state["rng"]["python"], list)
    assert any(k.startswith("state.") and k.endswith(".exp_avg") for k in load_file(str(step / "optim.safetensors")))


def _truncate(f: Path, keep: float = 0.5) -> None:
    data = f.read_bytes()
    f.write_bytes(data[: int(len(data) * keep)])


def test_truncated_checkpoint_falls_back_to_the_previous_one_exactly(tmp_path, tiny_run, small_text_dir, tiny,
                                                                     caplog):
    cfg = tiny.config(small_text_dir)
    broken = _copy(tiny_run, tmp_path / "broken")
    _truncate(_step(broken, 3) / "model.safetensors")
    older = _copy(tiny_run, tmp_path / "older")  # what the fallback should amount to: step 3 never written
    shutil.rmtree(_step(older, 3))
    (older / "ckpt/latest").write_text("step_00000002\n")
    a = train(cfg, broken, resume=True)
    assert f"{_step(broken, 3) / 'model.safetensors'}: unreadable safetensors" in caplog.text
    assert "falling back" in caplog.text
    b = train(cfg, older, resume=True)
    assert a["step"] == b["step"] == 4 and a["weights_sha256"] == b["weights_sha256"]


def test_no_loadable_checkpoint_is_refused_in_one_line(tmp_path, tiny_run, small_text_dir, tiny):
    run = _copy(tiny_run, tmp_path / "run")
    for n in (1, 2, 3):
        _truncate(_step(run, n) / "optim.safetensors")
    rc, err = tiny.cli([*tiny.argv(small_text_dir, run), "--resume"])
    line = _one_line(err)
    assert rc == 2 and f"{_step(run, 3) / 'optim.safetensors'}" in line and "no older checkpoint loads" in line


@pytest.mark.parametrize("pointer", ["step_00000009", "../../etc", "/etc", "step_00000003/../../..", ""])
def test_bad_latest_pointer_falls_back_to_the_newest_step(tmp_path, tiny_run, small_text_dir, tiny, caplog,
                                                          pointer):
    run = _copy(tiny_run, tmp_path / "run")
    (run / "ckpt/latest").write_text(pointer + "\n")
    rc, err = tiny.cli([*tiny.argv(small_text_dir, run), "--resume"])
    assert rc == 0, err
    assert f"{run / 'ckpt/latest'}:" in caplog.text and "step_00000003" in caplog.text


def test_latest_pointer_to_nothing_is_refused_in_one_line(tmp_path, tiny_run, small_text_dir, tiny):
    run = _copy(tiny_run, tmp_path / "run")
    for n in (1, 2, 3):
        shutil.rmtree(_step(run, n))
    rc, err = tiny.cli([*tiny.argv(small_text_dir, run), "--resume"])
    line = _one_line(err)
    assert rc == 2 and f"{run / 'ckpt/latest'}: names step_00000003, which does not exist" in line


def _edit_state(step: Path, fn) -> None:
    f = step / "state.json"
    d = json.loads(f.read_text())
    fn(d)
    f.write_text(json.dumps(d))


BAD_STATES = {
    "step is a string": lambda d: d["state"].update(step="3"),
    "step of another folder": lambda d: d["state"].update(step=2),
    "replay 10^12 batches": lambda d: d["state"].update(stage_batches=10**12),
    "mix not a mapping": lambda d: d["state"].update(mix=[1, 2]),
    "param_groups missing": lambda d: d["optimizer"].pop("param_groups"),
    "lr is a string": lambda d: d["optimizer"]["param_groups"][0].update(lr="0.1"),
    "params point elsewhere": lambda d: d["optimizer"]["param_groups"][0].update(params=[10**6]),
    "python rng wrong": lambda d: d["rng"].update(python=[3, [1, 2], None]),
    "numpy rng wrong": lambda d: d["rng"]["numpy"].update(keys=[1]),
    "not an object": lambda d: d.clear(),
}


@pytest.mark.parametrize("case", list(BAD_STATES))
@pytest.mark.timeout(120)
def test_state_json_with_wrong_content_falls_back(tmp_path, tiny_run, small_text_dir, tiny, caplog, case):
    run = _copy(tiny_run, tmp_path / "run")
    _edit_state(_step(run, 3), BAD_STATES[case])
    s = train(tiny.config(small_text_dir), run, resume=True)
    assert s["step"] == 4
    assert f"{_step(run, 3) / 'state.json'}:" in caplog.text and "falling back" in caplog.text
    assert "resumed from" in caplog.text and "step_00000002" in caplog.text


def test_state_json_not_json_falls_back(tmp_path, tiny_run, small_text_dir, tiny, caplog):
    run = _copy(tiny_run, tmp_path / "run")
    (_step(run, 3) / "state.json").write_bytes(b"\x80\x04K\x03.")  # a pickle, not JSON
    assert train(tiny.config(small_text_dir), run, resume=True)["step"] == 4
    assert f"{_step(run, 3) / 'state.json'}: not valid JSON" in caplog.text


def _tamper_safetensors(f: Path, fn) -> None:
    t = load_file(str(f))
    fn(t)
    save_file(t, str(f), metadata={"config": "{}", "step": "3"})


@pytest.mark.parametrize("case,file,fn,why", [
    ("shape", "model.safetensors", lambda t: t.update({k: torch.zeros(2, 2) for k in list(t)[:1]}), "shape"),
    ("nan", "ema.safetensors", lambda t: next(iter(t.values())).fill_(float("nan")), "non-finite"),
    ("missing", "model.safetensors", lambda t: t.pop(next(iter(t))), "missing"),
    ("extra", "model.safetensors", lambda t: t.update(bogus=torch.zeros(1)), "unexpected"),
    ("dtype", "model.safetensors", lambda t: t.update({k: v.half() for k, v in list(t.items())[:1]}), "dtype"),
    ("optim shape", "optim.safetensors",
     lambda t: t.update({k: torch.zeros(3) for k in sorted(t) if k.endswith("exp_avg")}), "shape"),
    ("optim param", "optim.safetensors", lambda t: t.update({"state.999.exp_avg": torch.zeros(3)}), "999"),
    ("rng", "optim.safetensors", lambda t: t.update({"rng.torch": torch.zeros(3, dtype=torch.uint8)}), "rng"),
    ("rng content", "optim.safetensors", lambda t: t["rng.torch"].fill_(255), "rng.torch unusable"),
])
def test_tampered_tensors_fall_back(tmp_path, tiny_run, small_text_dir, tiny, caplog, case, file, fn, why):
    run = _copy(tiny_run, tmp_path / "run")
    _tamper_safetensors(_step(run, 3) / file, fn)
    assert train(tiny.config(small_text_dir), run, resume=True)["step"] == 4
    assert f"{_step(run, 3) / file}:" in caplog.text and why in caplog.text and "falling back" in caplog.text


def test_huge_header_length_is_refused(tmp_path, tiny_run, small_text_dir, tiny, caplog):
    run = _copy(tiny_run, tmp_path / "run")
    f = _step(run, 3) / "model.safetensors"
    f.write_bytes(struct.pack("<Q", 2**62) + b"{}")
    assert train(tiny.config(small_text_dir), run, resume=True)["step"] == 4
    assert f"{f}: unreadable safetensors" in caplog.text


def test_fifo_in_place_of_a_file_does_not_hang(tmp_path, tiny_run, small_text_dir, tiny, caplog):
    run = _copy(tiny_run, tmp_path / "run")
    f = _step(run, 3) / "optim.safetensors"
    f.unlink()
    os.mkfifo(f)
    assert train(tiny.config(small_text_dir), run, resume=True)["step"] == 4
    assert f"{f}: not a regular file" in caplog.text


def test_resume_with_another_model_is_refused_in_one_line(tmp_path, tiny_run, small_text_dir, tiny):
    run = _copy(tiny_run, tmp_path / "run")
    rc, err = tiny.cli([*tiny.argv(small_text_dir, run, "model=tiny-f16c32"), "--resume"])
    line = _one_line(err)
    assert rc == 2 and "step_00000003/model.safetensors: missing 26 tensor(s)" in line


def test_saving_never_writes_through_symlinks(tmp_path, tiny_run, small_text_dir, tiny):
    """A run folder whose `latest` and next step folder are links to files elsewhere: saving replaces the
    links and leaves their targets alone."""
    run = _copy(tiny_run, tmp_path / "run")
    victim, victim_dir = tmp_path / "victim.txt", tmp_path / "victim_dir"
    victim.write_text("keep me\n")
    victim_dir.mkdir()
    (victim_dir / "keep.txt").write_text("keep me\n")
    (run / "ckpt/latest").unlink()
    (run / "ckpt/latest").symlink_to(victim)
    _step(run, 3).rename(run / "ckpt/old3")
    _step(run, 3).symlink_to(victim_dir, target_is_directory=True)
    rc, err = tiny.cli([*tiny.argv(small_text_dir, run), "--resume"])
    assert rc == 0, err
    assert victim.read_text() == "keep me\n" and (victim_dir / "keep.txt").read_text() == "keep me\n"
    assert (run / "ckpt/latest").read_text().strip() == "step_00000004"
    assert not (run / "ckpt/latest").is_symlink()
