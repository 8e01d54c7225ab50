"""Text-fidelity evaluation of image reconstructions, following OmniDoc-TokenBench's protocol.

The reference is `eval_metrics.py` of github.com/alibaba/OmniDoc-TokenBench (piq 0.8.0 for PSNR and SSIM,
python-Levenshtein, PaddleOCR). Layout: same-named images in `gt_dir` (originals) and `recon_dir`
(reconstructions). Per original:

- A reconstruction of another size is resized to the original's size (PIL bicubic) for the pixel metrics
  (PSNR, SSIM, LPIPS, FID); OCR reads the reconstruction as it is, as the reference does.
- PSNR (dB) = -10 log10(MSE + 1e-8) of the images in [0, 1] (piq's; identical images score 80 dB); the
  dataset PSNR is the mean over the pairs with a finite value. SSIM: 11x11 Gaussian window, sigma 1.5, valid
  region only, no downsampling, channel mean; see `textinfuse.metrics`.
- NED = 1 - Levenshtein(OCR(gt), OCR(recon)) / max(len, len) (`textinfuse.metrics.ned_similarity`), OCR
  with the bundled rapidocr. The text (`ned_text`, CLI `--ned-text`): "engine" (default, the reference's)
  joins the engine's lines with "" in the engine's order, whitespace kept (`textinfuse.ocr.engine_text`);
  "normalised" (this tool's earlier text) reads them in reading order with all whitespace removed
  (`textinfuse.ocr.page_text`). The dataset NED is the mean over the originals whose OCR text is non-empty
  (`NED_samples` of them); the others are left out, as in the reference.
- `num_samples` counts all originals (the reference's `len(files)`), scored or not.

Reconstructions come from one source: `recon_dir`; a reference (`identity`, or `bicubicF`: PIL bicubic
down by F, then back up to the original size); a Python callable `module:function` (the hook for any
autoencoder) that maps a float32 batch (N, H, W, 3) in [0, 1] to reconstructions of the same shape and
range; or `checkpoint`, which needs `training.inference.load_reconstructor(path) -> callable` with the
same contract (the callable tiles large images: `training.inference` does, for our VAE).

Outputs in `out`, the reference's two files first: `results.json` (`num_samples`, `PSNR`, `SSIM`, `LPIPS`,
`FID`, `NED`, `NED_samples`, plus `ned_text` and `LPIPS_reason`/`FID_reason` when those are null; values
unrounded) and `ned_details.json` (`avg_ned`, `total_samples`, `valid_samples` and `details`: one
{file, gt_text, rec_text, ned} per original with OCR text, ned rounded to 4 places as the reference
writes it; written when at least one original has text); then ours: `details.jsonl` (one line per
original: name, psnr, ssim, ned, ocr_gt, ocr_recon, `resized_from` for a resized reconstruction, and
`error` for a bad pair), `report.json` (source, protocol, problems by reason, OCR cache hits, timings) and
`worst.png` (lowest-NED cases: original | reconstruction | OCR texts). Bad pairs (missing, unreadable,
model failure) are listed and skipped, never fatal. OCR lines of the originals (text, box, score, so both
texts derive from one reading) are cached in this user's private cache folder
(`~/.cache/textinfuse/eval/.textinfuse-ocr-cache.jsonl`, never in `gt_dir`, which may come from
elsewhere), keyed by the sha256 of the decoded pixels and the OCR version; FID features beside it.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from textinfuse.metrics import PSNR_EPS, ned_similarity, psnr, ssim
from textinfuse.ocr import DEFAULT_NED_TEXT, NED_TEXTS

from .progress import Progress

log = logging.getLogger(__name__)
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
REFERENCES = ("identity", "bicubic8", "bicubic16", "bicubic32")
CACHE_NAME = ".textinfuse-ocr-cache.jsonl"
ModelFn = Callable[[np.ndarray], np.ndarray]


# --- reconstruction sources ---------------------------------------------------------------------------

def bicubic_down_up(img: np.ndarray, factor: int) -> np.ndarray:
    """uint8 RGB image down-sampled by `factor` (PIL bicubic, antialiased) and back up to its size."""
    from PIL import Image

    h, w = img.shape[:2]
    small = Image.fromarray(img).resize((max(1, round(w / factor)), max(1, round(h / factor))), Image.BICUBIC)
    return np.asarray(small.resize((w, h), Image.BICUBIC))


def reference_fn(name: str) -> ModelFn:
    """A reference 'model' with the hook's contract: identity or bicubic down-then-up by 8, 16 or 32."""
    if name == "identity":
        return lambda batch: batch
    if name not in REFERENCES:
        raise ValueError(f"unknown reference {name!r}; choose from {', '.join(REFERENCES)}")
    f = int(name.removeprefix("bicubic"))
    return lambda batch: np.stack([bicubic_down_up(to_uint8(x), f) for x in batch]).astype(np.float32) / 255.0


def load_model_fn(spec: str) -> ModelFn:
    """Import `module:function` (the module must be importable, e.g. on PYTHONPATH)."""
    mod, _, fn = spec.partition(":")
    if not mod or not fn:
        raise ValueError(f"--model-fn {spec!r}: expected module:function")
    return getattr(importlib.import_module(mod), fn)


def checkpoint_fn(path: str) -> ModelFn:
    """Our VAE's reconstruction callable; needs the trainer (training extra)."""
    if not Path(path).exists():
        raise FileNotFoundError(2, "not found", path)
    try:
        from training.inference import load_reconstructor  # type: ignore[import-not-found]
    except ImportError as e:
        raise RuntimeError(f"--checkpoint {path}: needs the training extra (pip install 'textinfuse[train]') and "
                           f"a trainer with training.inference.load_reconstructor ({e}); meanwhile use "
                           "--model-fn module:function") from e
    return load_reconstructor(path)


def to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(x, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)


# --- OCR with a content-addressed cache -----------------------------------------------------------------

def pixel_key(img: np.ndarray) -> str:
    return hashlib.sha256(repr(img.shape).encode() + np.ascontiguousarray(img).tobytes()).hexdigest()


def ocr_text(img: np.ndarray) -> str:
    """OCR text of an RGB uint8 image in reading order, all whitespace removed (`textinfuse.ocr.page_text`):
    bench-build's character counts (the evaluation's text is chosen by `ned_text`, see `lines_text`)."""
    from textinfuse import ocr

    return ocr.page_text(img)


def ocr_lines(img: np.ndarray) -> list[list]:
    """The OCR engine's lines of an RGB uint8 image, in its order, as JSON-ready [text, box, score]: what
    the cache stores, so either text variant derives from one reading."""
    from textinfuse import ocr

    return [[ln.text, [list(p) for p in ln.box], ln.score] for ln in ocr.read(img)]


def lines_text(lines: list[list], ned_text: str = DEFAULT_NED_TEXT) -> str:
    """The text NED compares, from `ocr_lines` output: `textinfuse.ocr.text_of_lines` (what
    `textinfuse.ocr.text_of`, the trainer's text, computes from a fresh reading)."""
    from textinfuse import ocr

    return ocr.text_of_lines([ocr.OcrLine(t, tuple(tuple(pt) for pt in b), float(sc)) for t, b, sc in lines],
                             ned_text)


def match_size(rec: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """`rec` resized to `gt`'s size with PIL bicubic when the sizes differ (the reference's rule), else
    `rec` itself."""
    if rec.shape[:2] == gt.shape[:2]:
        return rec
    from PIL import Image

    return np.asarray(Image.fromarray(rec).resize((gt.shape[1], gt.shape[0]), Image.Resampling.BICUBIC))


def score_pair(gt: np.ndarray, rec: np.ndarray, gt_lines: list | None, rec_lines: list | None,
               identical: bool = False, ned_text: str = DEFAULT_NED_TEXT) -> dict:
    """PSNR and SSIM (on `rec` resized to `gt`'s size if needed) and both OCR texts (of the images as
    given) of one pair; OCR lines already known (cached) are passed in, and an `identical` reconstruction
    reuses the original's. A fresh reading of the original comes back as `gt_lines` for the cache. Runs in
    worker processes with `--workers`, so it touches no shared state; errors come back as `error`."""
    try:
        px = match_size(rec, gt)
        row: dict = {"psnr": psnr(gt, px), "ssim": ssim(gt, px)}
        if px is not rec:
            row["resized_from"] = f"{rec.shape[1]}x{rec.shape[0]}"
        gl = ocr_lines(gt) if gt_lines is None else gt_lines
        rl = gl if identical else ocr_lines(rec) if rec_lines is None else rec_lines
        row["ocr_gt"], row["ocr_recon"] = lines_text(gl, ned_text), lines_text(rl, ned_text)
        if gt_lines is None:
            row["gt_lines"] = gl
        return row
    except Exception as e:  # one bad image must not end a long evaluation
        return {"error": f"metric failed: {type(e).__name__}: {e}"}


def ocr_version() -> str:
    """The OCR engine's name in the cache: its version, and the device when not the CPU (GPU kernels may
    read a line differently, so their texts are not mixed with the CPU's)."""
    from importlib.metadata import PackageNotFoundError, version

    from textinfuse.ocr import device

    try:
        name = f"rapidocr-{version('rapidocr')}"
    except PackageNotFoundError:
        name = "rapidocr-unknown"
    return name if device() == "cpu" else f"{name}-{device()}"


class OcrCache:
    """OCR lines ([text, box, score] in the engine's order) keyed by pixel sha256, from which each NED text
    variant is derived (`lines_text`), so variants never mix; persisted as JSONL lines {key, engine, lines}
    (append-only). Lines of the earlier format {key, engine, text} held one variant only and are ignored."""

    def __init__(self, path: Path | None):
        self.path, self.engine = path, ocr_version()
        self.lines: dict[str, list] = {}
        self.hits = self.misses = 0
        if path is not None and path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    r = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a torn last line from an interrupted run
                if isinstance(r, dict) and r.get("engine") == self.engine and isinstance(r.get("lines"), list):
                    self.lines[r["key"]] = r["lines"]

    def store(self, key: str, lines: list, persist: bool = True) -> None:
        self.lines[key] = lines
        if persist and self.path is not None:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"key": key, "engine": self.engine, "lines": lines}, ensure_ascii=False) + "\n")


def _cache_path() -> Path:
    """The OCR cache: in this user's private cache folder, never in the GT folder. A GT folder may come
    from elsewhere, and a cache inside it could hold texts that give any score. Entries are keyed by pixel
    hash and OCR engine, so one file serves every GT folder."""
    from render_engine.files import private_dir

    return private_dir("eval", "evaluation") / CACHE_NAME


# --- evaluation ----------------------------------------------------------------------------------------

def list_images(d: Path) -> list[Path]:
    return sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_EXTS and not p.name.startswith("."))


MAX_PIXELS = 178_956_970  # PIL's own default bomb limit, held here so no other setting changes it


def load_rgb(path: Path) -> np.ndarray:
    """An image file as uint8 RGB. Only regular files of at most 1 GiB are read (a FIFO named like an image
    would block), and images over MAX_PIXELS are refused before they are decoded."""
    import io

    from PIL import Image

    from render_engine.files import read_regular

    with Image.open(io.BytesIO(read_regular(path))) as im:
        if im.width * im.height > MAX_PIXELS:
            raise ValueError(f"{im.width}x{im.height}: over the {MAX_PIXELS}-pixel limit (decompression bomb?)")
        return np.asarray(im.convert("RGB"))


def _optional_metric(name: str, weights: str | None) -> tuple[None, str]:
    # LPIPS and FID need a network; with no weights nothing is downloaded, the value is null with a reason.
    if not weights:
        return None, f"no --{name.lower()}-weights given (weights are never downloaded)"
    if not all(Path(w).exists() for w in weights.split(",")):
        return None, f"{weights}: not found"
    return None, f"{weights}: could not be used"


def lpips_scorer(weights: str) -> Callable[[np.ndarray, np.ndarray], float]:
    """LPIPS-VGG (v0.1) of two uint8 RGB images, from local weights: "VGG16_TRUNK,LPIPS_HEADS" (torchvision's
    `vgg16-397923af.pth` and the `lpips` wheel's `weights/v0.1/vgg.pth`; .pth or .safetensors) or a folder
    holding `vgg16*` and `vgg.pth`/`lpips*`. Needs the train extra (torch); see training/losses.py."""
    p = Path(weights)
    if p.is_dir():
        trunk = next(iter(sorted(p.glob("vgg16*"))), None)
        heads = next(iter(sorted(p.glob("lpips*")) or sorted(p.glob("vgg.*"))), None)
        if trunk is None or heads is None:
            raise FileNotFoundError(2, "needs vgg16* (trunk) and vgg.pth or lpips* (heads) files", weights)
    else:
        trunk, heads = weights.split(",")
    import torch

    from training.losses import LPIPS

    net = LPIPS(str(trunk), str(heads))

    def score(a: np.ndarray, b: np.ndarray) -> float:
        t = [torch.from_numpy(np.array(x)).permute(2, 0, 1)[None].float() / 127.5 - 1 for x in (a, b)]
        with torch.no_grad():
            return float(net(t[0], t[1])[0])

    return score


def evaluate(gt_dir: str | Path, out: str | Path, recon_dir: str | Path | None = None, *,
             reference: str | None = None, model_fn: str | ModelFn | None = None,
             checkpoint: str | None = None, lpips_weights: str | None = None,
             fid_weights: str | None = None, worst: int = 12, batch_size: int = 8,
             use_cache: bool = True, workers: int = 1, ocr: bool = True,
             ned_text: str = DEFAULT_NED_TEXT) -> dict:
    """Score reconstructions of the images in `gt_dir` (from exactly one source) and write the outputs
    described in the module docstring to `out`. Returns the `results.json` dict. `ocr=False` scores pixels
    only (photos: NED is null and no OCR runs). `ned_text`: "engine" (OmniDoc-TokenBench's text, the
    default) or "normalised" (reading order, whitespace removed)."""
    if ned_text not in NED_TEXTS:
        raise ValueError(f"ned_text {ned_text!r}: use one of {', '.join(NED_TEXTS)}")
    gt_dir, out = Path(gt_dir), Path(out)
    sources = [s for s in (recon_dir, reference, model_fn, checkpoint) if s]
    if len(sources) != 1:
        raise ValueError("give exactly one of --recon-dir, --reference, --model-fn, --checkpoint")
    if not gt_dir.is_dir():
        raise FileNotFoundError(2, "not found", str(gt_dir))
    out.mkdir(parents=True, exist_ok=True)
    fn: ModelFn | None = None
    if reference:
        fn = reference_fn(reference)
    elif isinstance(model_fn, str):
        fn = load_model_fn(model_fn)
    elif model_fn is not None:
        fn = model_fn
    elif checkpoint:
        fn = checkpoint_fn(checkpoint)
    lpips_fn, lpips_reason = None, None
    if lpips_weights:
        try:
            lpips_fn = lpips_scorer(lpips_weights)
        except ImportError as e:
            lpips_reason = f"LPIPS needs the training extra (pip install 'textinfuse[train]'): {e}"
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            lpips_reason = f"{lpips_weights}: unusable LPIPS weights ({type(e).__name__}: {e})"
    fid, fid_reason = None, _optional_metric("FID", fid_weights)[1] if not fid_weights else None
    if fid_weights:
        try:
            from .fid import FidScorer

            fid = FidScorer(fid_weights, _cache_path().parent if use_cache else None, batch_size)
        except ImportError as e:
            fid_reason = f"FID needs the training extra (pip install 'textinfuse[train]'): {e}"
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            fid_reason = f"{fid_weights}: unusable FID Inception weights ({type(e).__name__}: {e})"
    names = list_images(gt_dir)
    recon_by_stem: dict[str, Path] = {}
    extra: list[str] = []
    if recon_dir:
        recon_dir = Path(recon_dir)
        if not recon_dir.is_dir():
            raise FileNotFoundError(2, "not found", str(recon_dir))
        recon_by_stem = {p.stem: p for p in list_images(recon_dir)}
        gt_stems = {p.stem for p in names}
        extra = sorted(p.name for s, p in recon_by_stem.items() if s not in gt_stems)
    cache = OcrCache(_cache_path() if use_cache else None)
    recon_ocr_runs = 0  # a reconstruction identical to an original (or already cached) reuses that text
    details: list[dict] = []
    images: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # kept for the worst-case grid (small sets)
    prog = Progress(len(names), "images")
    t0 = time.monotonic()
    pool = None
    if workers > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))  # OCR engines are not fork-safe
    try:
        for start in range(0, len(names), batch_size * max(workers, 1)):
            chunk = names[start:start + batch_size * max(workers, 1)]
            pairs = _load_pairs(chunk, recon_by_stem, fn)
            jobs = []  # (index in chunk, gt key, recon key) of the pairs to score
            for i, (gt, rec, err) in enumerate(pairs):
                if err is None and gt is not None and rec is not None:
                    jobs.append((i, pixel_key(gt), pixel_key(rec)))
            known = [(cache.lines.get(kg), cache.lines.get(kr)) if ocr else ([], []) for _, kg, kr in jobs]
            args = [(pairs[i][0], pairs[i][1], tg, tr, kg == kr, ned_text)
                    for (i, kg, kr), (tg, tr) in zip(jobs, known, strict=True)]
            if pool is not None and args:
                scored_rows = list(pool.map(score_pair, *(list(col) for col in zip(*args, strict=True))))
            else:
                scored_rows = [score_pair(*a) for a in args]
            by_index, jobs_key = {}, {i: kg for i, kg, _ in jobs}
            for (i, kg, kr), (tg, tr), row in zip(jobs, known, scored_rows, strict=True):
                if "error" not in row and ocr:
                    cache.hits += tg is not None
                    cache.misses += tg is None
                    recon_ocr_runs += tr is None and kr != kg
                    if tg is None:
                        cache.store(kg, row["gt_lines"])
                row.pop("gt_lines", None)
                by_index[i] = row
            scored: list[tuple[np.ndarray, np.ndarray, str]] = []  # (original, reconstruction, original's key)
            for i, (p, (gt, rec, err)) in enumerate(zip(chunk, pairs, strict=True)):
                row = {"name": p.name, "psnr": None, "ssim": None, "ned": None, "ocr_gt": None, "ocr_recon": None}
                if recon_dir:
                    row["recon"] = recon_by_stem[p.stem].name if p.stem in recon_by_stem else None
                got = by_index.get(i)
                if got is not None and "error" in got:
                    err = got["error"]
                elif got is not None:
                    row.update(got)
                    row["ned"] = ned_similarity(row["ocr_gt"], row["ocr_recon"]) if row["ocr_gt"] else None
                    px = match_size(rec, gt)  # the pixel metrics see the original's size
                    try:
                        if lpips_fn is not None:
                            row["lpips"] = lpips_fn(gt, px)
                    except Exception as e:
                        err = f"metric failed: {type(e).__name__}: {e}"
                    if err is None:
                        if len(images) < 4 * max(worst, 1) or (row["ned"] is not None and row["ned"] < 1):
                            images[p.name] = (gt, px)
                        scored.append((gt, px, jobs_key[i]))
                if err is not None:
                    row["error"] = err
                    log.warning("%s: %s", p.name, err)
                details.append(row)
                prog.advance(1, failures=int(err is not None))
            if fid is not None:
                fid.add([g for g, _, _ in scored], [r for _, r, _ in scored], [k for _, _, k in scored])
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    prog.close()
    fid_value = None
    if fid is not None:
        fid.save()
        fid_value, fid_reason = fid.value()
    secs = time.monotonic() - t0
    if lpips_fn is None:
        lpips_reason = lpips_reason or _optional_metric("LPIPS", lpips_weights)[1]
    return _write_outputs(out, details, images, extra, cache, recon_ocr_runs, secs, worst, lpips_reason,
                          (fid_value, fid_reason), ned_text if ocr else None,
                          source={"gt_dir": str(gt_dir), "recon_dir": str(recon_dir) if recon_dir else None,
                                  "reference": reference, "model_fn": model_fn if isinstance(model_fn, str) else
                                  getattr(model_fn, "__name__", None), "checkpoint": checkpoint})


def _load_pairs(chunk: list[Path], recon_by_stem: dict[str, Path], fn: ModelFn | None
                ) -> list[tuple[np.ndarray | None, np.ndarray | None, str | None]]:
    """(gt, recon, error) per original; the model sees same-shape groups as float32 batches in [0, 1]."""
    res: list[list] = []
    for p in chunk:
        try:
            gt = load_rgb(p)
        except Exception as e:
            res.append([None, None, f"unreadable original: {type(e).__name__}: {e}"])
            continue
        if fn is not None:
            res.append([gt, None, None])
            continue
        r = recon_by_stem.get(p.stem)
        if r is None:
            res.append([gt, None, "missing in recon dir"])
            continue
        try:
            rec = load_rgb(r)
        except Exception as e:
            res.append([gt, None, f"unreadable reconstruction: {type(e).__name__}: {e}"])
            continue
        res.append([gt, rec, None])
    if fn is not None:
        by_shape: dict[tuple, list[int]] = {}
        for i, (gt, _, err) in enumerate(res):
            if err is None:
                by_shape.setdefault(gt.shape, []).append(i)
        for idx in by_shape.values():
            try:
                batch = np.stack([res[i][0] for i in idx]).astype(np.float32) / 255.0
                recs = np.asarray(fn(batch))
                if recs.shape != batch.shape:
                    raise ValueError(f"returned shape {recs.shape} for a batch of {batch.shape}")
                for i, r in zip(idx, recs, strict=True):
                    res[i][1] = to_uint8(r)
            except Exception as e:
                for i in idx:
                    res[i][2] = f"model failed: {type(e).__name__}: {e}"
    return [tuple(r) for r in res]  # a reconstruction of another size is resized when scored


def _mean(xs: list[float]) -> float | None:
    return float(np.mean(xs)) if xs else None


def _finite(x: float | None) -> bool:
    return x is not None and bool(np.isfinite(x))


def _write_outputs(out: Path, details: list[dict], images: dict, extra: list[str], cache: OcrCache,
                   recon_ocr_runs: int, secs: float, worst: int, lpips_reason: str | None,
                   fid: tuple[float | None, str | None], ned_text: str | None, source: dict) -> dict:
    ok = [d for d in details if "error" not in d]
    with_text = [d for d in ok if d["ned"] is not None]
    neds = [d["ned"] for d in with_text]
    lp = [d["lpips"] for d in ok if "lpips" in d]
    # The reference's rules: num_samples counts every original; PSNR averages the finite values only.
    results: dict = {"num_samples": len(details), "PSNR": _mean([d["psnr"] for d in ok if _finite(d["psnr"])]),
                     "SSIM": _mean([d["ssim"] for d in ok]), "LPIPS": _mean(lp) if lp else None, "FID": fid[0],
                     "NED": _mean(neds), "NED_samples": len(neds), "ned_text": ned_text}
    if not lp:
        results["LPIPS_reason"] = lpips_reason or "no image pair could be scored"
    if fid[0] is None:
        results["FID_reason"] = fid[1] or "no image pair could be scored"
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    ned_path = out / "ned_details.json"
    if with_text:  # the reference writes it only when some original has text
        ned_out = {"avg_ned": round(results["NED"], 4), "total_samples": len(details), "valid_samples": len(neds),
                   "details": [{"file": d["name"], "gt_text": d["ocr_gt"], "rec_text": d["ocr_recon"],
                                "ned": round(d["ned"], 4)} for d in with_text]}
        ned_path.write_text(json.dumps(ned_out, ensure_ascii=False, indent=2), encoding="utf-8")
    else:
        ned_path.unlink(missing_ok=True)  # no stale file from an earlier run into the same folder
    with (out / "details.jsonl").open("w", encoding="utf-8") as f:
        for d in details:
            d = {**d, "psnr": d["psnr"] if d["psnr"] is None or _finite(d["psnr"]) else None}  # JSON has no inf
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
    reasons = Counter(d["error"].split(":")[0] for d in details if "error" in d)
    report = {"source": source, "protocol": "OmniDoc-TokenBench eval_metrics.py", "ned_text": ned_text,
              "psnr_eps": PSNR_EPS, "psnr_finite": sum(_finite(d["psnr"]) for d in ok),
              "resized_reconstructions": sum("resized_from" in d for d in ok),
              "images": len(details), "evaluated": len(ok),
              "problems": dict(reasons), "recon_without_original": extra, "ocr_engine": cache.engine,
              "ocr_cache": str(cache.path) if cache.path else None, "gt_ocr_cache_hits": cache.hits,
              "ocr_runs": cache.misses + recon_ocr_runs, "seconds": round(secs, 3),
              "seconds_per_image": round(secs / max(len(details), 1), 4)}
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    ranked = sorted((d for d in ok if d["ned"] is not None and d["name"] in images),
                    key=lambda d: (d["ned"], d["psnr"] if _finite(d["psnr"]) else float("inf")))[:worst]
    if ranked:
        worst_grid(ranked, images, out / "worst.png")
    log.info("%d of %d pairs evaluated: PSNR %s SSIM %s NED %s over %d -> %s", len(ok), len(details),
             results["PSNR"], results["SSIM"], results["NED"], len(neds), out)
    return results


def caption_font(size: int):
    """The bundled Chinese sans (it also covers Latin) for captions of result pictures; PIL's default if absent."""
    from PIL import ImageFont

    from render_engine.paths import bundled_fonts

    try:
        return ImageFont.truetype(str(bundled_fonts() / "zh" / "NotoSansSC-Regular.otf"), size)
    except OSError:
        return ImageFont.load_default()


def worst_grid(rows: list[dict], images: dict, path: Path, side: int = 256, text_w: int = 420) -> None:
    """PNG: one row per case, original | reconstruction | OCR of both (wrapped), scaled to `side` px high."""
    from PIL import Image, ImageDraw

    font = caption_font(13)
    sheet = Image.new("RGB", (2 * side + text_w + 8, len(rows) * (side + 4)), "white")
    draw = ImageDraw.Draw(sheet)
    per_line = text_w // 13
    for i, d in enumerate(rows):
        y = i * (side + 4)
        for j, img in enumerate(images[d["name"]]):
            im = Image.fromarray(img)
            im.thumbnail((side, side))
            sheet.paste(im, (j * (side + 4), y))
        x = 2 * side + 8
        lines = [(f"{d['name']}  NED {d['ned']:.3f}  PSNR {d['psnr']:.1f}", "black")]
        for label, t, color in (("GT", d["ocr_gt"], "black"), ("REC", d["ocr_recon"], "firebrick")):
            t = f"{label}: {t or '(no text)'}"
            lines += [(t[k:k + per_line], color) for k in range(0, min(len(t), per_line * 7), per_line)]
        for k, (line, color) in enumerate(lines[:16]):
            draw.text((x, y + 2 + 15 * k), line, fill=color, font=font)
    sheet.save(path)


# --- CLI -----------------------------------------------------------------------------------------------

def cmd_eval(a: argparse.Namespace) -> int:
    r = evaluate(a.gt_dir, a.out, a.recon_dir, reference=a.reference, model_fn=a.model_fn,
                 checkpoint=a.checkpoint, lpips_weights=a.lpips_weights, fid_weights=a.fid_weights,
                 worst=a.worst, batch_size=a.batch_size, use_cache=not a.no_cache, workers=a.workers,
                 ned_text=a.ned_text)
    print(json.dumps(r, indent=2))
    return 0 if r["SSIM"] is not None else 1  # SSIM exists once any pair was scored


def _range(text: str) -> list[int]:
    """"200-600" or "200,600" -> [200, 600] (an argparse type)."""
    parts = text.replace(",", "-").split("-")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r}: expected MIN-MAX, e.g. 200-600")
    return [int(p) for p in parts]


def cmd_bench_build(a: argparse.Namespace) -> int:
    from textinfuse.configio import load

    from .bench_build import BenchConfig, build_benchmark

    flags = {"lang": a.lang, "crop": a.crop, "stride": a.stride or a.crop, "zh_char_px": a.zh_char_px,
             "en_char_px": a.en_char_px, "zh_chars": a.zh_chars, "en_chars": a.en_chars}
    sets = [f"{k}={json.dumps(v)}" for k, v in flags.items() if v is not None]
    cfg = load(BenchConfig, a.config, sets + list(a.set or []))
    rows = build_benchmark(a.input, a.out, cfg)
    print(f"{len(rows)} crops -> {a.out}/benchmark.jsonl")
    return 0 if rows else 1


def add_parsers(sub) -> None:
    """Add the `eval` and `bench-build` subcommands to the CLI's subparsers."""
    from textinfuse.cli import add_ocr_device_flag

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
    b.add_argument("--input", nargs="+", required=True, help="PDF files, page images or folders of them")
    b.add_argument("--out", required=True, help="output folder (PNG crops, benchmark.jsonl)")
    b.add_argument("--lang", choices=["auto", "en", "zh"], help="document language (default auto)")
    b.add_argument("--crop", type=int, help="crop side in px (default 256)")
    b.add_argument("--stride", type=int, help="step between crops in a text block (default: the crop side)")
    b.add_argument("--zh-char-px", type=float, help="Chinese character size (the em) pages are scaled to (default 16)")
    b.add_argument("--en-char-px", type=float, help="English character size (cap height) pages are scaled to (default 10)")
    b.add_argument("--zh-chars", type=_range, metavar="MIN-MAX", help="OCR characters a Chinese crop must hold "
                   "(default 200-600; real pages at 16 px hold 150-180 per 256 px crop: try 14 px or 150-600)")
    b.add_argument("--en-chars", type=_range, metavar="MIN-MAX", help="the same for English (default 300-600)")
    b.add_argument("--config", help="bench-build config file (YAML/TOML, keys of pipelines.bench_build.BenchConfig)")
    b.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any config value, repeatable")
    add_ocr_device_flag(b)
    b.set_defaults(func=cmd_bench_build)
