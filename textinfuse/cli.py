"""The `textinfuse` console script, and the project's only argparse. It parses arguments and calls typed
functions (the Python API): pipelines (render, filter, verify, report, preview), evaluation (eval,
bench-build), training (train, latent-stats, export) and ablation (ablate). Each subcommand imports its
packages when it runs, so building the parser (`textinfuse --help`) imports no torch, Ray, evaluation,
training or pipelines code. This is the top of the layers (see evaluation/__init__.py): it may import any
package, and it wires them together, e.g. the VAE and the LPIPS/FID networks that `eval` hands to the
evaluation."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from .configio import ConfigError


def _char_px_range(text: str) -> list[int]:
    """--char-px: "5-20" -> [5, 20], "12" -> [12, 12] (checked by the render config)."""
    a, _, b = text.partition("-")
    return [int(a), int(b or a)]


def _count_range(text: str) -> list[int]:
    """"200-600" or "200,600" -> [200, 600] (an argparse type: both bounds required)."""
    parts = text.replace(",", "-").split("-")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r}: expected MIN-MAX, e.g. 200-600")
    return [int(p) for p in parts]


def _positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n}: must be at least 1")
    return n


def _size(text: str) -> list[int]:
    w, _, h = text.lower().partition("x")
    return [int(w), int(h or w)]


def render_overrides(a: argparse.Namespace) -> list[str]:
    """Turn the render flags into `--set` style overrides (flags win over the config file)."""
    import json

    o = []
    if a.num_samples is not None:
        o.append(f"num_samples={a.num_samples}")
    if a.seed is not None:
        o.append(f"seed={a.seed}")
    if a.size:
        w, h = _size(a.size)
        o += [f"render.width={w}", f"render.height={h}"]
    if a.langs:
        o.append(f"render.text.langs={json.dumps(a.langs.split(','))}")
    if a.char_px:
        o.append(f"render.text.char_px={json.dumps(_char_px_range(a.char_px))}")
    if a.level:
        from render_engine.levels import parse_levels

        o.append(f"render.levels={json.dumps(parse_levels(a.level))}")
    if a.backgrounds:
        o.append(f"render.backgrounds.sources={json.dumps(a.backgrounds)}")
    if a.fonts:
        o.append(f"render.fonts.dirs={json.dumps(a.fonts)}")
    if a.legibility:
        o.append(f"render.fonts.legibility={json.dumps(a.legibility)}")
    if a.format:
        o.append(f"output.format={a.format}")
    if a.samples_per_shard is not None:
        o.append(f"output.samples_per_shard={a.samples_per_shard}")
    return o + list(a.set or [])


def cmd_render(a: argparse.Namespace) -> int:
    from pipelines.render_job import RenderJobConfig, run_render

    from .configio import load

    base = None
    if a.recipe:
        from pipelines.recipes import load_recipe

        base = load_recipe(a.recipe)
    job = load(RenderJobConfig, a.config, render_overrides(a), base=base)
    manifest = run_job(a, lambda ex: run_render(job, a.out, overwrite=a.overwrite, executor=ex))
    t = manifest["totals"]
    print(f"{t['samples']} samples in {t['shards']} shards, {t['chars']} characters, "
          f"{t['dropped_chars']} dropped for lack of glyphs -> {a.out}")
    return _failed(manifest)


def _failed(manifest: dict) -> int:
    """Exit status 1, with one line, when shards failed (listed in the manifest); 0 otherwise."""
    f = manifest["failed_shards"]
    if f:
        print(f"error: {len(f)} shard(s) failed, listed in manifest.json (shard {f[0]['shard']}: {f[0]['reason']}); "
              "run the same command again to redo them", file=sys.stderr)
    return 1 if f else 0


def cmd_preview(a: argparse.Namespace) -> int:
    from pipelines.preview import preview

    n = preview(a.dir, a.out, num=a.num, boxes=a.boxes, cols=a.cols)
    print(f"{n} samples -> {a.out}")
    return 0


def cmd_filter(a: argparse.Namespace) -> int:
    import json

    from pipelines.filter_job import FilterConfig, run_filter

    from .configio import load

    cfg = load(FilterConfig, a.config, a.set or [])
    inputs = a.input
    if a.rescore and not inputs:
        inputs = json.loads((Path(a.rescore) / "manifest.json").read_text())["inputs"]
    if not inputs:
        print("error: give --input PATH... (or --rescore DIR)", file=sys.stderr)
        return 2
    man = run_job(a, lambda ex: run_filter(inputs, cfg, a.out, executor=ex, rescore_from=a.rescore,
                                           overwrite=a.overwrite))
    t = man["totals"]
    print(f"{t['kept']} of {t['inputs']} images kept -> {a.out}; " + ", ".join(f"{k} {v}" for k, v in t["reasons"].items()))
    return _failed(man)


def cmd_calibrate(a: argparse.Namespace) -> int:
    from pipelines.calibrate import CalibrateConfig, run_calibrate

    from .configio import load

    sets = [f"{k}={v}" for k, v in (("samples_per_cell", a.samples_per_cell),
                                    ("samples_per_level", a.samples_per_level)) if v is not None]
    cfg = load(CalibrateConfig, a.config, sets + list(a.set or []))
    doc = run_job(a, lambda ex: run_calibrate(cfg, a.out, executor=ex, overwrite=a.overwrite))
    for row in doc.get("levels", []):
        print(f"level {row['level']} ({row['name']}): " + ", ".join(
            f"{lang} {row[lang]['mean']:.3f}" for lang in cfg.langs if row.get(lang) and row[lang].get("mean") is not None))
    print(f"-> {a.out}/calibration.json, calibration.html, levels.png")
    return 0


def cmd_filter_report(a: argparse.Namespace) -> int:
    from pipelines.filter_report import filter_report

    t = filter_report(a.dir, a.out)
    print(f"report of {t['inputs']} scored images ({t['kept']} kept) -> {a.out}")
    return 0


def cmd_verify(a: argparse.Namespace) -> int:
    from pipelines.verify import verify

    r = verify(a.dir)
    for path, why in r.problems:
        print(f"{path}: {why}")
    print(f"{r.checked} shards, {r.samples} samples checked; {len(r.problems)} problem(s)")
    return 0 if r.ok else 1


def cmd_report(a: argparse.Namespace) -> int:
    from pipelines.report import report

    t = report(a.dir, a.out)
    print(f"report of {t['samples']} samples -> {a.out}")
    return 0


def cmd_ablate(a: argparse.Namespace) -> int:
    from ablation.config import load_ablation
    from ablation.run import run_ablation
    from pipelines.executors import make_executor

    cfg = load_ablation(a.config, a.set or [])
    arms = [x for x in a.arms.split(",") if x] if a.arms else None
    try:
        res = run_ablation(cfg, a.out, arms=arms, seeds=a.seeds, eval_gt=a.eval_gt, resume=a.resume,
                           executor_factory=lambda: make_executor(a.executor, a.workers, a.address))
    except KeyboardInterrupt:
        print(f"interrupted: finished runs are kept in {a.out}; add --resume to continue", file=sys.stderr)
        raise SystemExit(130) from None
    for name, r in res["arms"].items():
        ned = "-" if r.get("NED") is None else f"{r['NED']:.3f}"
        psnr = "-" if r.get("PSNR_photos") is None else f"{r['PSNR_photos']:.2f}"
        print(f"{name}: NED {ned}, photo PSNR {psnr} dB ({len(r['seeds'])} seed(s), {r['steps']} steps)")
    print(f"-> {a.out}/results.json, results.md, grid.png")
    return 0


# --- evaluation: eval, bench-build -------------------------------------------------------------------------

# evaluation.references.REFERENCES, not imported: building the parser imports no evaluation code
# (tests/test_layers.py checks that the two agree)
REFERENCES = ("identity", "bicubic8", "bicubic16", "bicubic32")


def _checkpoint_model(path: str):
    """`--checkpoint`: our VAE's reconstruction callable (training.inference, the train extra)."""
    if not Path(path).exists():
        raise FileNotFoundError(2, "not found", path)
    try:
        from training.inference import load_reconstructor
    except ImportError as e:
        raise RuntimeError(f"--checkpoint {path}: needs the training extra (pip install 'textinfuse[train]') "
                           f"({e}); meanwhile use --model-fn module:function") from e
    return load_reconstructor(path)


def cmd_eval(a: argparse.Namespace) -> int:
    import json

    from evaluation.evaluate import evaluate, load_optional
    from training import eval_hooks  # torch is imported only when a network is built

    if not Path(a.gt_dir).is_dir():  # before any network is loaded
        raise FileNotFoundError(2, "not found", a.gt_dir)
    model_fn = _checkpoint_model(a.checkpoint) if a.checkpoint else a.model_fn
    lpips, lpips_reason = load_optional("LPIPS", a.lpips_weights, eval_hooks.lpips_scorer)
    fid, fid_reason = load_optional("FID", a.fid_weights, lambda w: eval_hooks.fid_extractor(w, a.batch_size))
    r = evaluate(a.gt_dir, a.out, a.recon_dir, reference=a.reference, model_fn=model_fn, checkpoint=a.checkpoint,
                 lpips=lpips, lpips_reason=lpips_reason, fid_features=fid, fid_reason=fid_reason,
                 worst=a.worst, batch_size=a.batch_size, use_cache=not a.no_cache, workers=a.workers,
                 ned_text=a.ned_text)
    print(json.dumps(r, indent=2))
    return 0 if r["SSIM"] is not None else 1  # SSIM exists once any pair was scored


def cmd_bench_build(a: argparse.Namespace) -> int:
    import json

    from evaluation.bench_build import BenchConfig, build_benchmark

    from .configio import load

    flags = {"lang": a.lang, "crop": a.crop, "stride": a.stride or a.crop, "zh_char_px": a.zh_char_px,
             "en_char_px": a.en_char_px, "zh_chars": a.zh_chars, "en_chars": a.en_chars}
    sets = [f"{k}={json.dumps(v)}" for k, v in flags.items() if v is not None]
    cfg = load(BenchConfig, a.config, sets + list(a.set or []))
    rows = build_benchmark(a.input, a.out, cfg)
    print(f"{len(rows)} crops -> {a.out}/benchmark.jsonl")
    return 0 if rows else 1


# --- training: train, latent-stats, export -----------------------------------------------------------------

def _needs_torch() -> int | None:
    """Exit status 2 with one line when the train extra is missing, else None."""
    try:
        import safetensors  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        print(f"error: this command needs the train extra ({e.name} missing): pip install 'textinfuse[train]'",
              file=sys.stderr)
        return 2
    return None


def cmd_train(a: argparse.Namespace) -> int:
    import json

    from training.config import load_train_config

    try:
        cfg = load_train_config(a.config, a.set, a.source)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        from training.loop import train
    except ImportError as e:
        print(f"error: training needs the train extra ({e.name} missing): pip install 'textinfuse[train]'",
              file=sys.stderr)
        return 2
    if not logging.getLogger().handlers:  # called without main() (the Python API's callers)
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        summary = train(cfg, a.out, resume=a.resume)
    except KeyboardInterrupt:
        print(f"interrupted: run again with --resume to continue from {a.out}/ckpt", file=sys.stderr)
        return 130
    print(json.dumps({k: summary[k] for k in ("step", "loss", "psnr", "checkpoint")}))
    return 0


def cmd_latent_stats(a: argparse.Namespace) -> int:
    if (rc := _needs_torch()) is not None:
        return rc
    from training.latents import latent_stats

    s = latent_stats(a.run_dir, a.source, num=a.num, resolution=a.resolution, checkpoint=a.checkpoint,
                     use_ema=not a.raw, batch_size=a.batch_size)
    print(f"latent stats of {s['samples']} images ({s['weights']} weights, step {s['checkpoint_step']}): "
          f"mean {min(s['mean']):.3g}..{max(s['mean']):.3g}, std {min(s['std']):.3g}..{max(s['std']):.3g} "
          f"-> {a.run_dir}/latent_stats.json")
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    if (rc := _needs_torch()) is not None:
        return rc
    from training.export import export

    c = export(a.run_dir, a.out, use_ema=not a.raw)
    print(f"{c['model']} ({c['weights']} weights, step {c['step']}) -> {a.out}")
    return 0


def add_config_flags(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--config", help=what)
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any config value, repeatable")


def add_executor_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executor", choices=["ray", "local"], default="ray",
                   help="ray (default: a local Ray, or the cluster at --address) or local (in-process)")
    p.add_argument("--workers", type=_positive, help="CPUs for a local Ray (default: all cores)")
    p.add_argument("--address", help="existing Ray cluster (default: $RAY_ADDRESS, else start a local Ray)")


def add_ocr_device_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ocr-device", metavar="DEVICE", help="run OCR on cpu (default), cuda or cuda:N "
                   "(needs onnxruntime-gpu; refused with an error when its CUDA provider is missing)")


def run_job(a: argparse.Namespace, job):
    """Run `job(executor)` on the executor the flags ask for; Ctrl-C keeps what is done (exit 130)."""
    from pipelines.executors import make_executor

    executor = make_executor(a.executor, a.workers, a.address)
    try:
        return job(executor)
    except KeyboardInterrupt:
        print(f"interrupted: finished shards are kept in {a.out}; run the same command again to resume",
              file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        executor.close()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="textinfuse", description="Synthetic text-rendering data engine.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--log-file", help="also write log lines (progress included) to this file")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("render", help="render WebDataset shards of text on natural images")
    r.add_argument("--out", required=True, help="output folder (shards, stats, manifest.json)")
    r.add_argument("--num-samples", type=int, help="samples to render (default 1000)")
    r.add_argument("--seed", type=int, help="run seed (default 0)")
    r.add_argument("--size", help="canvas size: 256 or WxH (default 256)")
    r.add_argument("--langs", help="comma list of en, zh, mixed (default en,zh)")
    r.add_argument("--char-px", help="em size range in px, e.g. 5-20 (default 5-20)")
    r.add_argument("--level", help="difficulty levels by number or name (easy, moderate, medium, challenging, hard): "
                   "3, 2-4, easy-medium, 1,5 (default 1-5)")
    r.add_argument("--backgrounds", nargs="+", help="image folders, globs, files or .tar shards")
    r.add_argument("--fonts", nargs="+", help="font folders or files (added to the bundled fonts)")
    r.add_argument("--legibility", help="legibility.json of a `calibrate` run for --fonts faces (default: the "
                   "bundled faces' table; 'none' turns the per-face size guard off)")
    r.add_argument("--format", choices=["png", "jpg", "webp"], help="image format (default png)")
    r.add_argument("--samples-per-shard", type=int, help="samples per tar (default 1000)")
    r.add_argument("--recipe", help="start from a named recipe (f16, f32, en, zh, mixed, benchmark-like) or a YAML path")
    add_config_flags(r, "YAML/TOML job config over the recipe (flags override both)")
    r.add_argument("--overwrite", action="store_true",
                   help="replace the outputs of another run in --out (other config, seed or sample count)")
    add_executor_flags(r)
    r.set_defaults(func=cmd_render)

    v = sub.add_parser("preview", help="contact sheet of rendered samples")
    v.add_argument("dir", help="folder of shards")
    v.add_argument("--out", required=True, help="PNG to write")
    v.add_argument("--num", type=int, default=24, help="samples to show (default 24)")
    v.add_argument("--cols", type=int, default=6, help="grid columns (default 6)")
    v.add_argument("--boxes", action="store_true", help="draw line (red) and character (green) boxes")
    v.set_defaults(func=cmd_preview)

    f = sub.add_parser("filter", help="keep sharp, text-rich real images (validity, clarity, OCR text density)")
    f.add_argument("--input", nargs="+", action="extend", help="image folders, globs, list files (.txt) or WebDataset tars (repeat the flag or list several)")
    f.add_argument("--out", required=True, help="output folder (kept shards, scores.jsonl, manifest.json)")
    add_config_flags(f, "YAML/TOML FilterConfig (thresholds)")
    f.add_argument("--rescore", metavar="DIR", help="re-apply thresholds to DIR's recorded scores (inputs from DIR)")
    f.add_argument("--overwrite", action="store_true",
                   help="replace the outputs of another filter run in --out (other inputs or thresholds)")
    add_executor_flags(f)
    add_ocr_device_flag(f)
    f.set_defaults(func=cmd_filter)

    ca = sub.add_parser("calibrate", help="measure readability (OCR character F1) per level and per font x size "
                                          "x script x effect -> calibration.json, calibration.html")
    ca.add_argument("--out", required=True, help="output folder (calibration.json, calibration.html, levels.png)")
    ca.add_argument("--samples-per-cell", type=int, help="samples per font x size x script x effect (default 6; 0 skips)")
    ca.add_argument("--samples-per-level", type=int, help="samples per level and language (default 40; 0 skips)")
    add_config_flags(ca, "YAML/TOML CalibrateConfig (faces, sizes, effects, bands, render)")
    ca.add_argument("--overwrite", action="store_true", help="measure again over a calibration of another config")
    add_executor_flags(ca)
    ca.set_defaults(func=cmd_calibrate)

    fr = sub.add_parser("filter-report", help="HTML: score histograms with thresholds, examples near each")
    fr.add_argument("dir", help="a filter output folder")
    fr.add_argument("--out", required=True, help="HTML file to write")
    fr.set_defaults(func=cmd_filter_report)

    c = sub.add_parser("verify", help="check every shard of a render or filter folder against its stats and the "
                                      "manifest (sha256, sizes, sample counts); exit 1 on any problem")
    c.add_argument("dir", help="folder of shards")
    c.set_defaults(func=cmd_verify)

    h = sub.add_parser("report", help="self-contained HTML report of a rendered dataset")
    h.add_argument("dir", help="folder of shards")
    h.add_argument("--out", required=True, help="HTML file to write")
    h.set_defaults(func=cmd_report)

    ab = sub.add_parser("ablate", help="train the same autoencoder on each arm's data (general photos, real text, "
                                       "plain text, TextInfuse text) and compare text fidelity on real documents")
    ab.add_argument("--config", required=True, help="ablation config, e.g. configs/ablation/cpu.yaml")
    ab.add_argument("--out", required=True, help="output folder (data/, runs/, results.json, results.md, grid.png)")
    ab.add_argument("--arms", help="comma list of the config's arms to run (default: its run_arms, else all)")
    ab.add_argument("--seeds", type=_positive, help="training seeds per arm (default: the config's `seeds`)")
    ab.add_argument("--eval-gt", nargs="+", metavar="DIR", help="folders of real text images evaluated instead of "
                    "the config's eval.text")
    ab.add_argument("--resume", action="store_true", help="continue an ablation in --out (finished runs are kept)")
    ab.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any config value, repeatable")
    add_executor_flags(ab)
    ab.set_defaults(func=cmd_ablate)

    add_eval_parsers(sub)
    add_train_parsers(sub)
    return p


def add_eval_parsers(sub) -> None:
    """`eval` and `bench-build`."""
    from .ocr import DEFAULT_NED_TEXT, NED_TEXTS  # a base module: numpy, the OCR engine only when it reads

    e = sub.add_parser("eval", help="OCR-based text fidelity (NED), PSNR, SSIM of reconstructions "
                                    "(OmniDoc-TokenBench layout and results.json)")
    e.add_argument("--gt-dir", required=True, help="folder of original images")
    e.add_argument("--out", required=True, help="output folder (results.json, ned_details.json, details.jsonl, "
                   "report.json, worst.png)")
    src = e.add_mutually_exclusive_group(required=True)
    src.add_argument("--recon-dir", help="folder of reconstructions named like the originals")
    src.add_argument("--reference", choices=REFERENCES, help="built-in reference row (no recon dir)")
    src.add_argument("--model-fn", metavar="MODULE:FUNCTION",
                     help="callable mapping a float32 batch (N,H,W,3) in [0,1] to reconstructions")
    src.add_argument("--checkpoint", help="our VAE checkpoint (needs the training extra)")
    e.add_argument("--lpips-weights", help="local LPIPS weights (without them LPIPS is null)")
    e.add_argument("--fid-weights", help="local FID Inception weights, pytorch-fid's pt_inception-2015-12-05-*.pth "
                   "(without them FID is null; needs the train extra)")
    e.add_argument("--worst", type=int, default=12, help="rows in worst.png (default 12)")
    e.add_argument("--batch-size", type=int, default=8, help="images per model call (default 8)")
    e.add_argument("--ned-text", choices=NED_TEXTS, default=DEFAULT_NED_TEXT,
                   help="the OCR text NED compares: engine (default, OmniDoc-TokenBench's: the engine's lines "
                   "joined in its order, whitespace kept) or normalised (reading order, all whitespace removed)")
    e.add_argument("--no-cache", action="store_true", help="do not read or write the ground-truth OCR cache")
    e.add_argument("--workers", type=int, default=1, help="processes for OCR and per-image metrics (default 1; "
                   "the model, LPIPS and FID stay in the main process)")
    add_ocr_device_flag(e)
    e.set_defaults(func=cmd_eval)

    b = sub.add_parser("bench-build", help="build a 256x256 text-crop benchmark from your PDFs or page images")
    b.add_argument("--input", nargs="+", action="extend", required=True, help="PDF files, page images or folders of them")
    b.add_argument("--out", required=True, help="output folder (PNG crops, benchmark.jsonl)")
    b.add_argument("--lang", choices=["auto", "en", "zh"], help="document language (default auto)")
    b.add_argument("--crop", type=int, help="crop side in px (default 256)")
    b.add_argument("--stride", type=int, help="step between crops in a text block (default: the crop side)")
    b.add_argument("--zh-char-px", type=float, help="Chinese character size (the em) pages are scaled to (default 16)")
    b.add_argument("--en-char-px", type=float, help="English character size (cap height) pages are scaled to (default 10)")
    b.add_argument("--zh-chars", type=_count_range, metavar="MIN-MAX", help="OCR characters a Chinese crop must hold "
                   "(default 200-600; real pages at 16 px hold 150-180 per 256 px crop: try 14 px or 150-600)")
    b.add_argument("--en-chars", type=_count_range, metavar="MIN-MAX", help="the same for English (default 300-600)")
    b.add_argument("--config", help="bench-build config file (YAML/TOML, keys of evaluation.bench_build.BenchConfig)")
    b.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any config value, repeatable")
    add_ocr_device_flag(b)
    b.set_defaults(func=cmd_bench_build)


def add_train_parsers(sub) -> None:
    """`train`, `latent-stats` and `export` (torch is imported when they run, never here)."""
    p = sub.add_parser("train", help="train an autoencoder on TextInfuse shards (needs the train extra)",
                       description="Train a text-capable autoencoder; see configs/train/*.yaml.")
    p.add_argument("--config", metavar="PATH", required=True, help="training config (YAML/TOML)")
    p.add_argument("--source", metavar="NAME=DIR", action="append", default=[],
                   help="shard folder of a source named in the stages' weights (repeatable)")
    p.add_argument("--out", metavar="RUN_DIR", required=True, help="run folder (config, metrics, checkpoints)")
    p.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                   help="override a config value, e.g. data.batch_size=16 (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR's latest checkpoint")
    p.set_defaults(func=cmd_train)

    s = sub.add_parser("latent-stats", help="per-channel mean/std of a run's latents -> RUN_DIR/latent_stats.json",
                       description="Encode images with a run's latest checkpoint and write the per-channel latent "
                                   "mean and std that load_autoencoder uses to normalise latents.")
    s.add_argument("run_dir", metavar="RUN_DIR", help="run folder (or export folder) to write latent_stats.json to")
    s.add_argument("--source", metavar="DIR", required=True,
                   help="shard folder (or .tar glob) or a folder of image files")
    s.add_argument("--num", type=_positive, default=256, help="images to encode (default 256)")
    s.add_argument("--resolution", type=_positive, default=256,
                   help="side of the centre crops in px, a multiple of the model's f (default 256)")
    s.add_argument("--checkpoint", metavar="PATH", help="a step folder or weights file instead of the latest")
    s.add_argument("--raw", action="store_true", help="the raw weights instead of the EMA weights")
    s.add_argument("--batch-size", type=_positive, default=16, help="images per forward pass (default 16)")
    s.set_defaults(func=cmd_latent_stats)

    e = sub.add_parser("export", help="a run's autoencoder as a self-describing folder (config.json, "
                                      "model.safetensors, latent_stats.json)")
    e.add_argument("run_dir", metavar="RUN_DIR", help="run folder (its latest checkpoint) or a ckpt/step_N folder")
    e.add_argument("--out", metavar="DIR", required=True, help="export folder (an earlier export there is replaced)")
    e.add_argument("--raw", action="store_true", help="the raw weights instead of the EMA weights")
    e.set_defaults(func=cmd_export)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if args.log_file:
        try:
            handlers.append(logging.FileHandler(args.log_file, errors="backslashreplace"))  # any file name logs
        except OSError as e:
            print(f"error: --log-file {_os_error(e)}", file=sys.stderr)
            return 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, handlers=handlers,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    try:
        if getattr(args, "ocr_device", None):
            from . import ocr

            ocr.set_device(args.ocr_device)  # before any job starts: Ray workers and pools inherit it
        return args.func(args)
    except (ConfigError, ValueError, RuntimeError) as e:
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return 2
    except FileNotFoundError as e:
        print(f"error: {_os_error(e)}", file=sys.stderr)
        return 2
    except OSError as e:  # e.g. the output disk filled up while writing the manifest
        print(f"error: {_os_error(e)}", file=sys.stderr)
        return 1


def _one_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def _os_error(e: OSError) -> str:
    """`PATH: reason` when the error names a file, else the reason alone (never an empty `: `)."""
    reason = e.strerror or _one_line(e)
    return f"{os.fsdecode(e.filename)!s}: {reason}" if e.filename else reason


if __name__ == "__main__":
    sys.exit(main())
