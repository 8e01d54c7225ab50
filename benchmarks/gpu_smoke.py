#!/usr/bin/env python3
"""GPU smoke benchmark (issue 13): the trainer's step speed and memory, a short training's quality, OCR speed.

    python benchmarks/gpu_smoke.py [--general DIR --synthetic DIR] [--json OUT.json] [--device auto|cuda|cpu]

Sections; each prints a table and one JSON line, and everything goes to --json (rewritten after every
setting, so a run cut short keeps what it measured):
a. speed: for each --models x --sizes x activation checkpointing off/on, the trainer's own optimiser step
   (`training.loop.micro_loss` + `optimizer_step` and the EMA update; L1 1, LPIPS 1, alignment 0.5; the
   model built as `train` builds it: channels_last, TF32 and bf16 autocast on CUDA) on random images, with
   real-sized teachers of random weights: LPIPS-VGG16 and a DINOv2-L-shaped DinoTeacher (304 M
   parameters, block 12; --teachers none: L1 only, for quick CPU checks). Batch: --batch images at
   256 px, scaled by (256/px)^2 (at least 1). 2 warm-up steps, then the median of --timing-steps;
   images/s; peak memory (torch.cuda.max_memory_allocated over the timed steps), `static` (allocated
   before them: weights, EMA, AdamW moments, teachers) and per image (peak - static) / batch. An
   out-of-memory setting reads "OOM". On CPU memory is null.
b. train (with --general and --synthetic, WebDataset shard folders): `training.loop.train` on --config with
   one stage of --train-steps at --train-size px (general 0.5 / synthetic 0.5, L1 + LPIPS + alignment,
   random teachers: train() builds its teachers from the config, so the DINOv2 stand-in is the tiny one)
   and an EMA decay that fits the run, 1 - 1/max(10, steps/10). Reports the eval set's PSNR at step 0 and
   at the end (metrics.jsonl), then loads the raw and the EMA weights of the last checkpoint and scores up to
   --ned-images held-out synthetic images: PSNR and NED (the trainer's OCR text, `training.loop.ned`).
   Fewer steps run when the speed section's step time says the requested ones would not fit the budget.
c. ocr: with onnxruntime's CUDA provider, `textinfuse.ocr.page_text` over --ocr-images images (section b's
   held-out images, else bundled backgrounds/) on the CPU (one thread, as the pipelines run it) and on
   cuda: images/s each and the ratio.
--time-budget: checked before every setting; once spent, the remaining ones read "skipped (time budget)".
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from training.config import OptimConfig, StageConfig, TeacherConfig
from training.loop import Net, micro_loss, optimizer_step

ROOT = Path(__file__).resolve().parents[1]
SKIPPED = "skipped (time budget)"
WARMUP_STEPS = 2
STAGE = StageConfig("bench", 1, {"bench": 1.0}, l1=1.0, lpips=1.0, align=0.5)
LR = 1e-4
SPEED_FIELDS = ("step_s", "images_per_s", "peak_gib", "static_gib", "per_image_mib")
TRAIN_MARGIN = 1.5  # the training's step time over the speed section's (data, logging; conservative)
TRAIN_OVERHEAD_S = 60.0  # loader start, evaluation, checkpoint, OCR of the held-out images


class Progress:
    """`setting i/N` lines with the elapsed time, and the --time-budget they are checked against."""

    def __init__(self, total: int, budget_s: float) -> None:
        self.total, self.budget_s, self.i, self.t0 = total, budget_s, 0, time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def left(self) -> float:
        return self.budget_s - self.elapsed()

    def start(self, what: str, fits: bool = True) -> bool:
        """Announce the next setting; False (announced as skipped) once the budget is spent, or when the
        caller knows it does not fit (`fits`)."""
        self.i += 1
        ok = fits and self.left() > 0
        print(f"[setting {self.i}/{self.total}, {self.elapsed():.0f} s elapsed] {what}"
              f"{'' if ok else ': ' + SKIPPED}")
        return ok


class Report:
    """Everything measured, as one JSON object, written atomically to `path` after every change."""

    def __init__(self, path: Path, head: dict) -> None:
        self.path, self.data = path, head
        path.parent.mkdir(parents=True, exist_ok=True)

    def put(self, key: str, value) -> None:
        self.data[key] = value
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps(self.data, indent=1) + "\n")
        os.replace(tmp, self.path)


def pick_device(name: str) -> torch.device:
    """auto: cuda when available, else cpu. On CUDA, TF32 for what autocast leaves in float32, as train() sets."""
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here (torch.cuda.is_available() is False)")
    dev = torch.device("cuda" if name == "cuda" or (name == "auto" and torch.cuda.is_available()) else "cpu")
    if dev.type == "cuda":
        torch.set_float32_matmul_precision("high")
        torch.backends.cudnn.allow_tf32 = True
    return dev


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _free(dev: torch.device) -> None:
    """Hand a finished (or failed) setting's memory back, so the next one starts from the same place."""
    gc.collect()
    if dev.type == "cuda":
        torch.cuda.empty_cache()


def _gib(n: float | None) -> float | None:
    return None if n is None else n / 2**30


# --- a. speed ---------------------------------------------------------------------------------------------

def batch_for(batch256: int, size: int) -> int:
    """Images per step at `size` px: `batch256` at 256 px, scaled by the pixel count (at least 1)."""
    return max(1, batch256 * 256 * 256 // (size * size))


def speed_settings(models: list[str], sizes: list[int]) -> list[tuple[str, int, bool]]:
    return [(m, s, ck) for m in models for s in sizes for ck in (False, True)]


def real_sized_teachers(dev: torch.device):
    """(LPIPS-VGG16, DINOv2-L-shaped DinoTeacher at block 12), random weights: the real teachers' cost."""
    from training.losses import LPIPS, DinoTeacher

    torch.manual_seed(0)
    return (LPIPS(allow_random=True).to(dev),
            DinoTeacher(layer=12, allow_random=True, stand_in="large").to(dev))


def measure(model: str, size: int, batch: int, checkpointing: bool, lpips, teacher, dev: torch.device,
            steps: int) -> dict:
    """One setting: the trainer's step on `batch` random images of size² px, as train() builds and runs it.
    Seconds, images/s and memory (GiB; MiB per image; None on CPU)."""
    from training.models import build_model

    cuda = dev.type == "cuda"
    fmt = torch.channels_last if cuda else torch.contiguous_format
    torch.manual_seed(0)
    ae = build_model(model)
    ae.set_checkpointing(checkpointing)
    net = Net(ae, nn.Conv2d(ae.cfg.c, teacher.dim, 1) if teacher else None).to(dev, memory_format=fmt)
    ema = copy.deepcopy(net).requires_grad_(False)
    o = OptimConfig()
    opt = torch.optim.AdamW(net.parameters(), lr=LR, betas=o.betas, weight_decay=o.weight_decay)
    x = (torch.rand(batch, 3, size, size, device=dev) * 2 - 1).contiguous(memory_format=fmt)
    tcfg = TeacherConfig()

    def step() -> None:
        optimizer_step(net, net, opt, [x], lambda b: micro_loss(net, net.ae, b, STAGE, lpips, teacher, tcfg, cuda),
                       o.grad_clip, LR)
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), net.parameters(), strict=True):
                pe.lerp_(p, 1 - o.ema_decay)

    for _ in range(WARMUP_STEPS):
        step()
    opt.zero_grad(set_to_none=True)  # as each step does first: its gradients count in its peak
    _sync(dev)
    static = peak = None
    if cuda:
        torch.cuda.reset_peak_memory_stats(dev)
        static = torch.cuda.memory_allocated(dev)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        _sync(dev)
        times.append(time.perf_counter() - t)
    if cuda:
        peak = torch.cuda.max_memory_allocated(dev)
    step_s = statistics.median(times)
    return {"step_s": step_s, "images_per_s": batch / step_s, "peak_gib": _gib(peak), "static_gib": _gib(static),
            "per_image_mib": None if peak is None else (peak - static) / batch / 2**20}


def speed_row(model: str, size: int, batch: int, checkpointing: bool, teachers, dev: torch.device,
              steps: int) -> dict:
    """measure() as a table row; an out-of-memory setting becomes status "OOM" and the run goes on."""
    row = {"model": model, "size": size, "batch": batch, "checkpointing": checkpointing}
    try:
        return {**row, "status": "ok", **measure(model, size, batch, checkpointing, *teachers, dev, steps)}
    except torch.OutOfMemoryError:
        pass  # the exception's frames hold the step's tensors: freed once this block is left
    _free(dev)
    return {**row, "status": "OOM", **dict.fromkeys(SPEED_FIELDS)}


def run_speed(a: argparse.Namespace, dev: torch.device, progress: Progress, report: Report) -> list[dict]:
    settings = speed_settings(a.models, a.sizes)
    teachers = real_sized_teachers(dev) if a.teachers == "large" else (None, None)
    rows: list[dict] = []
    for model, size, ck in settings:
        batch = batch_for(a.batch, size)
        what = f"speed {model} {size} px x {batch}, checkpointing {'on' if ck else 'off'}"
        if progress.start(what):
            rows.append(speed_row(model, size, batch, ck, teachers, dev, a.timing_steps))
        else:
            rows.append({"model": model, "size": size, "batch": batch, "checkpointing": ck, "status": SKIPPED,
                         **dict.fromkeys(SPEED_FIELDS)})
        _free(dev)
        report.put("speed", rows)
    return rows


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "on" if v else "off"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def print_table(title: str, rows: list[dict], cols: list[str]) -> None:
    cells = [[_cell(r[c]) for c in cols] for r in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(cols)]
    print(title)
    for line in [cols, *cells]:
        print("  ".join(v.rjust(w) for v, w in zip(line, widths, strict=True)))


# --- b. train ---------------------------------------------------------------------------------------------

def ema_decay_for(steps: int) -> float:
    """An EMA decay that fits a run of `steps`: a horizon of a tenth of the run (at least 10 steps), so the
    final EMA averages the run's late weights instead of mostly the initial ones (0.9999 needs ~10^4 steps)."""
    return 1 - 1 / max(10, steps / 10)


def steps_that_fit(steps: int, step_s: float | None, seconds: float) -> int:
    """The training steps that fit in `seconds` at about `step_s` each (with TRAIN_MARGIN and
    TRAIN_OVERHEAD_S): `steps`, fewer, or 0; `steps` when the step time is unknown."""
    if step_s is None:
        return steps
    return max(0, min(steps, int((seconds - TRAIN_OVERHEAD_S) / (TRAIN_MARGIN * step_s))))


def train_overrides(a: argparse.Namespace, dev: torch.device, steps: int) -> list[str]:
    """--set overrides of the config: one stage, the fitting EMA decay, random teachers, then --set."""
    stage = (f"[{{name: smoke, steps: {steps}, resolution: {a.train_size}, weights: {{general: 0.5, "
             f"synthetic: 0.5}}, l1: 1.0, lpips: 1.0, align: 0.5, lr: 2.0e-4}}]")
    return [f"stages={stage}", f"device={dev.type}", f"optim.ema_decay={ema_decay_for(steps)}",
            f"optim.warmup_steps={max(1, steps // 10)}", f"eval.every={steps}", f"ckpt_every={steps}",
            f"log_every={max(1, steps // 20)}", f"eval.resolution={a.train_size}", "eval.num_samples=16",
            "eval.ned_samples=0", f"data.batch_size={a.batch}", f"data.workers={min(12, os.cpu_count() or 1)}",
            "teachers.allow_random_teachers=true", "teachers.lpips_vgg=", "teachers.lpips_heads=",
            "teachers.dinov2=", *a.set]


def teachers_said(t: TeacherConfig) -> str:
    """What the run's teachers are, in words (random stand-ins make the loss terms' values meaningless)."""
    from training.losses import stand_in_config

    lp = "LPIPS-VGG16 from files" if t.lpips_vgg and t.lpips_heads else "LPIPS: random VGG16 (real size)"
    if t.dinov2:
        return f"{lp}; DINOv2 from {t.dinov2}"
    c = stand_in_config("tiny", t.dinov2_layer)
    return (f"{lp}; alignment: the random TINY DINOv2 stand-in (hidden {c.hidden_size}, {c.num_hidden_layers} "
            "blocks), not DINOv2-L: train() builds its teachers from the config")


def this_run(metrics: Path) -> list[dict]:
    """metrics.jsonl's records of the latest run in the folder (from its last step-0 record on)."""
    recs = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    return recs[max(i for i, r in enumerate(recs) if r["step"] == 0):]


def held_out_text(cfg, synthetic: str, n: int, size: int, dev: torch.device) -> torch.Tensor:
    """Up to n held-out synthetic images (the shards train() kept out), float [-1, 1] on dev."""
    from training.data import eval_images, shard_urls, split_holdout

    held = split_holdout(shard_urls(synthetic, "synthetic"), cfg.data.holdout_shards)[1]
    return eval_images([held], n, size, names=["synthetic"]).to(dev).float() / 127.5 - 1


def score_weights(ckpt: str, use_ema: bool, x: torch.Tensor, gt: list[str], dev: torch.device) -> dict:
    """PSNR and NED on x of a checkpoint's raw or EMA weights."""
    from training.inference import load_module
    from training.loop import batch_psnr, ned, reconstruct

    ae = load_module(ckpt, use_ema=use_ema, device=str(dev))
    xr = reconstruct(ae, x, dev.type == "cuda")
    return {"psnr": batch_psnr(xr, x), "ned": ned(gt, xr)}


def run_train(a: argparse.Namespace, dev: torch.device, progress: Progress, speed: list[dict]) -> tuple[dict, list]:
    """Section b: (results, the held-out images as uint8 HWC arrays for section c)."""
    from training.config import load_train_config
    from training.loop import ocr_texts, train

    sources = [f"general={a.general}", f"synthetic={a.synthetic}"]
    cfg = load_train_config(a.config, train_overrides(a, dev, a.train_steps), sources)
    setting = (cfg.model, a.train_size, cfg.data.batch_size, cfg.memory.checkpointing)
    known = [r["step_s"] for r in speed
             if r["status"] == "ok" and (r["model"], r["size"], r["batch"], r["checkpointing"]) == setting]
    steps = steps_that_fit(a.train_steps, known[0] if known else None, progress.left())
    if not progress.start(f"train {cfg.model}, {steps} steps at {a.train_size} px", fits=steps > 0):
        return {"skipped": SKIPPED}, []
    if steps < a.train_steps:
        print(f"train: {a.train_steps} steps would not fit the time budget; running {steps}")
        cfg = load_train_config(a.config, train_overrides(a, dev, steps), sources)
    print(f"train: EMA decay {cfg.optim.ema_decay:.4f} (1 - 1/max(10, steps/10)); batch {cfg.data.batch_size}; "
          f"teachers: {teachers_said(cfg.teachers)}")
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    t = time.monotonic()
    summary = train(cfg, a.out)
    wall = time.monotonic() - t
    recs = this_run(Path(a.out) / "metrics.jsonl")
    end = [r for r in recs if "psnr_ema" in r][-1]
    x = held_out_text(cfg, a.synthetic, a.ned_images, a.train_size, dev)
    gt = ocr_texts(x)
    res = {"model": cfg.model, "steps": summary["step"], "steps_requested": a.train_steps, "size": a.train_size,
           "batch": cfg.data.batch_size,
           "ema_decay": cfg.optim.ema_decay, "teachers": teachers_said(cfg.teachers), "wall_s": wall,
           "steps_per_s": recs[-1].get("steps_per_s"),
           "peak_gib": _gib(torch.cuda.max_memory_allocated(dev)) if dev.type == "cuda" else None,
           "eval_psnr_step0": recs[0]["psnr"], "eval_psnr_end_raw": end["psnr"], "eval_psnr_end_ema": end["psnr_ema"],
           "text_images": len(x), "text_with_ocr": sum(1 for g in gt if g),
           "raw": score_weights(summary["checkpoint"], False, x, gt, dev),
           "ema": score_weights(summary["checkpoint"], True, x, gt, dev), "run_dir": str(a.out)}
    imgs = list(((x + 1) * 127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1).cpu().numpy())
    return res, imgs


def print_train(r: dict) -> None:
    if "skipped" in r:
        print(f"train: {r['skipped']}")
        return
    mem = "" if r["peak_gib"] is None else f", peak {r['peak_gib']:.2f} GiB"
    print(f"train: {r['model']} {r['steps']} steps at {r['size']} px x {r['batch']} in {r['wall_s']:.0f} s "
          f"({_cell(r['steps_per_s'])} steps/s{mem}), EMA decay {r['ema_decay']:.4f}")
    print(f"  eval set PSNR (metrics.jsonl): step 0 {r['eval_psnr_step0']:.2f} dB, end raw "
          f"{r['eval_psnr_end_raw']:.2f} dB, end EMA {r['eval_psnr_end_ema']:.2f} dB")
    print_table(f"  {r['text_images']} held-out synthetic images ({r['text_with_ocr']} with OCR text):",
                [{"weights": k, **r[k]} for k in ("raw", "ema")], ["weights", "psnr", "ned"])
    print(f"  teachers: {r['teachers']}")


# --- c. OCR ------------------------------------------------------------------------------------------------

def no_cuda_ocr() -> str | None:
    """Why OCR cannot run on the GPU here, or None when onnxruntime has its CUDA provider."""
    try:
        import onnxruntime
    except ImportError:
        return "OCR on GPU skipped: onnxruntime is not installed (pip install 'textinfuse[ocr]')"
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        return "OCR on GPU skipped: no CUDA provider (install onnxruntime-gpu)"
    return None


def background_images(n: int, size: int = 256) -> list[np.ndarray]:
    """Up to n bundled photos (backgrounds/), each shrunk to cover size² and centre-cropped."""
    from PIL import Image

    from training.data import resize_crop

    files = sorted((ROOT / "backgrounds").glob("*.jpg"))[:n]
    return [resize_crop(np.asarray(Image.open(f).convert("RGB")), (size, size), None) for f in files]


def ocr_rate(device: str, images: list[np.ndarray]) -> dict:
    """page_text over `images` on `device` after one warm-up image (the engine's session starts there);
    an engine that fails is reported as {"error": ...}, not raised: the other sections' results stand."""
    from textinfuse import ocr
    from training.safeio import first_line

    try:
        ocr.set_device(device)
        ocr.page_text(images[0])
    except Exception as e:  # onnxruntime's CUDA libraries missing or mismatched, among others
        return {"error": first_line(e)}
    t = time.perf_counter()
    for im in images:
        ocr.page_text(im)
    dt = time.perf_counter() - t
    return {"images": len(images), "seconds": dt, "images_per_s": len(images) / dt}


def run_ocr(n: int, images: list[np.ndarray], progress: Progress, report: Report) -> dict:
    from textinfuse import ocr

    source = "held-out synthetic images" if images else "bundled backgrounds"
    pool = images or background_images(n)
    images = [pool[i % len(pool)] for i in range(n)]
    res: dict = {"source": source}
    before = ocr.device()
    try:
        for dev in ("cpu", "cuda"):
            ok = progress.start(f"ocr on {dev}: {n} {source}")
            res[dev] = ocr_rate(dev, images) if ok else {"skipped": SKIPPED}
            report.put("ocr", res)
    finally:
        ocr.set_device(before)
    if "images_per_s" in res["cpu"] and "images_per_s" in res["cuda"]:
        res["cuda_over_cpu"] = res["cuda"]["images_per_s"] / res["cpu"]["images_per_s"]
    return res


def print_ocr(r: dict) -> None:
    if "skipped" in r:
        print(r["skipped"])
        return
    rows = [{"device": d, "images_per_s": r[d].get("images_per_s"),
             "status": r[d].get("skipped") or r[d].get("error") or "ok"} for d in ("cpu", "cuda")]
    print_table(f"OCR (page_text) on {r['source']}; the CPU engine uses one thread:", rows,
                ["device", "status", "images_per_s"])
    if "cuda_over_cpu" in r:
        print(f"  cuda / cpu: {r['cuda_over_cpu']:.2f}x")


# --- main --------------------------------------------------------------------------------------------------

def _csv(text: str) -> list[str]:
    return [v for v in text.split(",") if v]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    ap.add_argument("--models", type=_csv, default=["f16c64", "f32c192"], help="comma list (training/models.py)")
    ap.add_argument("--sizes", type=lambda t: [int(v) for v in _csv(t)], default=[256, 512, 1024],
                    help="comma list of square image sides in px")
    ap.add_argument("--batch", type=int, default=16, help="images per step at 256 px (scaled by pixel count)")
    ap.add_argument("--timing-steps", type=int, default=5, help="timed steps per setting, after 2 warm-up ones")
    ap.add_argument("--teachers", choices=("large", "none"), default="large",
                    help="speed section: real-sized random teachers, or none (L1 only; quick CPU checks)")
    ap.add_argument("--general", help="general-image shard folder (section b)")
    ap.add_argument("--synthetic", help="synthetic-text shard folder (section b)")
    ap.add_argument("--config", default="configs/train/f16c64.yaml", help="training config of section b")
    ap.add_argument("--train-steps", type=int, default=1500)
    ap.add_argument("--train-size", type=int, default=256, help="training and evaluation crop side in px")
    ap.add_argument("--ned-images", type=int, default=16, help="held-out synthetic images scored for NED")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="training config override after the benchmark's own (e.g. teachers.dinov2=DIR)")
    ap.add_argument("--ocr-images", type=int, default=32)
    ap.add_argument("--out", default="runs/gpu-smoke", help="run folder of section b")
    ap.add_argument("--json", help="results file (default: OUT/gpu_smoke.json)")
    ap.add_argument("--time-budget", type=float, default=480.0, help="seconds; later settings are skipped")
    for s in ("speed", "train", "ocr"):
        ap.add_argument(f"--skip-{s}", action="store_true")
    a = ap.parse_args(argv)
    if a.batch < 1 or a.timing_steps < 1 or a.train_steps < 1 or a.ocr_images < 1:
        ap.error("--batch, --timing-steps, --train-steps and --ocr-images must be >= 1")
    if bool(a.general) != bool(a.synthetic):
        ap.error("section b needs both --general and --synthetic")
    return a


def main(argv: list[str] | None = None) -> None:
    a = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    dev = pick_device(a.device)
    train_skip = "--skip-train" if a.skip_train else None if a.general else "no --general/--synthetic given"
    ocr_skip = "--skip-ocr" if a.skip_ocr else no_cuda_ocr()
    n_speed = 0 if a.skip_speed else len(speed_settings(a.models, a.sizes))
    progress = Progress(n_speed + (train_skip is None) + 2 * (ocr_skip is None), a.time_budget)
    report = Report(Path(a.json or Path(a.out) / "gpu_smoke.json"),
                    {"device": str(dev), "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
                     "torch": torch.__version__, "time_budget_s": a.time_budget, "args": vars(a)})
    print(f"gpu_smoke on {report.data['gpu'] or dev}, torch {torch.__version__}, budget {a.time_budget:.0f} s")

    speed = [] if a.skip_speed else run_speed(a, dev, progress, report)
    if speed:
        teach = "LPIPS-VGG16 + DINOv2-L-shaped teacher (random weights)" if a.teachers == "large" else "no teachers"
        print_table(f"speed: trainer step, {teach}; median of {a.timing_steps} after {WARMUP_STEPS} warm-up",
                    speed, ["model", "size", "batch", "checkpointing", "status", *SPEED_FIELDS])
        print(json.dumps({"speed": speed}))

    train_res, images = ({"skipped": train_skip}, []) if train_skip else run_train(a, dev, progress, speed)
    report.put("train", train_res)
    print_train(train_res)
    print(json.dumps({"train": train_res}))

    ocr_res = {"skipped": ocr_skip} if ocr_skip else run_ocr(a.ocr_images, images, progress, report)
    report.put("ocr", ocr_res)
    print_ocr(ocr_res)
    print(json.dumps({"ocr": ocr_res}))
    report.put("elapsed_s", progress.elapsed())
    print(f"done in {progress.elapsed():.0f} s; results: {report.path}")


if __name__ == "__main__":
    main()
