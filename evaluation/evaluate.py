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
down by F, then back up to the original size; `evaluation.references`); or `model_fn`, a callable (or its
`module:function` name: the hook for any autoencoder) that maps a float32 batch (N, H, W, 3) in [0, 1] to
reconstructions of the same shape and range. Our VAE is one such callable: the caller loads it with
`training.inference.load_reconstructor(path)` (it tiles large images) and names the path in `checkpoint`
for report.json, as `textinfuse eval --checkpoint` does. LPIPS and FID need networks, which the caller
builds too and hands in (`lpips`, `fid_features`; `training.eval_hooks` builds ours from local weights,
`load_optional` turns a failure into the metric's reason), so this package never imports torch.

Outputs in `out`, the reference's two files first: `results.json` (`num_samples`, `PSNR`, `SSIM`, `LPIPS`,
`FID`, `NED`, `NED_samples`, plus `ned_text` and `LPIPS_reason`/`FID_reason` when those are null; values
unrounded) and `ned_details.json` (`avg_ned`, `total_samples`, `valid_samples` and `details`: one
{file, gt_text, rec_text, ned} per original with OCR text, ned rounded to 4 places as the reference
writes it; written when at least one original has text); then ours: `details.jsonl` (one line per
original: name, psnr, ssim, ned, ocr_gt, ocr_recon, `resized_from` for a resized reconstruction, and for a
bad pair `error` (one line) and `problem`, its kind: `unreadable original`, `unreadable reconstruction`,
`missing in recon dir`, `model failed`, `metric failed`), `report.json` (source, protocol, problems by
kind, OCR cache hits, timings) and
`worst.png` (the `worst` lowest-NED cases, ties by lower PSNR: original | reconstruction | OCR texts).
Bad pairs (missing, unreadable, model failure) are listed and skipped, never fatal. OCR lines of the
originals (text, box, score, so both texts derive from one reading) are cached in this user's private
cache folder (`~/.cache/textinfuse/eval/.textinfuse-ocr-cache.jsonl`, never in `gt_dir`, which may come
from elsewhere), keyed by the sha256 of the decoded pixels and the OCR version (`evaluation.ocr_cache`);
FID features beside it.

Memory stays bounded on large benchmarks: originals are loaded `batch_size * workers` at a time, and
worst.png's cases are a heap of `worst` pairs.
"""

from __future__ import annotations

import heapq
import importlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import numpy as np

from textinfuse.images import ImageError, list_images
from textinfuse.metrics import PSNR_EPS, ned_similarity, psnr, ssim
from textinfuse.ocr import DEFAULT_NED_TEXT, NED_TEXTS
from textinfuse.progress import Progress

from .fid import FeatureFn, FidScorer
from .images import caption_font, load_protocol_rgb, match_size, to_uint8
from .ocr_cache import CACHE_NAME, OcrCache, cache_dir, lines_text, ocr_lines, pixel_key
from .references import reference_fn

log = logging.getLogger(__name__)
ModelFn = Callable[[np.ndarray], np.ndarray]  # float32 (N, H, W, 3) in [0, 1] -> the same shape and range
LpipsFn = Callable[[np.ndarray, np.ndarray], float]  # two uint8 RGB images of one shape -> LPIPS
# What went wrong with a pair: (kind, one-line message). The kind is its key in report.json's "problems".
Problem = tuple[str, str]
UNREADABLE_ORIGINAL, UNREADABLE_RECON, MISSING_RECON = "unreadable original", "unreadable reconstruction", \
    "missing in recon dir"
MODEL_FAILED, METRIC_FAILED = "model failed", "metric failed"
Pair = tuple[np.ndarray | None, np.ndarray | None, Problem | None]  # (original, reconstruction, problem)
T = TypeVar("T")
WEIGHTS_NOUN = {"LPIPS": "LPIPS weights", "FID": "FID Inception weights"}


# --- what the caller hands in --------------------------------------------------------------------------

def load_model_fn(spec: str) -> ModelFn:
    """Import `module:function` (the module must be importable, e.g. on PYTHONPATH)."""
    mod, _, fn = spec.partition(":")
    if not mod or not fn:
        raise ValueError(f"--model-fn {spec!r}: expected module:function")
    return getattr(importlib.import_module(mod), fn)


def _no_weights(metric: str) -> str:
    # LPIPS and FID need a network; with no weights nothing is downloaded, the value is null with a reason.
    return f"no --{metric.lower()}-weights given (weights are never downloaded)"


def load_optional(metric: str, weights: str | None, build: Callable[[str], T]) -> tuple[T | None, str | None]:
    """(network, None) from `build(weights)`, or (None, the reason there is none) for `metric` ("LPIPS" or
    "FID"): no weights given, the train extra missing, or weights that cannot be used. The reason is what
    results.json says beside the null value; `evaluate(..., lpips=, lpips_reason=)` takes the pair."""
    if not weights:
        return None, _no_weights(metric)
    try:
        return build(weights), None
    except ImportError as e:
        return None, f"{metric} needs the training extra (pip install 'textinfuse[train]'): {e}"
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        return None, f"{weights}: unusable {WEIGHTS_NOUN[metric]} ({type(e).__name__}: {e})"


# --- one pair --------------------------------------------------------------------------------------------

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
        return {"error": _problem(METRIC_FAILED, e)}


def _problem(kind: str, e: BaseException | None = None) -> Problem:
    """A problem of `kind`, its message naming the error: an unreadable image's own one-line reason (its
    code is `e.reason`), another exception's type and text."""
    if e is None:
        return kind, kind
    return kind, f"{kind}: {e}" if isinstance(e, ImageError) else f"{kind}: {type(e).__name__}: {e}"


# --- evaluation ----------------------------------------------------------------------------------------

def evaluate(gt_dir: str | Path, out: str | Path, recon_dir: str | Path | None = None, *,
             reference: str | None = None, model_fn: str | ModelFn | None = None, checkpoint: str | None = None,
             lpips: LpipsFn | None = None, lpips_reason: str | None = None,
             fid_features: FeatureFn | None = None, fid_reason: str | None = None,
             worst: int = 12, batch_size: int = 8, use_cache: bool = True, workers: int = 1, ocr: bool = True,
             ned_text: str = DEFAULT_NED_TEXT) -> dict:
    """Score reconstructions of the images in `gt_dir` (from exactly one of `recon_dir`, `reference`,
    `model_fn`) and write the outputs described in the module docstring to `out`. Returns the
    `results.json` dict.

    `checkpoint`: the weights a callable `model_fn` was loaded from, recorded in report.json (nothing is
    loaded here). `lpips`, `fid_features`: the networks for LPIPS and FID (None: the value is null, with
    `lpips_reason`/`fid_reason`, or "no weights given"; `load_optional` gives both). `ocr=False` scores
    pixels only (photos: NED is null and no OCR runs). `ned_text`: "engine" (OmniDoc-TokenBench's text, the
    default) or "normalised" (reading order, whitespace removed). `workers` > 1 runs OCR and the per-image
    metrics in that many processes; the model, LPIPS and FID stay in this one."""
    if ned_text not in NED_TEXTS:
        raise ValueError(f"ned_text {ned_text!r}: use one of {', '.join(NED_TEXTS)}")
    if checkpoint and not callable(model_fn):
        raise ValueError("checkpoint only names the weights of model_fn: load them first (e.g. "
                         "training.inference.load_reconstructor) and pass that callable as model_fn")
    if sum(bool(s) for s in (recon_dir, reference, model_fn)) != 1:
        raise ValueError("give exactly one source: recon_dir, reference or model_fn "
                         "(--recon-dir, --reference, --model-fn or --checkpoint)")
    gt_dir, out = Path(gt_dir), Path(out)
    if not gt_dir.is_dir():
        raise FileNotFoundError(2, "not found", str(gt_dir))
    out.mkdir(parents=True, exist_ok=True)
    fn = reference_fn(reference) if reference else load_model_fn(model_fn) if isinstance(model_fn, str) else model_fn
    names, recon_by_stem, extra = list_pairs(gt_dir, recon_dir)
    cdir = cache_dir() if use_cache else None
    cache = OcrCache(cdir / CACHE_NAME if cdir else None)
    fid = FidScorer(fid_features, cdir) if fid_features is not None else None
    tally = _Tally(worst, lpips, fid, recon_by_stem if recon_dir else None)
    prog = Progress(len(names), "images")
    t0 = time.monotonic()
    with _scoring(workers) as score:
        for chunk in _chunks(names, batch_size * max(workers, 1)):
            pairs = _load_pairs(chunk, recon_by_stem, fn)
            rows, gt_keys, recon_runs = _score_chunk(pairs, score, cache, ocr, ned_text)
            tally.recon_ocr_runs += recon_runs
            for i, (p, pair) in enumerate(zip(chunk, pairs, strict=True)):
                failed = tally.add(p, pair, rows.get(i), gt_keys.get(i))
                prog.advance(1, failures=int(failed))
            tally.end_chunk()
    prog.close()
    fid_value = None
    if fid is not None:
        fid.save()
        fid_value, fid_reason = fid.value()
    if lpips is None:
        lpips_reason = lpips_reason or _no_weights("LPIPS")
    if fid is None:
        fid_reason = fid_reason or _no_weights("FID")
    name = None if checkpoint else model_fn if isinstance(model_fn, str) else getattr(model_fn, "__name__", None)
    source = {"gt_dir": str(gt_dir), "recon_dir": str(recon_dir) if recon_dir else None, "reference": reference,
              "model_fn": name, "checkpoint": checkpoint}
    return _write_outputs(out, tally.details, tally.worst.sorted(), extra, cache, tally.recon_ocr_runs,
                          time.monotonic() - t0, lpips_reason, (fid_value, fid_reason), ned_text if ocr else None,
                          source)


def list_pairs(gt_dir: Path, recon_dir: str | Path | None) -> tuple[list[Path], dict[str, Path], list[str]]:
    """The originals, the reconstructions by file stem (`a.png` pairs with `a.jpg`) and the names of
    reconstructions without an original."""
    names = list_images(gt_dir)
    if not recon_dir:
        return names, {}, []
    recon_dir = Path(recon_dir)
    if not recon_dir.is_dir():
        raise FileNotFoundError(2, "not found", str(recon_dir))
    recon_by_stem = {p.stem: p for p in list_images(recon_dir)}
    gt_stems = {p.stem for p in names}
    return names, recon_by_stem, sorted(p.name for s, p in recon_by_stem.items() if s not in gt_stems)


def _chunks(names: list[Path], size: int) -> Iterator[list[Path]]:
    for start in range(0, len(names), size):
        yield names[start:start + size]


def _load_pairs(chunk: list[Path], recon_by_stem: dict[str, Path], fn: ModelFn | None) -> list[Pair]:
    """(gt, recon, problem) per original; the model sees same-shape groups as float32 batches in [0, 1]."""
    res: list[list] = []
    for p in chunk:
        try:
            gt = load_protocol_rgb(p)
        except ImageError as e:
            res.append([None, None, _problem(UNREADABLE_ORIGINAL, e)])
            continue
        if fn is not None:
            res.append([gt, None, None])
            continue
        r = recon_by_stem.get(p.stem)
        if r is None:
            res.append([gt, None, _problem(MISSING_RECON)])
            continue
        try:
            rec = load_protocol_rgb(r)
        except ImageError as e:
            res.append([gt, None, _problem(UNREADABLE_RECON, e)])
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
                    res[i][2] = _problem(MODEL_FAILED, e)
    return [tuple(r) for r in res]  # a reconstruction of another size is resized when scored


@contextmanager
def _scoring(workers: int) -> Iterator[Callable[[list[tuple]], list[dict]]]:
    """`score(args)`: `score_pair(*a)` for each argument tuple, in `workers` processes (spawned: OCR
    engines are not fork-safe), or inline for one worker. The processes live as long as the `with`."""
    if workers <= 1:
        yield lambda args: [score_pair(*a) for a in args]
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))
    try:
        yield lambda args: list(pool.map(score_pair, *zip(*args, strict=True))) if args else []
    finally:
        pool.shutdown(cancel_futures=True)


def _score_chunk(pairs: list[Pair], score: Callable[[list[tuple]], list[dict]], cache: OcrCache, ocr: bool,
                 ned_text: str) -> tuple[dict[int, dict], dict[int, str], int]:
    """Score the loaded pairs of a chunk with `score` (see `_scoring`): ({index in chunk: row},
    {index: the original's pixel key}, OCR runs on reconstructions). Lines already cached are passed in
    (a reconstruction identical to its original reuses the original's); fresh readings of originals go
    into `cache`, whose hits and misses count them. With `ocr` False no OCR runs (empty lines)."""
    jobs = [(i, pixel_key(gt), pixel_key(rec)) for i, (gt, rec, err) in enumerate(pairs)
            if err is None and gt is not None and rec is not None]
    known = [(cache.lines.get(kg), cache.lines.get(kr)) if ocr else ([], []) for _, kg, kr in jobs]
    rows = score([(pairs[i][0], pairs[i][1], tg, tr, kg == kr, ned_text)
                  for (i, kg, kr), (tg, tr) in zip(jobs, known, strict=True)])
    recon_runs = 0
    for (_, kg, kr), (tg, tr), row in zip(jobs, known, rows, strict=True):
        if "error" not in row and ocr:
            cache.hits += tg is not None
            cache.misses += tg is None
            recon_runs += tr is None and kr != kg
            if tg is None:
                cache.store(kg, row["gt_lines"])
        row.pop("gt_lines", None)
    return {i: row for (i, _, _), row in zip(jobs, rows, strict=True)}, {i: kg for i, kg, _ in jobs}, recon_runs


def _finite(x: float | None) -> bool:
    return x is not None and bool(np.isfinite(x))


class WorstCases:
    """The `n` scored pairs with the lowest (NED, PSNR), worst first: worst.png's rows (of equal keys, the
    earlier pair). A bounded heap, so a large benchmark holds `n` pairs of images, not every imperfect one."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._heap: list[tuple[tuple[float, float, int], dict, np.ndarray, np.ndarray]] = []
        self._count = 0

    def offer(self, row: dict, gt: np.ndarray, rec: np.ndarray) -> None:
        if self.n <= 0 or row["ned"] is None:
            return
        # negated key: the heap's top is the best case kept, the first to give way to a worse one
        key = (-row["ned"], -(row["psnr"] if _finite(row["psnr"]) else float("inf")), -self._count)
        self._count += 1
        if len(self._heap) < self.n:
            heapq.heappush(self._heap, (key, row, gt, rec))
        elif key > self._heap[0][0]:
            heapq.heapreplace(self._heap, (key, row, gt, rec))

    def sorted(self) -> list[tuple[dict, np.ndarray, np.ndarray]]:
        """(row, original, reconstruction at the original's size), worst first."""
        return [(row, gt, rec) for _, row, gt, rec in sorted(self._heap, key=lambda c: c[0], reverse=True)]


class _Tally:
    """What the outputs are written from, filled one original at a time: every original's row
    (`details`), the worst cases for worst.png, LPIPS per pair, and each chunk's scored pairs for FID."""

    def __init__(self, worst: int, lpips: LpipsFn | None, fid: FidScorer | None,
                 recon_by_stem: dict[str, Path] | None) -> None:
        self.lpips, self.fid, self.recon_by_stem = lpips, fid, recon_by_stem
        self.details: list[dict] = []
        self.worst = WorstCases(worst)
        self.recon_ocr_runs = 0  # a reconstruction identical to an original (or already cached) reuses that text
        self._scored: list[tuple[np.ndarray, np.ndarray, str]] = []  # (original, reconstruction, original's key)

    def add(self, p: Path, pair: Pair, got: dict | None, gt_key: str | None) -> bool:
        """The row of original `p`, from its loaded pair and its scores (None: not scored); True if it failed."""
        gt, rec, err = pair
        row = {"name": p.name, "psnr": None, "ssim": None, "ned": None, "ocr_gt": None, "ocr_recon": None}
        if self.recon_by_stem is not None:
            row["recon"] = self.recon_by_stem[p.stem].name if p.stem in self.recon_by_stem else None
        if got is not None and "error" in got:
            err = tuple(got["error"])
        elif got is not None:
            row.update(got)
            row["ned"] = ned_similarity(row["ocr_gt"], row["ocr_recon"]) if row["ocr_gt"] else None
            px = match_size(rec, gt)  # the pixel metrics see the original's size
            try:
                if self.lpips is not None:
                    row["lpips"] = self.lpips(gt, px)
            except Exception as e:
                err = _problem(METRIC_FAILED, e)
            if err is None:
                self.worst.offer(row, gt, px)
                self._scored.append((gt, px, gt_key))
        if err is not None:
            row["problem"], row["error"] = err
            log.warning("%s: %s", p.name, err[1])
        self.details.append(row)
        return err is not None

    def end_chunk(self) -> None:
        """Hand the chunk's scored pairs to FID (a batch per chunk) and let their images go."""
        if self.fid is not None:
            s = self._scored
            self.fid.add([g for g, _, _ in s], [r for _, r, _ in s], [k for _, _, k in s])
        self._scored = []


# --- outputs -----------------------------------------------------------------------------------------------

def _mean(xs: list[float]) -> float | None:
    return float(np.mean(xs)) if xs else None


def _write_outputs(out: Path, details: list[dict], worst_cases: list[tuple[dict, np.ndarray, np.ndarray]],
                   extra: list[str], cache: OcrCache, recon_ocr_runs: int, secs: float, lpips_reason: str | None,
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
    report = {"source": source, "protocol": "OmniDoc-TokenBench eval_metrics.py", "ned_text": ned_text,
              "psnr_eps": PSNR_EPS, "psnr_finite": sum(_finite(d["psnr"]) for d in ok),
              "resized_reconstructions": sum("resized_from" in d for d in ok),
              "images": len(details), "evaluated": len(ok),
              "problems": dict(Counter(d["problem"] for d in details if "problem" in d)),
              "recon_without_original": extra, "ocr_engine": cache.engine,
              "ocr_cache": str(cache.path) if cache.path else None, "gt_ocr_cache_hits": cache.hits,
              "ocr_runs": cache.misses + recon_ocr_runs, "seconds": round(secs, 3),
              "seconds_per_image": round(secs / max(len(details), 1), 4)}
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    if worst_cases:
        worst_grid(worst_cases, out / "worst.png")
    log.info("%d of %d pairs evaluated: PSNR %s SSIM %s NED %s over %d -> %s", len(ok), len(details),
             results["PSNR"], results["SSIM"], results["NED"], len(neds), out)
    return results


def worst_grid(cases: list[tuple[dict, np.ndarray, np.ndarray]], path: Path, side: int = 256,
               text_w: int = 420) -> None:
    """PNG: one row per (row, original, reconstruction) case, original | reconstruction | OCR of both
    (wrapped), scaled to `side` px high."""
    from PIL import Image, ImageDraw

    font = caption_font(13)
    sheet = Image.new("RGB", (2 * side + text_w + 8, len(cases) * (side + 4)), "white")
    draw = ImageDraw.Draw(sheet)
    per_line = text_w // 13
    for i, (d, gt, rec) in enumerate(cases):
        y = i * (side + 4)
        for j, img in enumerate((gt, rec)):
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
