"""The paper's switches (arch.skip, arch.decoder_skip), activation checkpointing, gradient accumulation,
the DINOv2 layer check and the config errors for them: tiny models, tiny inputs, nothing downloaded."""

from __future__ import annotations

import hashlib
import io
import json
import logging

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from textinfuse.configio import ConfigError, to_dict  # noqa: E402
from training.config import StageConfig, TeacherConfig, TrainConfig, load_train_config  # noqa: E402
from training.data import resize_crop  # noqa: E402
from training.loop import Net, micro_loss, optimizer_step  # noqa: E402
from training.models import MODELS, build_model, channel_to_space, space_to_channel  # noqa: E402

NAME = "tiny-f8c16"
# sha256 of "key:shape;" over each registry model's state_dict, taken from models.py before `arch` existed:
# checkpoints written then load into the default build (and into every skip mode: shortcuts have no weights).
KEYS_BEFORE = {
    "f16c64": "e43ca7a6ae1e13f4",
    "f16c128": "471987e2478691ab",
    "f32c128": "58966b06d83decac",
    "f32c192": "de6dcbfaeafa9edc",
    "tiny-f8c16": "9cfaf8672a65d721",
    "tiny-f16c32": "9cbe06add5ab2b2e",
}


def _keys_digest(m: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in m.state_dict().items():
        h.update(f"{k}:{tuple(v.shape)};".encode())
    return h.hexdigest()[:16]


def _model(skip: str = "global", decoder_skip: bool = True, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(NAME, skip=skip, decoder_skip=decoder_skip)


def _images(n: int = 4, side: int = 32, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, side, side, generator=g) * 2 - 1


def _zero(*mods: torch.nn.Module) -> None:
    with torch.no_grad():
        for m in mods:
            for p in m.parameters():
                p.zero_()


def _resample_convs(levels) -> list[torch.nn.Module]:
    """The convolutions of the resampling stages of an encoder or decoder body."""
    return [levels[e - 1] for s, e, resample in levels.units if resample]


@pytest.mark.parametrize("name", list(MODELS))
def test_default_build_has_the_state_dict_keys_of_before(name):
    with torch.device("meta"):  # shapes and names only: no memory, no init
        for kw in ({}, {"skip": "global", "decoder_skip": True}, {"skip": "local"}, {"skip": "none"}):
            assert _keys_digest(build_model(name, **kw)) == KEYS_BEFORE[name], kw


def test_default_config_is_todays_architecture_and_rebuilds_from_its_dict():
    cfg = TrainConfig(model=NAME, stages=(StageConfig("a", 1, {"s": 1.0}),))
    arch = to_dict(cfg)["arch"]
    assert arch == {"skip": "global", "decoder_skip": True}
    a, b = _model(), (torch.manual_seed(0), build_model(NAME, **arch))[1]  # how a loader rebuilds it
    assert b.arch == arch
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


@pytest.mark.parametrize("skip", ["global", "local", "none"])
def test_each_skip_mode_trains(skip):
    net = Net(_model(skip), None)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3)
    x, stage = _images(), StageConfig("a", 1, {"s": 1.0})
    def loss_of(b):
        return micro_loss(net, net.ae, b, stage, None, None, TeacherConfig(), False)

    losses = []
    for _ in range(6):
        loss, _, gnorm = optimizer_step(net, net, opt, [x], loss_of, grad_clip=1.0, lr=2e-3)
        losses.append(float(loss))
        assert torch.isfinite(gnorm)
    assert losses[-1] < losses[0], losses


def test_skip_modes_differ_in_forward_with_the_same_weights():
    x = _images(2)
    with torch.no_grad():
        outs = {s: _model(s)(x) for s in ("global", "local", "none")}
    for a, b in (("global", "local"), ("global", "none"), ("local", "none")):
        assert not torch.allclose(outs[a][0], outs[b][0]) and not torch.allclose(outs[a][1], outs[b][1]), (a, b)


def test_none_has_no_shortcut_zero_bodies_give_zero_output():
    x = _images(2)
    for skip, zero_out in (("none", True), ("local", True), ("global", False)):
        m = _model(skip).eval()
        _zero(m.encoder.conv_out, m.decoder.conv_out)  # what the bodies emit is now zero
        with torch.no_grad():
            z, xr = m.encode(x), m.decode(torch.randn(2, 16, 4, 4))
        assert (z.abs().max() == 0) == zero_out and (xr.abs().max() == 0) == zero_out, skip


def test_local_skip_carries_through_zeroed_resampling_stages():
    """`local` adds DC-AE's parameter-free shortcut around every down/upsampling stage: with their convs
    zeroed, a stage is exactly a 2x2 mean (pixel-unshuffle + group-mean) or a nearest 2x (channel repeat +
    pixel-shuffle), and the signal still reaches the latent / the output; without it, nothing does."""
    x, z = _images(2), torch.randn(2, 16, 4, 4)
    for skip, carries in (("local", True), ("none", False)):
        m = _model(skip).eval()
        _zero(*_resample_convs(m.encoder.body), *_resample_convs(m.decoder.body))
        with torch.no_grad():
            za, zb = m.encode(x), m.encode(x.flip(-1))
            xa, xb = m.decode(z), m.decode(z.flip(-1))
        assert (not torch.allclose(za, zb)) == carries and (not torch.allclose(xa, xb)) == carries, skip
    m = _model("local").eval()
    _zero(*_resample_convs(m.encoder.body), *_resample_convs(m.decoder.body))
    for body, want in ((m.encoder.body, lambda h: F.avg_pool2d(h, 2)),
                       (m.decoder.body, lambda h: F.interpolate(h, scale_factor=2, mode="nearest"))):
        for start, end, resample in body.units:
            if resample:
                h = torch.randn(1, body[end - 1].in_channels, 8, 8)
                with torch.no_grad():
                    assert torch.allclose(body.unit(start, end, resample)(h), want(h), atol=1e-6)


def test_decoder_skip_false_removes_only_the_decoder_mirror():
    on, off = _model(decoder_skip=True).eval(), _model(decoder_skip=False).eval()
    x, z = _images(2), torch.randn(2, 16, 4, 4)
    with torch.no_grad():
        assert torch.equal(on.encode(x), off.encode(x))  # the encoder-side global skip stays
        assert torch.equal(off.decode(z), off.decoder(z))
        assert torch.allclose(on.decode(z) - on.decoder(z), channel_to_space(z, 8), atol=1e-6)
        assert torch.allclose(on.encode(x) - on.encoder(x), space_to_channel(x, 8, 16), atol=1e-6)
    assert off.arch == {"skip": "global", "decoder_skip": False}


@pytest.mark.parametrize("skip", ["global", "local"])
def test_checkpointing_gives_the_same_loss_and_gradients(skip):
    """The whole objective: L1 and the alignment to a (stand-in) DINOv2 with its adaptive weight, whose
    autograd.grad through the recomputed encoder head must work too."""
    from training.losses import DinoTeacher

    teacher = DinoTeacher(layer=1, allow_random=True)
    stage = StageConfig("a", 1, {"s": 1.0}, align=0.5, m_cos=0.1)
    x = _images()
    grads, losses = [], []
    for on in (False, True):
        torch.manual_seed(0)
        net = Net(build_model(NAME, skip=skip), torch.nn.Conv2d(16, teacher.dim, 1))
        net.ae.set_checkpointing(on)
        loss, parts = micro_loss(net, net.ae, x, stage, None, teacher, TeacherConfig(adaptive_weight=True), False)
        loss.backward()
        losses.append(torch.stack([loss.detach(), parts["align_w"]]))
        grads.append(torch.cat([p.grad.flatten() for p in net.parameters()]))
    assert torch.allclose(losses[0], losses[1], rtol=1e-5)
    assert (grads[0] - grads[1]).abs().max() <= 1e-5 * grads[0].abs().max()


@pytest.mark.parametrize("split", [(2, 2), (3, 1)])
def test_grad_accumulation_equals_one_step_of_the_whole_batch(split):
    """k micro-batches accumulated = one step on all their images: same gradients, same parameters after
    one AdamW step (uneven splits too: each loss is weighted by its share of the images). LPIPS (random
    stand-in) is in the loss: a per-image mean, like L1."""
    from training.losses import LPIPS

    torch.manual_seed(0)
    lpips = LPIPS(allow_random=True)
    x = _images(4)
    stage = StageConfig("a", 1, {"s": 1.0}, lpips=0.5)
    result = []
    for micro in ([x], list(x.split(list(split)))):
        net = Net(_model("local"), None)
        # eps=1: Adam's first step is lr*g/(|g|+eps), about lr*g, so it tells a wrongly scaled gradient
        # apart (with a small eps it is lr*sign(g), blind to scale and flipped by rounding where g ~ 0)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3, eps=1.0, weight_decay=0.01)
        loss, parts, _ = optimizer_step(net, net, opt, micro, lambda b, net=net: micro_loss(
            net, net.ae, b, stage, lpips, None, TeacherConfig(), False), grad_clip=1e9, lr=1e-3)
        result.append((loss, parts, [p.grad.clone() for p in net.parameters()], [p.detach().clone()
                                                                                 for p in net.parameters()]))
    (la, pa, ga, wa), (lb, pb, gb, wb) = result
    assert torch.allclose(la, lb, rtol=1e-5) and torch.allclose(pa["lpips"], pb["lpips"], rtol=1e-5)
    ga, gb = torch.cat([g.flatten() for g in ga]), torch.cat([g.flatten() for g in gb])
    assert (ga - gb).abs().max() <= 1e-5 * ga.abs().max()  # float32 sums in another order; some grads are ~0
    for a, b in zip(wa, wb, strict=True):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)


def test_teachers_are_not_run_in_a_stage_that_does_not_weigh_them():
    class Refuse(torch.nn.Module):
        dim = 24

        def forward(self, *a):
            raise AssertionError("a teacher with weight 0 was run")

    ae = _model()
    net = Net(ae, torch.nn.Conv2d(16, 24, 1))
    stage = StageConfig("a", 1, {"s": 1.0}, lpips=0.0, align=0.0)
    loss, parts = micro_loss(net, ae, _images(2), stage, Refuse(), Refuse(), TeacherConfig(), False)
    loss.backward()
    assert set(parts) == {"l1"}
    assert net.proj.weight.grad is not None and net.proj.weight.grad.abs().max() == 0  # DDP needs a gradient


def _dino_folder(tmp_path):
    from training.losses import DinoTeacher

    d = tmp_path / "dino"
    DinoTeacher(layer=1, allow_random=True).net.save_pretrained(str(d))  # a 2-block stand-in, saved locally
    return d


def test_dino_layer_is_checked_against_the_teachers_depth(tmp_path):
    from training.losses import DinoTeacher

    d = _dino_folder(tmp_path)
    assert DinoTeacher(str(d), layer=2).layer == 2  # the last block is in range
    for bad in (3, 24, 0, -1):
        with pytest.raises(ValueError) as e:
            DinoTeacher(str(d), layer=bad)
        msg = str(e.value)
        assert msg == f"teachers.dinov2_layer={bad}: out of range for the DINOv2 in {d}, of depth 2 (valid: 1..2)"
    # the random stand-in is built as deep as the configured layer, so GPU configs (layer 12) smoke-run
    assert DinoTeacher(layer=12, allow_random=True).net.config.num_hidden_layers == 12


def test_dino_resolution_gives_the_teacher_more_pixels_pooled_to_the_latent_grid():
    from training.losses import DinoTeacher

    seen = []
    t = DinoTeacher(layer=1, allow_random=True, resolution=112)
    hook = t.net.register_forward_pre_hook(lambda m, a, kw: seen.append(tuple(kw["pixel_values"].shape[-2:])),
                                           with_kwargs=True)
    feat = t(_images(2, 64), (2, 2))  # an f32-like 2x2 grid: 28 px at one patch per position
    hook.remove()
    assert seen == [(112, 112)] and feat.shape == (2, t.dim, 2, 2)
    assert DinoTeacher(layer=1, allow_random=True)(_images(2, 64), (2, 2)).shape == (2, t.dim, 2, 2)


@pytest.mark.parametrize("setting,match", [
    ("arch.skip=foo", r"arch\.skip: 'foo' is not one of 'global', 'local', 'none'$"),
    ("arch.decoder_skip=maybe", r"arch\.decoder_skip: expected true/false, got 'maybe'$"),
    ("stages=[{name: a, steps: 1, weights: {synthetic: 1.0}, grad_accum: 0}]",
     r"stages\[0\]: stage a: grad_accum must be >= 1 \(got 0\)$"),
    ("stages=[{name: a, steps: 1, weights: {synthetic: 1.0}, batch_size: -2}]",
     r"stages\[0\]: stage a: batch_size must be >= 1, or 0 for data.batch_size \(got -2\)$"),
    ("stages=[{name: a, steps: 1, weights: {synthetic: 1.0}, fit: squash}]",
     r"stages\[0\]\.fit: 'squash' is not one of 'crop', 'resize'$"),
    ("teachers.dinov2_layer=0", r"teachers: dinov2_layer must be >= 1 \(a transformer block, 1..depth; got 0\)$"),
    ("memory.checkpoint=true", r"unknown key memory\.checkpoint \(known: checkpointing\)$"),
])
def test_config_errors_are_one_clear_line(setting, match):
    with pytest.raises(ConfigError, match=r"^configs/train/tiny-cpu\.yaml: " + match) as e:
        load_train_config("configs/train/tiny-cpu.yaml", [setting], ["synthetic=/d"])
    assert "\n" not in str(e.value)


def test_resize_fits_the_whole_image_and_crop_stays_the_default():
    img = np.zeros((64, 128, 3), np.uint8)
    img[:, 64:] = 255  # left half black, right half white
    out = resize_crop(img, (64, 32), np.random.default_rng(0))  # same aspect: the whole image, halved
    assert out.shape == (32, 64, 3) and out[:, :32].max() == 0 and out[:, 32:].min() == 255
    tall = resize_crop(np.zeros((300, 100, 3), np.uint8), (50, 50), None)  # covers: 50 x 150, then a crop
    assert tall.shape == (50, 50, 3)
    assert StageConfig("a", 1, {"s": 1.0}).fit == "crop"


def _shards(folder, n: int = 8, side: int = 48) -> str:
    import webdataset as wds
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(0)
    with wds.TarWriter(str(folder / "s-000000.tar")) as w:
        for i in range(n):
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(buf, format="PNG")
            w.write({"__key__": f"{i:06d}", "png": buf.getvalue()})
    return str(folder)


def test_train_with_the_new_switches_records_arch_and_falls_back_when_compile_fails(tmp_path, monkeypatch,
                                                                                      caplog):
    """The loop end to end: local skips, a per-stage micro-batch with 2-step accumulation, resize fit,
    checkpointing, and torch.compile that fails at its first call (a missing compiler, say): one warning,
    the run goes on. The weights' metadata carries `arch`, from which the model is rebuilt."""
    from safetensors import safe_open

    from training.loop import train

    def broken(fn, **kw):
        def call(*a, **k):
            raise RuntimeError("no C++ compiler\nsecond line")
        return call

    monkeypatch.setattr(torch, "compile", broken)
    src = _shards(tmp_path / "src")
    stages = ("stages=[{name: a, steps: 2, resolution: 32, weights: {synthetic: 1.0}, batch_size: 2, "
              "grad_accum: 2, fit: resize, lr: 1.0e-3}]")
    cfg = load_train_config("configs/train/tiny-cpu.yaml", [
        stages, "data.batch_size=8", "data.workers=0", "data.shuffle_buffer=4", "data.holdout_shards=0",
        "eval.resolution=32", "eval.num_samples=2", "eval.ned_samples=0", "eval.every=100", "ckpt_every=100",
        "optim.warmup_steps=0", "arch.skip=local", "memory.checkpointing=true", "compile=true"],
        [f"synthetic={src}"])
    with caplog.at_level(logging.WARNING, logger="training.loop"):
        s = train(cfg, tmp_path / "run")
    warned = [r.getMessage() for r in caplog.records if "compile" in r.getMessage()]
    assert warned == ["compile: torch.compile failed (RuntimeError: no C++ compiler); training uncompiled"]
    ckpt = tmp_path / "run/ckpt/step_00000002"
    state = json.loads((ckpt / "state.json").read_text())["state"]
    assert s["step"] == 2 and state["stage_batches"] == 4 and state["mix"] == {"a": {"synthetic": 8}}
    with safe_open(str(ckpt / "ema.safetensors"), "pt") as f:
        config = json.loads(f.metadata()["config"])
        ae = build_model(config["model"], **config["arch"])
        ae.load_state_dict({k[len("net.ae."):]: f.get_tensor(k) for k in f.keys() if k.startswith("net.ae.")})
    assert config["arch"] == {"skip": "local", "decoder_skip": True} and ae.arch == config["arch"]
    assert config["memory"] == {"checkpointing": True} and config["stages"][0]["grad_accum"] == 2
