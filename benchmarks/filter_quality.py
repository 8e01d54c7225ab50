"""Quality and cost of the `textinfuse filter` stages on a labelled set of real images.

The set is built by `scripts/build_filter_evalset.py` (real document pages and photos, sharp and
degraded). Prints, with the goal next to each figure:

- clarity (default `ClarityConfig()`): precision / recall of "keep" with sharp images as positives,
  overall and per degradation, per class; images per CPU-second of `measures` on 512x512; and the
  threshold of each measure that maximises F1 on its own and jointly (coordinate ascent from the defaults).
- text density (default `TextDensityConfig()`, both stages) on sharp images: precision / recall of keep
  for text-rich vs natural; the presence stage alone on an 80 % natural / 20 % text-rich mix: OCR time
  saved and share of text-rich images it drops; CPU seconds per image of detection and of full OCR.

    .venv/bin/python benchmarks/filter_quality.py [--data DIR] [--limit 120]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.filter_job import ClarityConfig, TextDensityConfig  # noqa: E402
from pipelines.filters.clarity import Clarity, measures  # noqa: E402
from pipelines.filters.text_density import TextDensity, presence_side  # noqa: E402
from textinfuse import ocr  # noqa: E402

DEGRADATIONS = ("blur1.5", "blur2.5", "updown3", "jpeg10")
# measure -> (config field, keep when the score is >= threshold)
CANDIDATES = ({"min_peak_sharpness": 0.7}, {"min_peak_sharpness": 0.9}, {"max_ringing": 9.0}, {"max_ringing": 13.0},
              {"min_hf_energy": 0.0005})  # alternatives printed next to the defaults
# measure -> (config field, keep when the score is >= threshold), from the filter's own rules
MEASURES = {r.score: (r.key, r.way == "min") for r in Clarity.rules}
TARGET = {"peak_sharpness": "blur", "laplacian_var": "blur", "hf_energy": "blur", "upscale_ratio": "updown3",
          "blockiness": "jpeg10", "ringing": "jpeg10"}  # the degradation each measure is meant to catch


def load(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def pr(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """Precision, recall and F1 of `pred` (keep) against `truth` (positives)."""
    tp = float(np.sum(pred & truth))
    p = tp / max(float(pred.sum()), 1.0)
    r = tp / max(float(truth.sum()), 1.0)
    return p, r, 2 * p * r / max(p + r, 1e-9)


def keep_mask(scores: list[dict], cfg: ClarityConfig) -> np.ndarray:
    c = Clarity()
    return np.array([c.keep(s, cfg) is None for s in scores])


def best_single(values: np.ndarray, truth: np.ndarray, higher: bool) -> tuple[float, float]:
    """(threshold, F1) of the one-measure rule that maximises F1 over the observed values."""
    best = (float("nan"), -1.0)
    for t in np.unique(np.quantile(values, np.linspace(0, 1, 401))):
        f1 = pr(values >= t if higher else values <= t, truth)[2]
        if f1 > best[1]:
            best = (float(t), f1)
    return best


def best_joint(scores: list[dict], truth: np.ndarray, rounds: int = 3) -> tuple[ClarityConfig, float]:
    """Coordinate ascent on the Clarity thresholds (from the defaults) to maximise F1 of keep."""
    cfg = ClarityConfig()
    f1 = pr(keep_mask(scores, cfg), truth)[2]
    for _ in range(rounds):
        for m, (field, _) in MEASURES.items():
            vals = np.array([s[m] for s in scores])
            for t in np.unique(np.quantile(vals, np.linspace(0, 1, 201))):
                cand = replace(cfg, **{field: float(t)})
                f = pr(keep_mask(scores, cand), truth)[2]
                if f > f1 + 1e-9:
                    cfg, f1 = cand, f
    return cfg, f1


def clarity_report(rows: list[dict], data: Path) -> None:
    cfg = ClarityConfig()
    scores, cpu = [], 0.0
    for r in rows:
        img = load(data / r["file"])
        t0 = time.process_time()
        scores.append(measures(img, cfg.norm_side))
        cpu += time.process_time() - t0
    keep = keep_mask(scores, cfg)
    sharp = np.array([r["degraded"] is None for r in rows])
    text = np.array([r["text_rich"] for r in rows])
    deg = np.array([r["degraded"] or "" for r in rows])
    print(f"\n== Clarity, default thresholds {cfg}\n   {len(rows)} images ({sharp.sum()} sharp)")
    print(f"   measures speed: {len(rows) / cpu:7.0f} images/CPU-s on 512x512      goal >= 200")
    print(f"   {'subset':<26}{'precision':>10}{'recall':>8}{'F1':>7}{'kept':>7}   goal: high P, recall >= 0.95")
    for cls, m in (("all", np.ones_like(sharp)), ("text-rich", text), ("natural", ~text)):
        p, rc, f = pr(keep[m], sharp[m])
        print(f"   {cls + ' sharp vs all degraded':<26}{p:10.3f}{rc:8.3f}{f:7.3f}{keep[m].mean():7.2f}")
        for d in DEGRADATIONS:
            mm = m & (sharp | (deg == d))
            p, _, f = pr(keep[mm], sharp[mm])
            rej = 1 - keep[m & (deg == d)].mean()
            print(f"     {'vs ' + d:<24}{p:10.3f}{'':8}{f:7.3f}   {d} rejected {rej:5.1%}")
    reasons: dict[str, dict[str, int]] = {}
    for r, s in zip(rows, scores, strict=False):
        reason = Clarity().keep(s, cfg) or "kept"
        reasons.setdefault(r["degraded"] or "sharp", {}).setdefault(reason, 0)
        reasons[r["degraded"] or "sharp"][reason] += 1
    print("   decisions by kind:", json.dumps(reasons))
    kinds = ("sharp", *DEGRADATIONS)
    print(f"   {'medians, text-rich | natural:':<31}" + "".join(f"{k:>22}" for k in kinds))
    for m in MEASURES:
        cells = []
        for kd in kinds:
            sel = deg == ("" if kd == "sharp" else kd)
            cells.append("{:>10.4g} |{:>9.4g}".format(*(np.median([s[m] for s, ok in zip(scores, sel & c, strict=False) if ok])
                                                          for c in (text, ~text))))
        print(f"     {m:<26}" + "".join(f"{c:>22}" for c in cells))
    print("   F1-optimal thresholds (one measure alone; sharp vs all degraded, and vs the kind it targets):")
    for m, (field, higher) in MEASURES.items():
        vals = np.array([s[m] for s in scores])
        t_all, f_all = best_single(vals, sharp, higher)
        sel = sharp | np.char.startswith(deg.astype(str), TARGET[m])
        t_tg, f_tg = best_single(vals[sel], sharp[sel], higher)
        print(f"     {field:<18} default {getattr(cfg, field):<8g} all: {t_all:<10.4g} F1 {f_all:.3f}"
              f"   vs {TARGET[m]}: {t_tg:<10.4g} F1 {f_tg:.3f}")
    jc, jf = best_joint(scores, sharp)
    p, rc, _ = pr(keep_mask(scores, jc), sharp)
    print(f"   joint F1-optimum: {', '.join(f'{f}={getattr(jc, f):.4g}' for f, _ in MEASURES.values())}"
          f"  -> P {p:.3f} R {rc:.3f} F1 {jf:.3f}")
    for kw in CANDIDATES:
        k = keep_mask(scores, replace(cfg, **kw))
        p, rc, f = pr(k, sharp)
        print(f"   candidate {json.dumps(kw)}: P {p:.3f} R {rc:.3f} F1 {f:.3f}; recall text {k[sharp & text].mean():.3f}"
              f" natural {k[sharp & ~text].mean():.3f}; jpeg10 kept text {k[text & (deg == 'jpeg10')].mean():.2f}")
    jk = keep_mask(scores, jc)
    print("     kept at the optimum, text-rich | natural: " + ", ".join(
        f"{kd} {jk[text & (deg == ('' if kd == 'sharp' else kd))].mean():.2f} | "
        f"{jk[~text & (deg == ('' if kd == 'sharp' else kd))].mean():.2f}" for kd in ("sharp", *DEGRADATIONS)))


LENIENT = {"max_ringing": 14.0, "max_blockiness": 1.8}  # the README's choice for corpora of JPEG q75 images


def jpeg_sweep(rows: list[dict], data: Path, qualities=(95, 85, 75, 50, 30, 10)) -> None:
    """Share of sharp images rejected as jpeg_artifacts after re-encoding them at each JPEG quality, with
    the default clarity config and with LENIENT: where "heavy" starts, for text and for photos."""
    configs = {"default": ClarityConfig(), "lenient": replace(ClarityConfig(), **LENIENT)}
    rej: dict[tuple[str, bool, int], list[bool]] = {}
    for r in (r for r in rows if r["degraded"] is None):
        bgr = load(data / r["file"])[..., ::-1]
        for q in qualities:
            img = cv2.imdecode(cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, q])[1], cv2.IMREAD_COLOR)[..., ::-1]
            s = measures(img)
            for name, cfg in configs.items():
                rej.setdefault((name, r["text_rich"], q), []).append(Clarity().keep(s, cfg) == "jpeg_artifacts")
    print(f"   rejected as jpeg_artifacts after re-encoding the sharp images (lenient = {json.dumps(LENIENT)}):")
    print("     " + f"{'quality':<22}" + "".join(f"{q:>7}" for q in qualities))
    for name in configs:
        for cls, kind in ((True, "text-rich"), (False, "natural")):
            print("     " + f"{name + ' ' + kind:<22}" + "".join(f"{np.mean(rej[(name, cls, q)]):7.0%}" for q in qualities))


def text_report(rows: list[dict], data: Path, limit: int) -> None:
    cfg = TextDensityConfig()
    td = TextDensity()
    sharp = [r for r in rows if r["degraded"] is None]
    rng = np.random.default_rng(0)  # a fixed sample per class, mixing sources and languages

    def sample(rs: list[dict]) -> list[dict]:
        return [rs[i] for i in sorted(rng.permutation(len(rs))[:limit])]

    sel = sample([r for r in sharp if r["text_rich"]]) + sample([r for r in sharp if not r["text_rich"]])

    def cpu(fn, *args):
        t0 = time.process_time()
        out = fn(*args)
        return out, time.process_time() - t0

    warm = load(data / sel[0]["file"])  # load every engine (models) outside the figures
    td.score(warm, {}, cfg), ocr.read(warm)
    res = []
    for i, r in enumerate(sel):
        if i % 40 == 0:
            print(f"   ... OCR {i}/{len(sel)}", file=sys.stderr, flush=True)
        img = load(data / r["file"])
        s, staged = cpu(td.score, img, {}, cfg)  # what the filter spends: presence, then recognition if it passed
        boxes, det = cpu(ocr.detect, img, presence_side(img.shape[1], img.shape[0], cfg))  # the presence pass alone
        passed = len(boxes) >= cfg.min_presence_boxes
        reuse_lines, reuse = cpu(ocr.recognise, img, boxes) if passed else ([], 0.0)
        native_lines, native = cpu(ocr.read, img, cfg.recognition_side) if passed else ([], 0.0)
        full_lines, full = cpu(ocr.read, img)  # the baseline: the engine's full OCR on every image
        full_chars = sum(not c.isspace() for ln in full_lines for c in ln.text)
        res.append({"text": r["text_rich"], "lang": r["lang"], "keep": td.keep(s, cfg) is None,
                    "pass": s["presence_boxes"] >= cfg.min_presence_boxes, "staged": staged, "det": det,
                    "read": full, "full_chars": full_chars, "s": s, "reuse": reuse,
                    "reuse_chars": sum(not c.isspace() for ln in reuse_lines for c in ln.text), "native": native,
                    "native_chars": sum(not c.isspace() for ln in native_lines for c in ln.text)})
    t = np.array([x["text"] for x in res])
    k = np.array([x["keep"] for x in res])
    ps = np.array([x["pass"] for x in res])
    det = np.array([x["det"] for x in res])
    rd = np.array([x["read"] for x in res])
    print(f"\n== Text density, default thresholds {cfg}\n   sharp only: {t.sum()} text-rich, {(~t).sum()} natural")
    p, rc, f = pr(k, t)
    print(f"   keep text-rich vs natural: precision {p:.3f}  recall {rc:.3f}  F1 {f:.3f}"
          f"      goal: precision >= 0.95, recall >= 0.9")
    for lang in ("en", "zh"):
        m = np.array([x["lang"] == lang for x in res])
        print(f"     recall {lang}: {k[m].mean():.3f} (n={m.sum()})")
    reasons: dict[str, int] = {}
    for x in res:
        key = ("text " if x["text"] else "natural ") + (td.keep(x["s"], cfg) or "kept")
        reasons[key] = reasons.get(key, 0) + 1
    print("   decisions:", json.dumps(dict(sorted(reasons.items()))))
    for v in (250, 500, 750, 1000, 1500):  # the threshold that rejects most real text, swept (others at defaults)
        kk = np.array([td.keep(x["s"], replace(cfg, min_chars_per_mp=float(v))) is None for x in res])
        p, rc, _ = pr(kk, t)
        print(f"     min_chars_per_mp={v:<5} precision {p:.3f} recall {rc:.3f}"
              + "".join(f"  {lang} {kk[np.array([x['lang'] == lang for x in res])].mean():.3f}" for lang in ("en", "zh")))
    st = np.array([x["staged"] for x in res])
    w = np.where(t, 0.2 / max(t.sum(), 1), 0.8 / max((~t).sum(), 1))  # an 80 % natural / 20 % text-rich corpus
    full, staged = float(np.sum(w * rd)), float(np.sum(w * st))
    print(f"   OCR time on 80/20 natural/text, the filter's two stages (recognition={cfg.recognition}) vs the"
          f" engine's full OCR on every image: saved {full / staged:5.2f}x   goal >= 3x")
    reuse = float(np.sum(w * (det + np.array([x["reuse"] for x in res]))))
    print(f"     recognition=presence (the presence boxes, no second detection): {full / reuse:5.2f}x")
    native = float(np.sum(w * (det + ps * np.array([x["native"] for x in res]))))
    print(f"     recognition=native (detected again at the image's own size): {full / native:5.2f}x")
    skip_only = float(np.sum(w * (det + ps * rd)))  # presence, then the engine's full OCR where it passed
    print(f"     of which skipping (presence, then full OCR where it passed): {full / skip_only:5.2f}x;"
          f" bound for skipping alone (free, perfect): {full / float(np.sum(w * t * rd)):5.2f}x")
    print(f"   text-rich lost by presence stage: {1 - ps[t].mean():6.1%}                       goal <= 2 %")
    print(f"   natural passing presence stage:   {ps[~t].mean():6.1%}")
    print(f"   CPU s/image: presence {det.mean():.3f} (text {det[t].mean():.3f}, natural {det[~t].mean():.3f});"
          f" filter {st.mean():.3f} (text {st[t].mean():.3f}, natural {st[~t].mean():.3f});"
          f" full OCR {rd.mean():.3f} (text {rd[t].mean():.3f}, natural {rd[~t].mean():.3f})")
    fc = np.array([x["full_chars"] for x in res])
    ok = t & ps & (fc > 0)
    if ok.any():
        print("   characters found vs the engine's full OCR (text-rich), median / p5 / p95:")
        for mode in ("reuse", "native"):
            rel = np.array([x[mode + "_chars"] for x, o in zip(res, ok, strict=True) if o]) / fc[ok]
            print(f"     recognition={'presence' if mode == 'reuse' else mode:<9} {np.median(rel):.3f} / "
                  f"{np.percentile(rel, 5):.3f} / {np.percentile(rel, 95):.3f}")
    for q in ("presence_boxes", "chars", "chars_per_mp", "mean_confidence"):
        for cls, m in (("text", t), ("natural", ~t)):
            v = [x["s"][q] for x, ok in zip(res, m, strict=False) if ok and q in x["s"]]
            if v:
                print(f"     {q:<16}{cls:<8} p5 {np.percentile(v, 5):9.4g}  median {np.median(v):9.4g}"
                      f"  p95 {np.percentile(v, 95):9.4g}  (n={len(v)})")


def main() -> None:
    cv2.setNumThreads(1)  # as in a filter task: one core
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path("~/.cache/textinfuse/filter-evalset").expanduser())
    ap.add_argument("--limit", type=int, default=120, help="sharp images per class for the OCR parts")
    ap.add_argument("--skip-ocr", action="store_true")
    ap.add_argument("--skip-clarity", action="store_true")
    args = ap.parse_args()
    rows = [json.loads(ln) for ln in (args.data / "labels.jsonl").read_text().splitlines()]
    if not args.skip_clarity:
        clarity_report(rows, args.data)
        jpeg_sweep(rows, args.data)
    if not args.skip_ocr:
        text_report(rows, args.data, args.limit)


if __name__ == "__main__":
    main()
