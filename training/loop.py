"""The training loop: `train(cfg, out_dir)` runs the curriculum and writes the run folder.

Run folder: `config.yaml` (resolved), `metrics.jsonl` (one object per logged step: `step`, `loss`, ...;
`psnr`/`psnr_ema` in dB on held-out samples at eval steps), `tb/` (TensorBoard), `grids/step_N.png`
(originals above reconstructions), `ckpt/step_N/` (see checkpoint.py). Multi-GPU/multi-node: launch with
`torchrun`; the loop reads RANK/WORLD_SIZE/LOCAL_RANK and uses DDP (nccl on GPU, gloo on CPU).

An optimiser step takes `stage.grad_accum` micro-batches of `micro_batch(cfg, stage)` images, each loss
weighted by its share of the step's images (gradients all-reduced on the last one only). On CUDA: bf16
autocast for the model and the teachers, channels_last, TF32 matmuls; `memory.checkpointing` recomputes
block activations in backward; `compile: true` runs the model through torch.compile and falls back, with
one warning, when that fails.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import yaml
from PIL import Image
from torch import nn

from textinfuse.configio import to_dict

from . import checkpoint
from .config import StageConfig, TeacherConfig, TrainConfig
from .curriculum import lr_at, micro_batch, stage_at, stage_start
from .data import MixedBatches, eval_images, make_loader, shard_urls, split_holdout
from .losses import LPIPS, DinoTeacher, adaptive_weight, alignment_loss
from .models import Autoencoder, build_model
from .safeio import first_line

log = logging.getLogger(__name__)


class Net(nn.Module):
    """The trained parameters: the autoencoder and the 1x1 projection latent -> teacher dim (optional)."""

    def __init__(self, ae: Autoencoder, proj: nn.Module | None) -> None:
        super().__init__()
        self.ae, self.proj = ae, proj

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        xr, z = self.ae(x)
        return xr, z, (self.proj(z) if self.proj is not None else None)


def _setup_dist(device_pref: str) -> tuple[int, int, torch.device, bool]:
    world = int(os.environ.get("WORLD_SIZE", 1))
    rank, local = int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0))
    cuda = torch.cuda.is_available() and device_pref in ("auto", "cuda")
    device = torch.device(f"cuda:{local}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    created = False
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
        created = True
    return rank, world, device, created


def micro_loss(fwd: Callable, ae: Autoencoder, x: torch.Tensor, stage: StageConfig, lpips: LPIPS | None,
               teacher: DinoTeacher | None, t: TeacherConfig, amp: bool) -> tuple[torch.Tensor, dict]:
    """Loss of one micro-batch x (float, [-1, 1]) through `fwd` (Net, DDP or compiled) and its logged
    parts. A teacher runs only where the stage weighs it; where it does not, the projection gets a zero
    term, so every parameter still has a gradient (DDP requires it; the weight-0 term gave the same)."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        xr, z, zp = fwd(x)
    xr = xr.float()
    l1 = (xr - x).abs().mean()
    rec, parts = stage.l1 * l1, {"l1": l1}
    if lpips is not None and stage.lpips > 0:
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
            parts["lpips"] = lpips(xr, x).float().mean()
        rec = rec + stage.lpips * parts["lpips"]
    if zp is None:
        return rec, parts
    if teacher is None or stage.align <= 0:
        return rec + 0.0 * zp.sum(), parts
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        feat = teacher(x, tuple(z.shape[-2:]))
    parts["mcos"], parts["mdms"] = alignment_loss(zp, feat, stage.m_cos, stage.m_dist, t.align_positions)
    align = parts["mcos"] + parts["mdms"]
    w = torch.ones((), device=x.device)
    if t.adaptive_weight:
        w = adaptive_weight(rec, align, ae.encoder.conv_out.weight)  # per micro-batch
    parts["align_w"] = w
    return rec + stage.align * w * align, parts


def optimizer_step(model: nn.Module, net: nn.Module, opt: torch.optim.Optimizer, micro: list[torch.Tensor],
                   loss_of: Callable, grad_clip: float, lr: float) -> tuple[torch.Tensor, dict, torch.Tensor]:
    """One optimiser step over micro-batches: loss_of(x) -> (loss, parts) of each, weighted by its share
    of the images, so k micro-batches of B give the gradient of one batch of kB (same images). `model`
    is the DDP wrapper (synchronised on the last micro-batch only) or `net`. Returns the whole batch's
    (loss, parts, gradient norm before clipping)."""
    n = sum(len(x) for x in micro)
    opt.zero_grad(set_to_none=True)
    total: torch.Tensor | float = 0.0
    parts_sum: dict[str, torch.Tensor] = {}
    for i, x in enumerate(micro):
        share = len(x) / n
        last = i == len(micro) - 1
        with nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync():
            loss, parts = loss_of(x)
            (loss if share == 1 else loss * share).backward()
        total = total + share * loss.detach()
        for k, v in parts.items():
            parts_sum[k] = parts_sum.get(k, 0.0) + share * v.detach()
    gnorm = nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
    for g in opt.param_groups:
        g["lr"] = lr
    opt.step()
    return total, parts_sum, gnorm


def _compiled(model: nn.Module) -> Callable | None:
    """torch.compile(model), or None (one warning) when torch cannot compile here."""
    try:
        return torch.compile(model)
    except Exception as e:  # unsupported platform or Python: train uncompiled
        log.warning("compile: torch.compile unavailable (%s); training uncompiled", first_line(e))
        return None


def batch_psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean PSNR in dB of a batch of tensors in [-1, 1] (measured on the [0, 1] scale; MSE floored at 1e-10):
    the trainer's logged `psnr`. Not `textinfuse.metrics.psnr`, the evaluation's (uint8 images, piq's eps)."""
    mse = ((a.clamp(-1, 1) - b) / 2).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    return float((10 * torch.log10(1 / mse)).mean())


@torch.no_grad()
def reconstruct(ae: Autoencoder, x: torch.Tensor, autocast: bool) -> torch.Tensor:
    outs = []
    for chunk in x.split(8):
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast):
            outs.append(ae(chunk)[0].float())
    return torch.cat(outs)


def _uint8_images(t: torch.Tensor) -> list:
    """A batch in [-1, 1] (N, 3, H, W) as a list of uint8 RGB (H, W, 3) arrays."""
    return [((im.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy() for im in t]


def ocr_texts(x: torch.Tensor) -> list[str]:
    """OCR (bundled rapidocr) of each image in [-1, 1]: the evaluation's text with the evaluation's default
    (`textinfuse.ocr.text_of` with `DEFAULT_NED_TEXT`: OmniDoc-TokenBench's lines joined in the engine's
    order), so the logged NED is the one `textinfuse eval` reports by default."""
    from textinfuse import ocr

    return [ocr.text_of(im, ocr.DEFAULT_NED_TEXT) for im in _uint8_images(x)]


def ned(gt_texts: list[str], xr: torch.Tensor) -> float | None:
    """Mean 1 - NED between the originals' OCR and the reconstructions' OCR (OmniDoc-TokenBench), over
    originals that have text; None when none has."""
    from textinfuse.metrics import ned_similarity

    pairs = [(g, r) for g, r in zip(gt_texts, ocr_texts(xr[: len(gt_texts)]), strict=True) if g]
    return sum(ned_similarity(g, r) for g, r in pairs) / len(pairs) if pairs else None


def save_grid(path: Path, x: torch.Tensor, xr: torch.Tensor, n: int = 8) -> None:
    rows = [torch.cat(list(t[:n].clamp(-1, 1)), dim=2) for t in (x, xr)]
    img = ((torch.cat(rows, dim=1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():  # a run folder from elsewhere: replace the link, never write through it
        path.unlink()
    Image.fromarray(img).save(path)


def _writer(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.warning("no TensorBoard events: install tensorboard (pip install 'textinfuse[train]')")
        return None
    return SummaryWriter(str(out / "tb"))


def train(cfg: TrainConfig, out_dir: str | Path, resume: bool = False, stop_after: int | None = None) -> dict:
    """Train `cfg` into run folder `out_dir`; `resume` continues from its latest checkpoint; `stop_after`
    stops (with a checkpoint) at that global step, as an interruption would. Returns a summary dict."""
    rank, world, device, created = _setup_dist(cfg.device)
    out = Path(out_dir)
    use_amp = device.type == "cuda"  # bf16 autocast on GPU, fp32 on CPU
    fmt = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    if device.type == "cuda":  # TF32 for what autocast leaves in float32 (cuDNN convolutions: its default)
        torch.set_float32_matmul_precision("high")
        torch.backends.cudnn.allow_tf32 = True
    total = cfg.total_steps
    # Data first, so a missing source is named before anything heavy loads: training shards per source,
    # held-out shards for evaluation.
    splits = {n: split_holdout(shard_urls(p, n), cfg.data.holdout_shards) for n, p in cfg.data.sources.items()}
    labels = {n: f"{n} ({p})" for n, p in cfg.data.sources.items()}  # how data errors name a source
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        checkpoint.replace_text(out / "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False,
                                                                    allow_unicode=True))

    # Model, teachers and optimiser. Same init on every rank (DDP also broadcasts rank 0's weights).
    torch.manual_seed(cfg.seed)
    ae = build_model(cfg.model, skip=cfg.arch.skip, decoder_skip=cfg.arch.decoder_skip)
    ae.set_checkpointing(cfg.memory.checkpointing)
    t = cfg.teachers
    lpips = (LPIPS(t.lpips_vgg, t.lpips_heads, t.allow_random_teachers).to(device)
             if any(s.lpips > 0 for s in cfg.stages) else None)
    teacher = (DinoTeacher(t.dinov2, t.dinov2_layer, t.allow_random_teachers, t.dino_resolution).to(device)
               if any(s.align > 0 for s in cfg.stages) else None)
    net = Net(ae, nn.Conv2d(ae.cfg.c, teacher.dim, 1) if teacher else None).to(device, memory_format=fmt)
    ema = copy.deepcopy(net).requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.stages[0].lr, betas=cfg.optim.betas,
                            weight_decay=cfg.optim.weight_decay)
    torch.manual_seed(cfg.seed * 1000 + rank + 1)  # per-rank stream for the loop's own randomness
    state: dict[str, Any] = {"step": 0, "stage": 0, "stage_batches": 0, "mix": {}, "skipped": 0}
    ckpt_dir = out / "ckpt"
    if resume:
        found = checkpoint.resume(ckpt_dir, {"net": net}, {"net": ema}, opt)
        if found is None:
            log.info("no checkpoint in %s: starting at step 0", ckpt_dir)
        else:
            state = {"skipped": 0, **found[1]}
            log.info("resumed from %s (step %d)", found[0], state["step"])
    model = nn.parallel.DistributedDataParallel(net) if world > 1 else net
    fwd = _compiled(model) if cfg.compile else None

    def run_step(micro: list[torch.Tensor], stage: StageConfig) -> tuple[torch.Tensor, dict, torch.Tensor]:
        nonlocal fwd

        def step_with(f: Callable) -> tuple[torch.Tensor, dict, torch.Tensor]:
            return optimizer_step(model, net, opt, micro,
                                  lambda x: micro_loss(f, net.ae, x, stage, lpips, teacher, t, use_amp),
                                  cfg.optim.grad_clip, lr_at(cfg, step))

        if fwd is not None:
            try:
                return step_with(fwd)
            except torch.OutOfMemoryError:
                raise
            except Exception as e:  # compiled lazily, in a step's forward or backward: redo it uncompiled
                log.warning("compile: torch.compile failed (%s); training uncompiled", first_line(e))
                fwd = None
        return step_with(model)

    eval_x = None
    if rank == 0:
        eval_x = eval_images([h for _, h in splits.values()], cfg.eval.num_samples, cfg.eval.resolution,
                             names=[labels[n] for n in splits])
        eval_x = eval_x.to(device).float() / 127.5 - 1
    gt_texts = ocr_texts(eval_x[: cfg.eval.ned_samples]) if rank == 0 and cfg.eval.ned_samples > 0 else []
    writer = _writer(out) if rank == 0 else None
    metrics = _open_metrics(out / "metrics.jsonl") if rank == 0 else None

    step = state["step"]
    stop = min(total, stop_after if stop_after is not None else total)
    if rank == 0 and step == 0:  # the starting point, for "PSNR at start and end"
        xr0 = reconstruct(net.ae, eval_x, use_amp)
        rec0 = {"step": 0, "loss": float((xr0 - eval_x).abs().mean()), "psnr": batch_psnr(xr0, eval_x)}
        if gt_texts:
            rec0["ned"] = ned(gt_texts, xr0)
        metrics.write(json.dumps(rec0) + "\n")
        save_grid(out / "grids" / "step_00000000.png", eval_x, xr0)
    last_log = {}
    t0, s0 = time.time(), step
    while step < stop:
        si, _ = stage_at(cfg, step)
        stage = cfg.stages[si]
        if si != state["stage"]:
            state.update(stage=si, stage_batches=0)
        names = sorted(n for n, w in stage.weights.items() if w > 0)
        mix = state["mix"].setdefault(stage.name, {})
        for n in names:
            mix.setdefault(n, 0)
        sizes = list(stage.buckets) or [(stage.resolution, stage.resolution)]
        bs = micro_batch(cfg, stage)
        ds = MixedBatches([splits[n][0] for n in names], [stage.weights[n] for n in names], bs,
                          sizes, seed=cfg.seed * 100 + si, skip_batches=state["stage_batches"],
                          buffer=cfg.data.shuffle_buffer, names=[labels[n] for n in names], fit=stage.fit)
        end = min(stop, stage_start(cfg, si + 1))
        log.info("stage %d/%d %s: steps %d-%d, sources %s, %d x %d images per step", si + 1, len(cfg.stages),
                 stage.name, step, end, names, stage.grad_accum, bs)
        batches = iter(make_loader(ds, cfg.data.workers, cfg.seed + si, pin=device.type == "cuda"))
        while step < end:
            got = [next(batches) for _ in range(stage.grad_accum)]
            micro = [(b["image"].to(device, non_blocking=True).float() / 127.5 - 1).contiguous(memory_format=fmt)
                     for b in got]
            loss, parts, gnorm = run_step(micro, stage)
            with torch.no_grad():
                for pe, p in zip(ema.parameters(), net.parameters(), strict=True):
                    pe.lerp_(p, 1 - cfg.optim.ema_decay)
            step += 1
            state.update(step=step, stage_batches=state["stage_batches"] + len(got),
                         skipped=state["skipped"] + sum(int(b["skipped"]) for b in got))
            for b in got:
                for k in b["source"].tolist():
                    mix[names[k]] += 1

            if rank == 0 and (step % cfg.log_every == 0 or step == stop or step % cfg.eval.every == 0):
                sps = (step - s0) / max(time.time() - t0, 1e-9)
                n_mix = max(sum(mix.values()), 1)
                rec_ = {"step": step, "stage": stage.name, "loss": float(loss), "lr": lr_at(cfg, step - 1),
                        "grad_norm": float(gnorm), **{k: float(v) for k, v in parts.items()},
                        **{f"mix/{k}": v / n_mix for k, v in mix.items()}, "skipped": state["skipped"],
                        "steps_per_s": sps,
                        "eta_s": (total - step) / max(sps, 1e-9)}
                if step % cfg.eval.every == 0 or step == total:
                    xr_eval = reconstruct(net.ae, eval_x, use_amp)
                    rec_["psnr"] = batch_psnr(xr_eval, eval_x)
                    rec_["psnr_ema"] = batch_psnr(reconstruct(ema.ae, eval_x, use_amp), eval_x)
                    if gt_texts:
                        rec_["ned"] = ned(gt_texts, xr_eval)
                    save_grid(out / "grids" / f"step_{step:08d}.png", eval_x, xr_eval)
                metrics.write(json.dumps(rec_) + "\n")
                metrics.flush()
                if writer is not None:
                    for k, v in rec_.items():
                        if isinstance(v, (int, float)) and k != "step":
                            writer.add_scalar(k, v, step)
                log.info("step %d/%d %s loss %.4f%s  %.2f steps/s  ETA %s", step, total, stage.name,
                         rec_["loss"], f"  psnr {rec_['psnr']:.2f} dB" if "psnr" in rec_ else "", sps,
                         time.strftime("%H:%M:%S", time.gmtime(rec_["eta_s"])))
                last_log = rec_
            if rank == 0 and (step % cfg.ckpt_every == 0 or step == stop):
                checkpoint.save(ckpt_dir, {"net": net}, {"net": ema}, opt, state, to_dict(cfg))
        del batches  # its DataLoader workers end here, not at the next stage
    if rank == 0:
        if writer is not None:
            writer.close()
        metrics.close()
    if world > 1:
        dist.barrier()
        if created:
            dist.destroy_process_group()
    return {"step": step, "total_steps": total, "run_dir": str(out), "loss": last_log.get("loss", math.nan),
            "psnr": last_log.get("psnr"), "mix": state["mix"], "checkpoint": str(checkpoint.latest(ckpt_dir)),
            "weights_sha256": weights_digest(net)}


def _open_metrics(path: Path):
    """metrics.jsonl for appending; a symlink there (a run folder from elsewhere) is not written through."""
    if path.is_symlink():
        raise ValueError(f"{path}: is a symbolic link; the run folder's files are only written in place")
    return path.open("a")


def weights_digest(module: nn.Module) -> str:
    """sha256 of a module's parameters and buffers (names and bytes, in state-dict order): equal on every
    DDP rank after a correct run, and equal across a resumed and an uninterrupted run."""
    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()

