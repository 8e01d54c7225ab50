"""The ablation's outputs: `results.json` (figures per arm, mean over seeds, with each seed's), `results.md`
(the table and the goal checks) and `grid.png` (the same real crops reconstructed by every arm, each
with its NED)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from textinfuse.configio import to_dict

from .config import AblationConfig

METRICS = ("NED", "PSNR", "SSIM", "PSNR_photos", "SSIM_photos", "LPIPS", "LPIPS_photos", "NED_images", "PSNR_images",
           "SSIM_images")


def _mean(xs: list[float | None]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.fmean(xs) if xs else None


def summarise(runs: list[dict]) -> dict[str, Any]:
    """One arm's figures: each metric's mean over seeds, NED per seed and its spread (max - min)."""
    row: dict[str, Any] = {}
    for m in METRICS:
        vals = [r.get(m) for r in runs]
        if any(v is not None for v in vals):
            row[m] = _mean(vals)
            row[f"{m}_seeds"] = vals
    for key in ("NED", "NED_images"):
        neds = [r[key] for r in runs if r.get(key) is not None]
        row[f"{key}_spread"] = max(neds) - min(neds) if len(neds) > 1 else None
    for key, kind in (("NED_by_set", "text"), ("NED_by_image_set", "images")):
        sets = sorted({n for r in runs for n, s in r["sets"].items() if s["kind"] == kind})
        row[key] = {n: _mean([r["sets"][n]["NED"] for r in runs if n in r["sets"]]) for n in sets}
    row["steps"] = runs[0]["steps"]
    row["seeds"] = [r["seed"] for r in runs]
    row["cpu_seconds"] = _mean([r["cpu_seconds"] for r in runs])  # training, per seed
    row["wall_seconds"] = _mean([r["wall_seconds"] for r in runs])
    row["eval_cpu_seconds"] = _mean([r["eval_cpu_seconds"] for r in runs])
    row["sources"] = sorted(runs[0]["sources"])
    return row


def goal_checks(cfg: AblationConfig, arms: dict[str, dict], folder: Path | None = None) -> dict[str, Any]:
    """The goal's three checks where their arms were run (None where an arm is missing), and with the run
    folder `folder` the arm's crop-by-crop comparison with the other two (`paired_difference`)."""
    g = cfg.goal
    a, b, c = (arms.get(n) for n in (g.arm, g.baseline, g.contrast))
    out: dict[str, Any] = {"arm": g.arm, "baseline": g.baseline, "contrast": g.contrast}
    if a and b and a.get("NED") is not None and b.get("NED") is not None:
        gain = a["NED"] - b["NED"]
        out["ned_gain_over_baseline"] = gain
        out["ned_gain_ok"] = gain >= g.min_ned_gain
    if a and b and a.get("PSNR_photos") is not None and b.get("PSNR_photos") is not None:
        drop = b["PSNR_photos"] - a["PSNR_photos"]
        out["photo_psnr_drop_db"] = drop
        out["photo_psnr_ok"] = drop <= g.max_photo_psnr_drop
    if a and c and a.get("NED") is not None and c.get("NED") is not None:
        gain, spread = _gain(a, c, "NED")
        out["ned_gain_over_contrast"] = gain
        out["seed_spread"] = spread
        out["contrast_ok"] = gain > spread if spread is not None else None  # one seed: no spread to beat
    for key, name, other in (("paired_baseline", g.baseline, b), ("paired_contrast", g.contrast, c)):
        if folder is not None and a and other:
            out[key] = _paired(folder, g.arm, name, a, other, "NED_by_set")
    if a and a.get("NED_images") is not None:  # the same comparisons on real text in images (outside the goal)
        im: dict[str, Any] = {}
        for key, name, other in (("baseline", g.baseline, b), ("contrast", g.contrast, c)):
            if other and other.get("NED_images") is not None:
                im[f"gain_over_{key}"], im[f"{key}_seed_spread"] = _gain(a, other, "NED_images")
                if folder is not None:
                    im[f"paired_{key}"] = _paired(folder, g.arm, name, a, other, "NED_by_image_set")
        out["images"] = im
    return out


def _gain(a: dict, other: dict, metric: str) -> tuple[float, float | None]:
    """`a`'s mean `metric` minus `other`'s, and the larger of their seed spreads (None with one seed)."""
    spread = max(a.get(f"{metric}_spread") or 0.0, other.get(f"{metric}_spread") or 0.0)
    return a[metric] - other[metric], spread if len(a["seeds"]) > 1 else None


def _paired(folder: Path, name_a: str, name_b: str, a: dict, b: dict, sets_key: str) -> dict[str, Any] | None:
    """`paired_difference` over the seeds both arms ran and `a`'s sets under `sets_key`."""
    return paired_difference(folder, name_a, name_b, sorted(set(a["seeds"]) & set(b["seeds"])), sorted(a[sets_key]))


def crop_neds(run: Path, sets: list[str]) -> dict[tuple[str, str], float]:
    """{(set, file): NED} of one run's text crops, from its eval's `ned_details.json` files."""
    out: dict[tuple[str, str], float] = {}
    for name in sets:
        try:
            details = json.loads((run / "eval" / name / "ned_details.json").read_text(encoding="utf-8"))["details"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        for d in details:
            if isinstance(d, dict) and isinstance(d.get("ned"), (int, float)):
                out[(name, str(d.get("file")))] = float(d["ned"])
    return out


def paired_difference(out: Path, a: str, b: str, seeds: list[int], sets: list[str], draws: int = 2000,
                      seed: int = 0) -> dict[str, Any] | None:
    """Arm `a` minus arm `b`, crop by crop: for each seed, the mean NED difference over the text crops both
    runs scored; its mean over seeds, with a 95 % bootstrap interval over crops (the same crops resampled
    for every seed, seeds kept: it says how much the figure depends on which crops the set holds, not on
    training randomness, which the seed spread shows) and the share of crops where `a` reads better."""
    import numpy as np

    per_seed = []
    for s in seeds:
        x = crop_neds(out / "runs" / a / f"seed_{s}", sets)
        y = crop_neds(out / "runs" / b / f"seed_{s}", sets)
        per_seed.append({k: x[k] - y[k] for k in x.keys() & y.keys()})
    keys = sorted(set.intersection(*(set(d) for d in per_seed))) if per_seed else []
    if not keys:
        return None
    diffs = np.array([[d[k] for k in keys] for d in per_seed])  # seeds x crops
    rng = np.random.default_rng(seed)
    boot = diffs[:, rng.integers(0, len(keys), (draws, len(keys)))].mean(axis=(0, 2))
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {"mean": float(diffs.mean()), "ci95": [float(lo), float(hi)], "crops": len(keys), "seeds": len(seeds),
            "a_better": float((diffs > 0).mean()), "b_better": float((diffs < 0).mean())}


def _f(v: Any, nd: int = 3) -> str:
    return "-" if v is None else f"{v:.{nd}f}"


def _paired_line(arm: str, other: str, p: dict[str, Any]) -> str:
    """One results.md line for a `paired_difference` result."""
    return (f"- crop by crop, `{arm}` - `{other}`: {p['mean']:+.3f} NED, 95 % interval over crops "
            f"[{p['ci95'][0]:+.3f}, {p['ci95'][1]:+.3f}] ({p['crops']} crops x {p['seeds']} seeds; "
            f"`{arm}` better on {p['a_better']:.0%}, worse on {p['b_better']:.0%})")


def markdown(cfg: AblationConfig, res: dict) -> str:
    arms = res["arms"]
    sets = sorted({n for r in arms.values() for n in r["NED_by_set"]})
    isets = sorted({n for r in arms.values() for n in r.get("NED_by_image_set", {})})
    head = ["arm", "NED (mean)", "NED per seed", *[f"NED {s}" for s in sets], "PSNR text", "SSIM text",
            *[f"NED {s} (images)" for s in isets], *(["NED images per seed"] if isets else []),
            "PSNR photos", "SSIM photos", "steps", "train CPU s/seed"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in arms.items():
        lines.append("| " + " | ".join([
            f"`{name}`", _f(r.get("NED")), ", ".join(_f(x) for x in r.get("NED_seeds", [])),
            *[_f(r["NED_by_set"].get(s)) for s in sets], _f(r.get("PSNR"), 2), _f(r.get("SSIM")),
            *[_f(r.get("NED_by_image_set", {}).get(s)) for s in isets],
            *([", ".join(_f(x) for x in r.get("NED_images_seeds", []))] if isets else []),
            _f(r.get("PSNR_photos"), 2), _f(r.get("SSIM_photos")), str(r["steps"]), _f(r["cpu_seconds"], 0)]) + " |")
    g, spec = res["goal"], cfg.goal
    checks = []
    if "ned_gain_ok" in g:
        checks.append(f"- `{g['arm']}` - `{g['baseline']}` NED: {g['ned_gain_over_baseline']:+.3f} "
                      f"(goal >= {spec.min_ned_gain}): {'met' if g['ned_gain_ok'] else 'NOT met'}")
    if "contrast_ok" in g:
        verdict = {True: "met", False: "NOT met", None: "undecided with one seed"}[g["contrast_ok"]]
        spread = "-" if g["seed_spread"] is None else f"{g['seed_spread']:.3f}"
        checks.append(f"- `{g['arm']}` - `{g['contrast']}` NED: {g['ned_gain_over_contrast']:+.3f} "
                      f"(goal > seed spread {spread}): {verdict}")
    for key, other in (("paired_baseline", g.get("baseline")), ("paired_contrast", g.get("contrast"))):
        p = g.get(key)
        if p:
            checks.append(_paired_line(g["arm"], other, p))
    if "photo_psnr_ok" in g:
        checks.append(f"- photo PSNR of `{g['arm']}` under `{g['baseline']}`: {g['photo_psnr_drop_db']:+.2f} dB "
                      f"(goal <= {spec.max_photo_psnr_drop}): {'met' if g['photo_psnr_ok'] else 'NOT met'}")
    images = []
    for key, other in (("baseline", g.get("baseline")), ("contrast", g.get("contrast"))):
        im = g.get("images", {})
        if f"gain_over_{key}" in im:
            spread = im[f"{key}_seed_spread"]
            images.append(f"- `{g['arm']}` - `{other}` NED: {im[f'gain_over_{key}']:+.3f} (seed spread "
                          f"{'-' if spread is None else f'{spread:.3f}'})")
            p = im.get(f"paired_{key}")
            if p:
                images.append(_paired_line(g["arm"], other, p))
    if images:
        images = ["## Real text in images (outside the goal)", "",
                  f"Sets: {', '.join(isets)}; NED over their crops, not pooled with the documents'.", "", *images, ""]
    ev = res["eval"]
    return "\n".join([
        "# Text-infusion ablation", "",
        f"Every arm: the same model, schedule, batch, resolution and seeds; arms differ only in their data. "
        f"Text: {', '.join(Path(d).name for d in ev['text'])}; "
        f"{'text in images: ' + ', '.join(Path(d).name for d in ev.get('images', [])) + '; ' if ev.get('images') else ''}"
        f"photos: {', '.join(Path(d).name for d in ev['photos']) or '-'}. "
        "NED = 1 - normalised edit distance of OCR(original) and OCR(reconstruction); higher is better.", "",
        *lines, "", "## Goal", "", *(checks or ["- (the goal's arms were not all run)"]), "", *images,
        "Sample reconstructions: `grid.png`. Per-run outputs: `runs/ARM/seed_S/`.", ""])


def grid(out: Path, arms: dict[str, list[dict]], picks: list[tuple[str, Path]], path: Path,
         side: int = 192) -> None:
    """Rows: the grid crops; columns: the original, then each arm's first seed, captioned with its NED."""
    from PIL import Image, ImageDraw

    from evaluation.images import caption_font

    if not picks:
        return
    font = caption_font(14)
    names = list(arms)
    head, pad = 22, 4
    sheet = Image.new("RGB", ((len(names) + 1) * (side + pad), head + len(picks) * (side + head + pad)), "white")
    draw = ImageDraw.Draw(sheet)
    for j, title in enumerate(["original", *names]):
        draw.text((j * (side + pad) + 4, 2), title, fill="black", font=font)
    for i, (d, p) in enumerate(picks):
        y = head + i * (side + head + pad)
        cells = [(Image.open(p).convert("RGB"), p.name)]
        for a in names:
            r = arms[a][0]
            run = out / "runs" / a / f"seed_{r['seed']}"
            set_name = next((n for n, s in r["sets"].items() if s["dir"] == d), None)
            ned = _ned_of(run / "eval" / set_name / "details.jsonl", p.name) if set_name else None
            cells.append((Image.open(run / "grid" / f"{i:02d}.png").convert("RGB"), f"NED {_f(ned, 2)}"))
        for j, (im, cap) in enumerate(cells):
            im.thumbnail((side, side))
            sheet.paste(im, (j * (side + pad), y))
            draw.text((j * (side + pad) + 4, y + side + 2), cap[:28], fill="black", font=font)
    sheet.save(path)


def _ned_of(details: Path, name: str) -> float | None:
    try:
        for line in details.read_text(encoding="utf-8").splitlines():
            d = json.loads(line)
            if d.get("name") == name:
                return d.get("ned")
    except (OSError, ValueError):
        return None
    return None


def write_report(out: Path, cfg: AblationConfig, runs: dict[str, list[dict]], data: dict, picks: list,
                 text: list[str], photos: list[str], images: list[str] | None = None) -> dict:
    arms = {a: summarise(rs) for a, rs in runs.items() if rs}
    res = {"arms": arms, "goal": goal_checks(cfg, arms, out), "data": data,
           "eval": {"text": text, "images": images or [], "photos": photos},
           "identity": cfg.identity(), "config": to_dict(cfg)}
    (out / "results.json").write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "results.md").write_text(markdown(cfg, res), encoding="utf-8")
    grid(out, runs, picks, out / "grid.png")
    return res
